// Package atomicfile writes a file so that readers see either its old
// contents or the complete new ones, never a torn write, even across a crash.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write stores data at path with the given permissions: it writes a hidden
// temporary file in the same folder, syncs it, and renames it over path. On
// any error the temporary file is removed and path is left as it was.
func Write(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
