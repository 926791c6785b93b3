// Package badgerdb opens a badger store so that neither a damaged file nor
// the leftovers of a killed process reach the user as a panic, a silent
// loss of data or a refusal to open.
//
// Before badger reads anything, Open takes the folder's lock, removes the
// empty value-log and memtable files a kill can leave, replays the MANIFEST
// and checks every table it names (index and every block against their
// checksums), in the caller's goroutine where a panic in badger's table
// code can be recovered. Badger itself opens tables in goroutines of its
// own, where such a panic would end the process. A MANIFEST whose tail
// badger would cut off, deleting a table it names, is refused too. What
// fails is reported as a *Damaged error naming the file (decision 096).
package badgerdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// ErrInUse is returned when another process has the store open.
var ErrInUse = errors.New("store is in use by another process")

// Damaged reports a store file that fails its checks.
type Damaged struct {
	File   string // the file's path
	Detail string // what is wrong, one line
}

func (e *Damaged) Error() string { return fmt.Sprintf("%s is damaged: %s", e.File, e.Detail) }

// DB is an open store: the badger database and the lock on its folder.
type DB struct {
	*badger.DB
	unlock func()
}

// Close closes the database and releases the folder's lock.
func (db *DB) Close() error {
	err := db.DB.Close()
	db.unlock()
	return err
}

// Open opens the store in opts.Dir (which is also its value folder) after
// the checks of the package comment. Badger is told to verify every block
// it reads and every value it reads from the value log.
func Open(opts badger.Options) (db *DB, err error) {
	dir := opts.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	unlock, bypass, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	if err := removeEmptyLogs(dir); err != nil {
		return nil, err
	}
	if err := checkFiles(dir, opts); err != nil {
		return nil, err
	}
	opts = opts.WithValueDir(dir).WithBypassLockGuard(bypass).
		WithChecksumVerificationMode(options.OnBlockRead).WithVerifyValueChecksum(true)
	bdb, err := recovered(dir, func() (*badger.DB, error) { return badger.Open(opts) })
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, ErrInUse
		}
		return nil, named(dir, err)
	}
	return &DB{DB: bdb, unlock: unlock}, nil
}

// removeEmptyLogs deletes empty .mem and .vlog files. Badger creates such a
// file and then sizes it; a kill in between leaves it empty, and badger's
// next open fails on it ("Create a new file": an empty file is taken for a
// new one and reported as an error). An empty log holds no entry, so
// removing it loses nothing.
func removeEmptyLogs(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Size() == 0 {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkFiles replays the MANIFEST and checks every table it names.
func checkFiles(dir string, opts badger.Options) error {
	path := filepath.Join(dir, badger.ManifestFilename)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new store
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	m, end, err := badger.ReplayManifestFile(f, opts.ExternalMagicVersion, opts)
	if err != nil {
		return &Damaged{File: path, Detail: cause(err)}
	}
	tables, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		return err
	}
	// Badger takes a record cut short at the end for a write a crash
	// interrupted: it drops it, truncates the file there and deletes the
	// tables no longer named. A table file that only such a record named
	// is data the store would lose.
	if end < st.Size() {
		for _, t := range tables {
			if id, ok := table.ParseFileID(t); ok {
				if _, named := m.Tables[id]; !named {
					return &Damaged{File: path, Detail: fmt.Sprintf("its record at byte %d is cut short; opening would delete %s, which it names", end, filepath.Base(t))}
				}
			}
		}
	}
	for id, tm := range m.Tables {
		if err := checkTable(table.NewFilename(id, dir), tm, opts); err != nil {
			return err
		}
	}
	return nil
}

// checkTable opens one table as badger does and verifies its index and
// every block against their checksums; a panic in badger's table code is
// reported as damage.
func checkTable(path string, tm badger.TableManifest, opts badger.Options) (err error) {
	if tm.KeyID != 0 {
		return &Damaged{File: path, Detail: "the MANIFEST says it is encrypted; this store is not"}
	}
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return &Damaged{File: path, Detail: cause(err)}
	}
	defer mf.Close(-1)
	defer func() {
		if r := recover(); r != nil {
			err = &Damaged{File: path, Detail: "its index or a block cannot be decoded"}
		}
	}()
	t, err := table.OpenTable(mf, table.Options{
		ReadOnly: true, ChkMode: options.OnBlockRead, BlockSize: opts.BlockSize,
		Compression: tm.Compression, BloomFalsePositive: opts.BloomFalsePositive,
	})
	if err != nil {
		return &Damaged{File: path, Detail: cause(err)}
	}
	if err := t.VerifyChecksum(); err != nil {
		return &Damaged{File: path, Detail: cause(err)}
	}
	return nil
}

// recovered runs open, turning a panic in badger into an error naming the
// store.
func recovered(dir string, open func() (*badger.DB, error)) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("badger failed on %s: %s", dir, firstLine(fmt.Errorf("%v", r)))
		}
	}()
	return open()
}

// storeFile matches the name of a file of a badger store inside an error.
var storeFile = regexp.MustCompile(`\b(\d+\.(?:sst|vlog|mem)|MANIFEST|KEYREGISTRY|DISCARD)\b`)

// named reports an error from badger.Open as damage to the file it names,
// when it names one; otherwise as the store's error. Badger's wrong
// encryption key message stands for a damaged KEYREGISTRY here, where no
// store is encrypted.
func named(dir string, err error) error {
	text := err.Error()
	if strings.Contains(text, "Encryption key mismatch") {
		return &Damaged{File: filepath.Join(dir, badger.KeyRegistryFileName), Detail: "its check text does not match"}
	}
	if m := storeFile.FindString(text); m != "" {
		return &Damaged{File: filepath.Join(dir, m), Detail: cause(err)}
	}
	return fmt.Errorf("store: %s", firstLine(err))
}

// cause returns the innermost message of a badger error, which badger
// wraps as "context err: context err: cause".
func cause(err error) string {
	s := firstLine(err)
	if i := strings.LastIndex(s, " err: "); i >= 0 {
		s = s[i+len(" err: "):]
	}
	return s
}

// firstLine returns the first non-empty line of err's text: badger's
// messages sometimes run over several.
func firstLine(err error) string {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return "unknown error"
}
