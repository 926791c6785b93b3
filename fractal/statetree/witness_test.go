package statetree

import (
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/kv"
)

// TestWitnessUpdates checks that a store holding only the witness of some
// keys updates them to the same root as the full tree, for deletions (which
// lift siblings), overwrites and insertions, and refuses a read elsewhere.
// The full tree is in badger, the witness in a map, as a referee holds it.
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
	w, err := view(t, full, func(txn kv.Reader) ([][]byte, error) { return tr.Witness(txn, root, touched) })
	if err != nil {
		t.Fatal(err)
	}
	want := update(t, full, tr, root, changes...)

	partial := kv.Map{}
	ptr := New(testPrefix)
	if err := ptr.PutWitness(partial, w); err != nil {
		t.Fatal(err)
	}
	for _, k := range touched[:4] {
		if _, ok, err := ptr.Get(partial, root, k); err != nil || !ok {
			t.Fatalf("witnessed key %x: ok=%v err=%v", k[:4], ok, err)
		}
	}
	got, err := ptr.UpdateBatch(partial, root, changes)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("root from witness %x, full tree %x", got[:8], want[:8])
	}
	// Keys off the witnessed paths cannot be read; only those whose path
	// ends in a witnessed sibling leaf can (a handful).
	missing := 0
	for i := 0; i < 500; i++ {
		_, _, err := New(testPrefix).Get(partial, root, key(i))
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

func TestPutWitnessRefusesMalformed(t *testing.T) {
	m := kv.Map{}
	tr := New(testPrefix)
	raw := (&node{kind: kindLeaf, a: *val(1), b: *val(2)}).encode()
	good := raw[:]
	for name, bad := range map[string][]byte{
		"short":        good[:64],
		"unknown kind": append([]byte{7}, good[1:]...),
	} {
		err := tr.PutWitness(m, [][]byte{good, bad})
		if err == nil || !strings.Contains(err.Error(), "witness node 1") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if n := len(m); n != 0 {
		t.Fatalf("refused witness left %d nodes", n)
	}
}
