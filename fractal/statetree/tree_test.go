package statetree

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
)

func TestEmptyTree(t *testing.T) {
	if EmptyRoot != (Hash{}) {
		t.Fatalf("EmptyRoot = %x, want zero", EmptyRoot)
	}
	db := openDB(t)
	tr := New(testPrefix)
	_, ok, err := tr.Get(kvOf(db.NewTransaction(false)), EmptyRoot, key(1))
	if err != nil || ok {
		t.Fatalf("Get on empty tree: ok=%v err=%v", ok, err)
	}
	if got := update(t, db, tr, EmptyRoot); got != EmptyRoot {
		t.Fatalf("empty batch changed the root to %x", got)
	}
	if n := countNodes(t, db); n != 0 {
		t.Fatalf("empty tree stored %d nodes", n)
	}
}

// TestKnownRoots pins the hashing so that a change of format cannot pass
// unnoticed: a single leaf hashes as SHA-256(0x00 || key || value), and the
// three-key root is fixed.
func TestKnownRoots(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	one := update(t, db, tr, EmptyRoot, Change{key(1), val(1)})
	if want := leafHash(key(1), *val(1)); one != want {
		t.Fatalf("one-key root %x, want leaf hash %x", one, want)
	}
	three := update(t, db, tr, one, Change{key(2), val(2)}, Change{key(3), val(3)})
	const want = "b29a7f6a1cedf021a599530cd10e017d1d8fda53c81b3bb65dcc52b29e58af5f"
	if got := hex.EncodeToString(three[:]); got != want {
		t.Fatalf("three-key root %s, want %s", got, want)
	}
}

func TestInsertUpdateDelete(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	r1 := update(t, db, tr, EmptyRoot, Change{key(1), val(1)})
	r2 := update(t, db, tr, r1, Change{key(2), val(2)})
	r3 := update(t, db, tr, r2, Change{key(1), val(10)})
	r4 := update(t, db, tr, r3, Change{key(1), nil})
	r5 := update(t, db, tr, r4, Change{key(2), nil})
	if r5 != EmptyRoot {
		t.Fatalf("deleting every key left root %x", r5)
	}
	if r4 != leafHash(key(2), *val(2)) {
		t.Fatalf("after deleting key 1 the root %x is not the lone leaf of key 2", r4)
	}
	want := map[Hash]map[Hash]Hash{
		r1: {key(1): *val(1)},
		r2: {key(1): *val(1), key(2): *val(2)},
		r3: {key(1): *val(10), key(2): *val(2)},
		r4: {key(2): *val(2)},
	}
	for root, m := range want {
		if root != naiveRoot(m) {
			t.Fatalf("root %x differs from the specification's %x", root, naiveRoot(m))
		}
		for _, k := range []Hash{key(1), key(2), key(3)} {
			got, err := view(t, db, func(txn kv.Reader) ([2]any, error) {
				v, ok, err := tr.Get(txn, root, k)
				return [2]any{v, ok}, err
			})
			if err != nil {
				t.Fatal(err)
			}
			wv, wok := m[k]
			if got[1].(bool) != wok || (wok && got[0].(Hash) != wv) {
				t.Fatalf("Get(%x, %x) = %x %v, want %x %v", root[:4], k[:4], got[0], got[1], wv, wok)
			}
		}
	}
}

