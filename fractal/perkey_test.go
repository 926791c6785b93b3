package fractal

import (
	"fmt"
	"testing"

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
