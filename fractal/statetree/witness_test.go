package statetree

import (
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestWitnessUpdates checks that a store holding only the witness of some
// keys updates them to the same root as the full tree, for deletions (which
// lift siblings), overwrites and insertions, and refuses a read elsewhere.
func TestWitnessUpdates(t *testing.T) {
	full := openDB(t)
	tr := New(testPrefix)
	var ch []Change
	for i := 0; i < 500; i++ {
		ch = append(ch, Change{Key: key(i), Value: val(i)})
	}
	root := update(t, full, tr, EmptyRoot, ch...)
	// Delete a few (some leave a lone sibling leaf), overwrite one, insert two.
	changes := []Change{
		{Key: key(3)}, {Key: key(77)}, {Key: key(250)},
		{Key: key(10), Value: val(9999)},
		{Key: key(1000), Value: val(1000)}, {Key: key(1001), Value: val(1001)},
	}
	var touched []Hash
	for _, c := range changes {
		touched = append(touched, c.Key)
	}
	w, err := view(t, full, func(txn *badger.Txn) ([][]byte, error) { return tr.Witness(txn, root, touched) })
	if err != nil {
		t.Fatal(err)
	}
	want := update(t, full, tr, root, changes...)

	partial := openDB(t, func(o badger.Options) badger.Options { return o.WithInMemory(true).WithDir("").WithValueDir("") })
	ptr := New(testPrefix)
	if err := partial.Update(func(txn *badger.Txn) error { return ptr.PutWitness(txn, w) }); err != nil {
		t.Fatal(err)
	}
	for _, k := range touched[:4] {
		v, ok, err := view2(t, partial, ptr, root, k)
		if err != nil || !ok {
			t.Fatalf("witnessed key %x: ok=%v err=%v", k[:4], ok, err)
		}
		_ = v
	}
	got := update(t, partial, ptr, root, changes...)
	if got != want {
		t.Fatalf("root from witness %x, full tree %x", got[:8], want[:8])
	}
	// Keys off the witnessed paths cannot be read; only those whose path
	// ends in a witnessed sibling leaf can (a handful).
	missing := 0
	for i := 0; i < 500; i++ {
		_, _, err := view2(t, partial, ptr, root, key(i))
		if err != nil {
			if !strings.Contains(err.Error(), "missing from the store") {
				t.Fatal(err)
			}
			missing++
		}
	}
	if missing < 450 {
		t.Fatalf("only %d of 500 keys unreadable from a 6-key witness", missing)
	}
}

func view2(t *testing.T, db *badger.DB, tr *Tree, root, k Hash) (v Hash, ok bool, err error) {
	t.Helper()
	err = db.View(func(txn *badger.Txn) error {
		v, ok, err = tr.Get(txn, root, k)
		return err
	})
	return
}

func TestPutWitnessRefusesMalformed(t *testing.T) {
	db := openDB(t, func(o badger.Options) badger.Options { return o.WithInMemory(true).WithDir("").WithValueDir("") })
	tr := New(testPrefix)
	raw := (&node{kind: kindLeaf, a: *val(1), b: *val(2)}).encode()
	good := raw[:]
	for name, bad := range map[string][]byte{
		"short":        good[:64],
		"unknown kind": append([]byte{7}, good[1:]...),
	} {
		err := db.Update(func(txn *badger.Txn) error { return tr.PutWitness(txn, [][]byte{good, bad}) })
		if err == nil || !strings.Contains(err.Error(), "witness node 1") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if n := countNodes(t, db); n != 0 {
		t.Fatalf("refused witness left %d nodes", n)
	}
}