func TestDeleteAbsentRefused(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	root := update(t, db, tr, EmptyRoot, Change{key(1), val(1)}, Change{key(2), val(2)})
	before := countNodes(t, db)
	cases := []struct {
		name    string
		changes []Change
		want    string
	}{
		{"absent key", []Change{{key(3), nil}}, "change 0 deletes key " + hexOf(key(3)) + ", which is absent"},
		{"empty tree path", []Change{{key(4), val(4)}, {key(5), nil}}, "change 1 deletes key"},
		{"deleted twice", []Change{{key(1), nil}, {key(1), nil}}, "change 1 deletes key " + hexOf(key(1))},
		{"lowest index reported", []Change{{key(9), val(9)}, {key(7), nil}, {key(6), nil}}, "change 1 deletes key " + hexOf(key(7))},
	}
	for _, c := range cases {
		err := db.Update(func(txn *badger.Txn) error {
			got, err := tr.UpdateBatch(kvOf(txn), root, c.changes)
			if got != root {
				t.Errorf("%s: refused batch returned root %x, want the old root", c.name, got)
			}
			return err
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if n := countNodes(t, db); n != before {
			t.Fatalf("%s: refused batch wrote %d nodes", c.name, n-before)
		}
	}
	// Insert then delete in one batch is accepted and leaves the tree as it was.
	if got := update(t, db, tr, root, Change{key(3), val(3)}, Change{key(3), nil}); got != root {
		t.Fatalf("insert+delete of one key changed the root")
	}
}

func TestOrderIndependence(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	const n = 300
	m := map[Hash]Hash{}
	var changes []Change
	for i := range n {
		changes = append(changes, Change{key(i), val(i)})
		m[key(i)] = *val(i)
	}
	want := naiveRoot(m)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		rng.Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
		root := EmptyRoot
		if round%2 == 0 {
			root = update(t, db, tr, root, changes...)
		} else {
			for _, c := range changes {
				root = update(t, db, tr, root, c)
			}
		}
		if root != want {
			t.Fatalf("round %d: root %x, want %x", round, root, want)
		}
	}
}

// TestDifferential applies random inserts, updates and deletes, one by one
// and in batches, and checks every root against the specification.
func TestDifferential(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	rng := rand.New(rand.NewPCG(3, 4))
	m := map[Hash]Hash{}
	root := EmptyRoot
	for step := range 400 {
		var batch []Change
		for range 1 + rng.IntN(4) {
			k := key(rng.IntN(300))
			_, present := m[k]
			if present && rng.IntN(3) == 0 {
				batch = append(batch, Change{k, nil})
				delete(m, k)
			} else {
				v := val(rng.IntN(1 << 20))
				batch = append(batch, Change{k, v})
				m[k] = *v
			}
		}
		if step%2 == 0 {
			root = update(t, db, tr, root, batch...)
		} else {
			for _, c := range batch {
				root = update(t, db, tr, root, c)
			}
		}
		if want := naiveRoot(m); root != want {
			t.Fatalf("step %d: root %x, want %x", step, root, want)
		}
	}
	if len(m) < 100 {
		t.Fatalf("differential test ended with only %d keys", len(m))
	}
}

// TestSameTransaction chains roots inside one uncommitted write transaction,
// as the instance does for the transactions of a block.
func TestSameTransaction(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	txn := db.NewTransaction(true)
	r1, err := tr.Update(kvOf(txn), EmptyRoot, key(1), val(1))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := tr.Update(kvOf(txn), r1, key(2), val(2))
	if err != nil {
		t.Fatal(err)
	}
	r3, err := tr.Update(kvOf(txn), r2, key(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := tr.Get(kvOf(txn), r2, key(1)); err != nil || !ok || v != *val(1) {
		t.Fatalf("uncommitted read: %x %v %v", v, ok, err)
	}
	txn.Discard()
	// A fresh Tree (no cache) sees nothing of a discarded transaction.
	_, err = view(t, db, func(txn kv.Reader) (bool, error) {
		_, ok, err := New(testPrefix).Get(txn, r3, key(2))
		return ok, err
	})
	if err == nil || !strings.Contains(err.Error(), "is missing from the store") {
		t.Fatalf("read of a discarded root: err = %v", err)
	}
}

// TestCorruptStore flips a byte of a stored node: reads must refuse it.
func TestCorruptStore(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	root := update(t, db, tr, EmptyRoot, Change{key(1), val(1)}, Change{key(2), val(2)})
	err := db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(tr.storeKey(root))
		if err != nil {
			return err
		}
		b, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		b[5] ^= 1
		return txn.Set(tr.storeKey(root), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = view(t, db, func(txn kv.Reader) (*Proof, error) {
		return New(testPrefix).Prove(txn, root, key(1))
	})
	if err == nil || !strings.Contains(err.Error(), "stored bytes do not hash to the node's name") {
		t.Fatalf("corrupt node: err = %v", err)
	}
}

// TestTxnTooBig shows the documented recovery: a full transaction refuses
// the batch with badger.ErrTxnTooBig, and the same batch from the same root
// in a new transaction gives the same root as applying it in one go.
func TestTxnTooBig(t *testing.T) {
	small := func(o badger.Options) badger.Options { return o.WithMemTableSize(1 << 20).WithValueThreshold(1 << 10) }
	db := openDB(t, small)
	tr := New(testPrefix)
	var changes []Change
	m := map[Hash]Hash{}
	for i := range 3000 {
		changes = append(changes, Change{key(i), val(i)})
		m[key(i)] = *val(i)
	}
	txn := db.NewTransaction(true)
	got, err := tr.UpdateBatch(kvOf(txn), EmptyRoot, changes)
	if !errors.Is(err, badger.ErrTxnTooBig) || got != EmptyRoot {
		t.Fatalf("oversized batch: root %x err %v, want ErrTxnTooBig and the old root", got, err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	root := EmptyRoot
	for i := 0; i < len(changes); i += 200 {
		root = update(t, db, tr, root, changes[i:min(i+200, len(changes))]...)
	}
	if want := naiveRoot(m); root != want {
		t.Fatalf("root after chunked retry %x, want %x", root, want)
	}
}

// TestGroupChanges: changes grouped by key in key order, each key's values
// and positions in the caller's order, repeats and interleaving included.
func TestGroupChanges(t *testing.T) {
	changes := []Change{{key(2), val(1)}, {key(1), val(2)}, {key(2), nil}, {key(1), val(3)}, {key(3), val(4)}, {key(1), nil}}
	type group struct {
		key    Hash
		values []*Hash
		index  []int
	}
	want := map[Hash]group{
		key(1): {key(1), []*Hash{changes[1].Value, changes[3].Value, nil}, []int{1, 3, 5}},
		key(2): {key(2), []*Hash{changes[0].Value, nil}, []int{0, 2}},
		key(3): {key(3), []*Hash{changes[4].Value}, []int{4}},
	}
	got := groupChanges(changes)
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d", len(got), len(want))
	}
	for i, g := range got {
		if i > 0 && bytes.Compare(got[i-1].key[:], g.key[:]) >= 0 {
			t.Fatalf("group %d is not in key order", i)
		}
		if w := want[g.key]; !slices.Equal(g.values, w.values) || !slices.Equal(g.index, w.index) {
			t.Errorf("key %x: values %v index %v, want %v %v", g.key[:2], g.values, g.index, w.values, w.index)
		}
		g.values = append(g.values, nil) // a group's list is its own: appending leaves the next alone
	}
	if got[1].values[0] != changes[0].Value {
		t.Fatal("appending to one group's values changed the next group's")
	}
}
