package badgerdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func storeOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil)
}

// storeWith makes a store holding key k<i> = v<i> for i < n, each written
// by its own open and close, so that each lives in its own table.
func storeWith(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	for i := 0; i < n; i++ {
		db, err := Open(storeOptions(dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(txn *badger.Txn) error {
			return txn.Set([]byte(fmt.Sprintf("k%d", i)), []byte(fmt.Sprintf("v%d", i)))
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// keysIn lists the keys of the store in dir, opened by Open.
func keysIn(t *testing.T, dir string) string {
	t.Helper()
	db, err := Open(storeOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(it.Item().Key()))
		}
		return nil
	})
	return strings.Join(out, " ")
}

// TestOpenAfterEmptyLogs: a kill between creating a memtable or value log
// file and sizing it leaves an empty file, on which badger's next open
// fails; Open removes such files and the store opens with its data.
func TestOpenAfterEmptyLogs(t *testing.T) {
	dir := storeWith(t, 2)
	for _, name := range []string{"00007.mem", "000009.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		// What badger alone does with it (a copy, so the original stays).
		cp := filepath.Join(t.TempDir(), "db")
		if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		if db, err := badger.Open(storeOptions(cp)); err == nil || !strings.Contains(err.Error(), "Create a new file") {
			if db != nil {
				db.Close()
			}
			t.Fatalf("badger on an empty %s: %v, want its \"Create a new file\" failure", name, err)
		}
		if got := keysIn(t, dir); got != "k0 k1" {
			t.Fatalf("after an empty %s: keys %q", name, got)
		}
	}
}

// lastRecord returns the offset of the last record of a MANIFEST file:
// 8 bytes of magic, then records of u32 length, u32 CRC, data.
func lastRecord(t *testing.T, data []byte) int {
	t.Helper()
	last := -1
	for off := 8; off+8 <= len(data); {
		last = off
		off += 8 + int(binary.BigEndian.Uint32(data[off:]))
	}
	if last < 0 {
		t.Fatal("MANIFEST holds no record")
	}
	return last
}

// TestOpenRefusesCutManifest is issue 11's silent rollback: bit 0 of the
// last MANIFEST record's length flipped makes the record run past the end
// of the file. Badger takes that for a write cut short by a crash, drops
// the record, truncates the MANIFEST and deletes the table the record
// added. Open refuses instead, naming the MANIFEST, and changes nothing.
func TestOpenRefusesCutManifest(t *testing.T) {
	dir := storeWith(t, 3)
	path := filepath.Join(dir, badger.ManifestFilename)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := lastRecord(t, data)
	data[at+3] ^= 0x01 // bit 0 of the big-endian length
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)

	// Badger alone, on a copy: it opens, and the last key is gone.
	cp := filepath.Join(t.TempDir(), "db")
	if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(storeOptions(cp))
	if err != nil {
		t.Fatalf("badger alone: %v", err)
	}
	if err := db.View(func(txn *badger.Txn) error { _, err := txn.Get([]byte("k2")); return err }); !errors.Is(err, badger.ErrKeyNotFound) {
		t.Fatalf("badger alone kept k2 (%v): the test no longer shows the rollback", err)
	}
	db.Close()

	_, err = Open(storeOptions(dir))
	var d *Damaged
	if !errors.As(err, &d) || d.File != path || !strings.HasPrefix(d.Detail, fmt.Sprintf("its record at byte %d is cut short; opening would delete 0000", at)) {
		t.Fatalf("open: %v", err)
	}
	if after := listing(t, dir); after != before {
		t.Fatalf("the refused open changed the folder:\n%s\nwas\n%s", after, before)
	}
	data[at+3] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := keysIn(t, dir); got != "k0 k1 k2" {
		t.Fatalf("restored MANIFEST: keys %q", got)
	}
}

// listing renders the names, sizes and contents' first bytes of the files
// in dir.
func listing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %x\n", e.Name(), len(data), bytes.TrimRight(data, "\x00"))
	}
	return b.String()
}

// TestOpenNamesDamagedTable: a table whose checksum fails is reported as
// damage naming it, before badger's own goroutines read it (where a panic
// could not be recovered), whichever byte is flipped.
func TestOpenNamesDamagedTable(t *testing.T) {
	dir := storeWith(t, 1)
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) != 1 {
		t.Fatalf("%d tables", len(tables))
	}
	data, err := os.ReadFile(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for at := range data {
		data[at] ^= 0x01
		if err := os.WriteFile(tables[0], data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(storeOptions(dir))
		var d *Damaged
		switch {
		case errors.As(err, &d):
			if d.File != tables[0] || d.Detail == "" || strings.Contains(d.Detail, "\n") {
				t.Fatalf("byte %d: %q", at, err)
			}
			refused++
		case err != nil:
			t.Fatalf("byte %d: %v", at, err)
		default:
			// Accepted: the flip must change nothing (snappy can decode a
			// flipped byte to the same block).
			var v []byte
			err := db.View(func(txn *badger.Txn) error {
				item, err := txn.Get([]byte("k0"))
				if err == nil {
					v, err = item.ValueCopy(nil)
				}
				return err
			})
			db.Close()
			if err != nil || string(v) != "v0" {
				t.Fatalf("byte %d accepted, k0 = %q, %v", at, v, err)
			}
		}
		data[at] ^= 0x01
	}
	if refused < len(data)*9/10 {
		t.Fatalf("only %d of %d flips refused", refused, len(data))
	}
}

func TestOpenInUse(t *testing.T) {
	dir := storeWith(t, 1)
	db, err := Open(storeOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(storeOptions(dir)); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open: %v", err)
	}
	if _, err := badger.Open(storeOptions(dir)); err == nil || !strings.Contains(err.Error(), "Cannot acquire directory lock") {
		t.Fatalf("badger's own open while Open holds the store: %v", err)
	}
}

// BenchmarkOpen opens and closes a store of about 32 MiB in tables, with
// the checks (Open) and without (badger.Open): the difference is the cost
// of reading and checksumming every table at each open.
func BenchmarkOpen(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "db")
	db, err := Open(storeOptions(dir))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for batch := 0; batch < 64; batch++ {
		wb := db.NewWriteBatch()
		for i := 0; i < 4096; i++ {
			k := binary.BigEndian.AppendUint64([]byte("key"), uint64(batch*4096+i))
			val := make([]byte, 100)
			for j := range val {
				val[j] = byte(rng.Uint32())
			}
			if err := wb.Set(k, val); err != nil {
				b.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		open func() (interface{ Close() error }, error)
	}{
		{"checked", func() (interface{ Close() error }, error) { return Open(storeOptions(dir)) }},
		{"badger", func() (interface{ Close() error }, error) { return badger.Open(storeOptions(dir)) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				db, err := c.open()
				if err != nil {
					b.Fatal(err)
				}
				db.Close()
			}
		})
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var size int64
	for _, t := range tables {
		if st, err := os.Stat(t); err == nil {
			size += st.Size()
		}
	}
	b.Logf("%d tables, %d bytes", len(tables), size)
}
