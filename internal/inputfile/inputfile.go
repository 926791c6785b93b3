// Package inputfile reads a file that comes from outside the program (code,
// keys, transactions, claims, manifests, shares, wallet and store files)
// with its size bounded before anything is read.
//
// Every reader in the module goes through Read or ReadIn, so that no file
// is read whole before its size is checked, and a named pipe, a device or a
// directory given where a file is expected is refused at once instead of
// blocking or streaming without end.
package inputfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrTooLarge reports a file over the caller's limit.
var ErrTooLarge = errors.New("too large")

// ErrNotRegular reports a path that names something other than a regular
// file (a named pipe, a device, a socket, a directory).
var ErrNotRegular = errors.New("not a regular file")

// ErrOutside reports a name that resolves outside the folder ReadIn was
// given: an absolute path, a path through "..", or a symbolic link that
// points out.
var ErrOutside = errors.New("resolves outside its folder")

// openFlags opens without blocking: opening a named pipe for reading blocks
// until a writer appears, which is how a FIFO given as a key file used to
// hang the program. Reads of a regular file ignore O_NONBLOCK.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

// Read returns the contents of the regular file at path, refusing one
// longer than max bytes without reading it. Symbolic links are followed.
// Errors name path; a missing file wraps fs.ErrNotExist.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, named(path, err)
	}
	defer f.Close()
	return read(f, path, max)
}

// ReadIn is Read for the file name inside the folder dir: name must be
// relative and must resolve inside dir, through ".." and symbolic links
// alike, so a file that names another file cannot reach outside its own
// folder.
func ReadIn(dir, name string, max int64) ([]byte, error) {
	if !filepath.IsLocal(name) {
		return nil, fmt.Errorf("%s: %w", name, ErrOutside)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, named(dir, err)
	}
	defer root.Close()
	f, err := root.OpenFile(name, openFlags, 0)
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent" {
		// os.Root's own refusal of a symbolic link that points out; the
		// standard library exports no value to compare it with.
		return nil, fmt.Errorf("%s: %w", name, ErrOutside)
	}
	if err != nil {
		return nil, named(name, err)
	}
	defer f.Close()
	return read(f, name, max)
}

// named words an error of opening as "NAME: reason", the form of every
// other error here, rather than the os package's "open NAME: reason". It
// still wraps the cause (fs.ErrNotExist for a missing file).
func named(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// read checks that f is a regular file of at most max bytes, then reads at
// most max+1 bytes of it (it may have grown since it was checked).
func read(f *os.File, name string, max int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", name, ErrNotRegular, kind(st.Mode()))
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", name, ErrTooLarge, st.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", name, ErrTooLarge, max)
	}
	return data, nil
}

// kind names what a non-regular file is, for the error message.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return "a device"
	}
	return m.Type().String()
}
