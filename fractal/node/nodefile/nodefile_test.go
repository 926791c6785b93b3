package nodefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A node's file is believed while its lock is held, and ignored once the
// holder is gone, even if it left node.json behind (a kill).
func TestFindByTheLock(t *testing.T) {
	home := t.TempDir()
	if info, err := Find(home); info != nil || err != nil {
		t.Fatalf("no node: %v %v", info, err)
	}
	l, err := Acquire(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(Info{URL: "http://127.0.0.1:1", PID: 42}); err != nil {
		t.Fatal(err)
	}
	info, err := Find(home)
	if err != nil || info == nil || info.URL != "http://127.0.0.1:1" || info.PID != 42 {
		t.Fatalf("a running node: %v %v", info, err)
	}
	if _, err := Acquire(home); err == nil || !strings.Contains(err.Error(), "a node already runs on "+home+" (pid 42, http://127.0.0.1:1)") {
		t.Fatalf("a second node: %v", err)
	}
	// Killed: the lock goes with the process, node.json stays.
	l.f.Close()
	if _, err := os.Stat(filepath.Join(home, InfoFile)); err != nil {
		t.Fatal(err)
	}
	if info, err := Find(home); info != nil || err != nil {
		t.Fatalf("a stale node.json was believed: %v %v", info, err)
	}
	// A clean stop removes it.
	l2, err := Acquire(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, InfoFile)); !os.IsNotExist(err) {
		t.Fatalf("node.json after a clean stop: %v", err)
	}
}

// A node starting while a verb probes the lock (Find holds it shared for
// an instant) takes it once the probe is done, not for a running node.
func TestAcquireWaitsOutAProbe(t *testing.T) {
	home := t.TempDir()
	probe, err := os.OpenFile(filepath.Join(home, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := unix.Flock(int(probe.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		unix.Flock(int(probe.Fd()), unix.LOCK_UN)
	}()
	l, err := Acquire(home)
	if err != nil {
		t.Fatalf("a node starting during a probe: %v", err)
	}
	l.Release()
}

// TestAcquireOnAMissingFolder: a home folder that does not exist is named
// as no instance, with the command that makes one, not as a missing
// node.lock.
func TestAcquireOnAMissingFolder(t *testing.T) {
	home := filepath.Join(t.TempDir(), "missing")
	_, err := Acquire(home)
	want := "node: open " + home + ": not a fractal instance (no such folder; run fractal --home " + home + " init)"
	if err == nil || err.Error() != want {
		t.Fatalf("Acquire: %v\nwant %s", err, want)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("the folder was made: %v", err)
	}
}
