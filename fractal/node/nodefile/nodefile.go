// Package nodefile is how a running node tells the command line where it
// listens: node.json in the instance's home folder, beside node.lock, which
// the node holds locked for as long as it runs (decision 114).
//
// The node locks node.lock, then writes node.json atomically; a clean exit
// removes node.json. A node killed outright leaves both files, but the
// kernel releases its lock with the process, so Find tells a live node from
// a stale file by the lock, never by the process ID (which the system may
// have given to another process since).
package nodefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/inputfile"
)

// Files in the home folder.
const (
	InfoFile = "node.json"
	LockFile = "node.lock"
)

// maxInfoFile bounds node.json: one URL, a PID, an ID and a time.
const maxInfoFile = 64 << 10

// Info is what node.json holds.
type Info struct {
	URL      string    `json:"url"`      // the API's base URL, http://HOST:PORT
	PID      int       `json:"pid"`      // the node's process, for people and for signals
	Instance string    `json:"instance"` // the instance ID, hex
	Started  time.Time `json:"started"`
}

// Lock is a node's hold on its home folder.
type Lock struct {
	home string
	f    *os.File
}

// Acquire locks home's node.lock for this process. It refuses, naming the
// node, when another node holds it.
func Acquire(home string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(home, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("node: open %s: not a fractal instance (no such folder; run fractal --home %s init)", home, home)
	}
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := lockExclusive(f); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			if info, _ := read(home); info != nil {
				return nil, fmt.Errorf("node: a node already runs on %s (pid %d, %s)", home, info.PID, info.URL)
			}
			return nil, fmt.Errorf("node: a node already runs on %s", home)
		}
		return nil, fmt.Errorf("node: lock %s: %w", LockFile, err)
	}
	return &Lock{home: home, f: f}, nil
}

// probeWait bounds how long Acquire waits for a lock held shared: Find
// holds it so for an instant to see whether a node runs, and a node
// starting then must not take that for a running node.
const probeWait = 500 * time.Millisecond

// lockExclusive takes f's lock for this process, waiting out Find's
// probes; a lock still held after probeWait is another node's.
func lockExclusive(f *os.File) error {
	deadline := time.Now().Add(probeWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Publish writes node.json.
func (l *Lock) Publish(info Info) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(l.home, InfoFile), append(data, '\n'), 0o600)
}

// Release removes node.json and unlocks.
func (l *Lock) Release() error {
	err := os.Remove(filepath.Join(l.home, InfoFile))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	l.f.Close() // closing the file releases the lock
	return err
}

// Find returns the node running on home, or nil when none runs: no
// node.json, or one left by a node that is gone (its lock is free).
func Find(home string) (*Info, error) {
	info, err := read(home)
	if info == nil || err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(home, LockFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return info, nil // held: the node is alive
	}
	if err != nil {
		return nil, fmt.Errorf("node: lock %s: %w", LockFile, err)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return nil, nil // stale: its node is gone
}

// read parses node.json, or returns nil when there is none.
func read(home string) (*Info, error) {
	raw, err := inputfile.Read(filepath.Join(home, InfoFile), maxInfoFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	var info Info
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("node: %s: %w", InfoFile, err)
	}
	if info.URL == "" {
		return nil, fmt.Errorf("node: %s names no URL", InfoFile)
	}
	return &info, nil
}
