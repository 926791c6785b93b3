package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal"
)

// TestWaitForInstanceInUse: a command that finds the instance open in
// another process waits for it up to --wait, then says so in one line.
func TestWaitForInstanceInUse(t *testing.T) {
	dir := t.TempDir()
	mustFractal(t, dir, "init", "--home", "h")
	in, err := fractal.Open(filepath.Join(dir, "h"))
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code, _ := fractalCmd(t, dir, time.Minute, "--home", "h", "--wait", "0s", "notes")
	if want := "fractal: open h: store is in use by another process (waited 0s; --wait DURATION waits longer)\n"; code != 1 || errOut != want {
		in.Close()
		t.Fatalf("--wait 0s: exit %d, stderr %q, want %q", code, errOut, want)
	}
	_, errOut, code, _ = fractalCmd(t, dir, time.Minute, "--home", "h", "--json", "--wait", "100ms", "notes")
	if code != 1 || errOut != "fractal: open h: store is in use by another process (waited 100ms; --wait DURATION waits longer)\n" {
		in.Close()
		t.Fatalf("--wait 100ms: exit %d, stderr %q", code, errOut)
	}
	go func() { // let the command below start while the instance is held
		time.Sleep(500 * time.Millisecond)
		in.Close()
	}()
	out, errOut, code, _ := fractalCmd(t, dir, time.Minute, "--home", "h", "--wait", "50s", "notes")
	if code != 0 || out != "0 notes\n" {
		t.Fatalf("waiting for the instance: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
