// Package badfile makes, for tests, the files a reader must refuse without
// reading: a named pipe that no one writes to, and a sparse file larger
// than any limit.
package badfile

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// Release is how long a named pipe made by Pipe keeps a reader waiting.
const Release = 10 * time.Second

// Pipe makes a named pipe at path. Opening it for reading waits for a
// writer; after Release the test opens it once and closes it, so a reader
// that waits is let go (and reads nothing) and a test of code that blocks
// fails rather than hangs.
func Pipe(t testing.TB, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	go func() {
		time.Sleep(Release)
		if f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}()
}

// Sparse makes a file of size bytes at path that takes no room on disk.
func Sparse(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
}
