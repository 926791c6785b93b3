package fractal

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/internal/badgerdb"
)

// TestBlockWriteBound: the count is exact (writes up to each bound are
// taken, the next byte or entry is refused with errBlockWritesOverBound),
// and a write at each bound fits in one badger write with the options
// every home opens with, so badger never refuses what the bound lets
// through (decision 167).
func TestBlockWriteBound(t *testing.T) {
	db, err := badgerdb.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := func(i int) []byte { return binary.BigEndian.AppendUint32([]byte("k"), uint32(i)) } // 5 bytes

	// Bytes: values of 64 KiB, then one that ends exactly at the bound.
	txn := db.NewTransaction(true)
	w := &boundedWrite{Store: badgerdb.KV{Txn: txn}}
	value := make([]byte, 64<<10)
	i := 0
	for ; w.bytes+2*(5+len(value)+writeEntryOverhead) <= MaxBlockWriteBytes; i++ {
		if err := w.Set(key(i), value); err != nil {
			t.Fatal(err)
		}
	}
	last := make([]byte, MaxBlockWriteBytes-w.bytes-5-writeEntryOverhead)
	if err := w.Set(key(i), last); err != nil || w.bytes != MaxBlockWriteBytes {
		t.Fatalf("the write that ends at the bound: %v (%d bytes)", err, w.bytes)
	}
	if err := w.Delete(key(0)); !errors.Is(err, errBlockWritesOverBound) {
		t.Fatalf("one entry past the bound: %v", err)
	}
	txn.Discard()
	txn = db.NewTransaction(true)
	w = &boundedWrite{Store: badgerdb.KV{Txn: txn}}
	for j := 0; j < i; j++ {
		if err := w.Set(key(j), value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Set(key(i), last); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatalf("badger refuses a write of %d bytes by the count: %v", w.bytes, err)
	}

	// Entries: MaxBlockWriteEntries deletions, then one more.
	txn = db.NewTransaction(true)
	w = &boundedWrite{Store: badgerdb.KV{Txn: txn}}
	for j := range MaxBlockWriteEntries {
		if err := w.Delete(key(j)); err != nil {
			t.Fatalf("entry %d: %v", j+1, err)
		}
	}
	if err := w.Set(key(0), nil); !errors.Is(err, errBlockWritesOverBound) {
		t.Fatalf("one entry past the bound: %v", err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatalf("badger refuses %d entries: %v", MaxBlockWriteEntries, err)
	}
}
