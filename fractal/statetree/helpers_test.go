package statetree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
)

var testPrefix = []byte("st/")

// openDB opens a real badger store in a temporary folder: the tree is
// tested over the store the instance keeps it in, through badgerdb.KV.
func openDB(tb testing.TB, opts ...func(badger.Options) badger.Options) *badger.DB {
	tb.Helper()
	o := badger.DefaultOptions(tb.TempDir()).WithLogger(nil).WithSyncWrites(false)
	for _, f := range opts {
		o = f(o)
	}
	db, err := badger.Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func hexOf(h Hash) string { return hex.EncodeToString(h[:]) }

// key returns a deterministic test key.
func key(i int) Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(append([]byte("key"), b[:]...))
}

// val returns a deterministic test value.
func val(i int) *Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(append([]byte("value"), b[:]...))
	return &h
}

// update runs one UpdateBatch in its own committed transaction.
func update(tb testing.TB, db *badger.DB, tr *Tree, root Hash, changes ...Change) Hash {
	tb.Helper()
	err := db.Update(func(txn *badger.Txn) error {
		var err error
		root, err = tr.UpdateBatch(badgerdb.KV{Txn: txn}, root, changes)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// view runs f on a read-only transaction of db.
func view[T any](tb testing.TB, db *badger.DB, f func(r kv.Reader) (T, error)) (T, error) {
	tb.Helper()
	var out T
	err := db.View(func(txn *badger.Txn) error {
		var err error
		out, err = f(badgerdb.KV{Txn: txn})
		return err
	})
	return out, err
}

// naiveRoot computes the root of m straight from the specification, with no
// storage and no incremental updates: the reference the tree must agree with.
func naiveRoot(m map[Hash]Hash) Hash {
	keys := make([]Hash, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i][:], keys[j][:]) < 0 })
	var build func(depth int, ks []Hash) Hash
	build = func(depth int, ks []Hash) Hash {
		switch len(ks) {
		case 0:
			return Hash{}
		case 1:
			return sha256.Sum256(append(append([]byte{0}, ks[0][:]...), func() []byte { v := m[ks[0]]; return v[:] }()...))
		}
		var l, r []Hash
		for _, k := range ks {
			if k[depth/8]&(0x80>>(depth%8)) == 0 {
				l = append(l, k)
			} else {
				r = append(r, k)
			}
		}
		lh, rh := build(depth+1, l), build(depth+1, r)
		return sha256.Sum256(append(append([]byte{1}, lh[:]...), rh[:]...))
	}
	return build(0, keys)
}

// countNodes returns how many entries the store holds under the tree prefix.
func countNodes(tb testing.TB, db *badger.DB) int {
	tb.Helper()
	n := 0
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: testPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n
}

// kvOf is the kv.Store over a badger transaction that the instance uses.
func kvOf(txn *badger.Txn) kv.Store { return badgerdb.KV{Txn: txn} }
