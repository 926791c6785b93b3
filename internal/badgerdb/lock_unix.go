//go:build !windows && !plan9 && !js && !wasip1 && !aix

package badgerdb

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lock takes the exclusive lock badger itself takes on dir (flock on the
// folder), so that the checks before badger.Open run only when no other
// process has the store open; badger is then told not to lock again
// (bypass). Processes of older versions, locking through badger, exclude
// this one and are excluded by it.
func lock(dir string) (unlock func(), bypass bool, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, ErrInUse
		}
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}
