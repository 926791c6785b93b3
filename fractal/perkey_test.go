package fractal

import (
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// TestPerKeyLimit: a fresh key's three transactions, queued together: one
// goes into block 1, the other two, in order, into block 2 (one earlier
// block holds a transaction of the key, so two fit). Another key's
// transaction queued after them is not held back.
func TestPerKeyLimit(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	var bobs []notes.Hash
	for i := range 3 {
		tx := f.mint(f.allow, f.allow, f.bob, fmt.Sprintf("b%d", i), "1")
		if _, err := f.in.Submit(tx); err != nil {
			t.Fatal(err)
		}
		bobs = append(bobs, tx.ID())
	}
	alice := f.mint(f.allow, f.allow, f.alice, "a", "1")
	if _, err := f.in.Submit(alice); err != nil {
		t.Fatal(err)
	}
	want := [][]notes.Hash{{bobs[0], alice.ID()}, {bobs[1], bobs[2]}}
	for h, ids := range want {
		s, err := f.in.Seal(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%x", s.Block.TxIDs) != fmt.Sprintf("%x", ids) {
			t.Fatalf("block %d holds %x, want %x", h+1, s.Block.TxIDs, ids)
		}
		for _, rc := range s.Receipts {
			if rc.Status != phases.Accepted {
				t.Fatalf("block %d: %+v", h+1, rc)
			}
		}
	}
	if s, err := f.in.Seal(t.Context()); err != nil || s.Block != nil {
		t.Fatalf("a third block: %+v %v", s, err)
	}
	if _, err := f.in.Verify(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
}

// countedReads is a kv.Reader that records the keys read.
type countedReads struct {
	kv.Map
	read []string
}

func (c *countedReads) Get(k []byte) ([]byte, bool, error) {
	c.read = append(c.read, string(k))
	return c.Map.Get(k)
}

// TestPerKeyLimitStopsAtMax: withinPerKeyLimit with a maximum keeps what
// the unbounded one keeps, cut at the maximum, and reads no count of a
// signer after the last one it keeps (decision 183).
func TestPerKeyLimitStopsAtMax(t *testing.T) {
	var pub []keys.PublicKey
	for range 5 {
		pub = append(pub, genKey(t).Public())
	}
	m := kv.Map{}
	if err := m.Set(perKeyKey(pub[1]), u64(1)); err != nil { // pub[1] has room for two
		t.Fatal(err)
	}
	// pub[0] has room for one: its second transaction is deferred, and holds back its third.
	order := []int{0, 0, 1, 1, 0, 2, 3, 4}
	var q []queued
	for i, k := range order {
		q = append(q, queued{seq: uint64(i), tx: &phases.Tx{Signers: []keys.PublicKey{pub[k]}}})
	}
	all, err := withinPerKeyLimit(m, q, len(q))
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range all {
		seqs = append(seqs, e.seq)
	}
	if want := []uint64{0, 2, 3, 5, 6, 7}; fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("kept %v, want %v", seqs, want)
	}
	for limit := range len(all) + 1 {
		r := &countedReads{Map: m}
		got, err := withinPerKeyLimit(r, q, limit)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(all[:limit]) {
			t.Fatalf("max %d: kept %v, want %v", limit, got, all[:limit])
		}
		lookedAt := 0 // the queue up to its last kept entry
		if len(got) > 0 {
			lookedAt = int(got[len(got)-1].seq) + 1
		}
		signers := map[string]bool{}
		for _, e := range q[:lookedAt] {
			signers[string(perKeyKey(e.tx.Signers[0]))] = true
		}
		if len(r.read) != len(signers) {
			t.Fatalf("max %d: read %d counts, want the %d of the signers up to the last kept", limit, len(r.read), len(signers))
		}
		for _, k := range r.read {
			if !signers[k] {
				t.Fatalf("max %d: read the count of a signer after the last kept transaction", limit)
			}
		}
	}
}
