package dispute

import (
	"context"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
)

// junkWitness answers with a witness holding a tree node of an unknown
// kind: bytes no honest store could hold.
type junkWitness struct{ *Signed }

func (j junkWitness) Witness(int) (*chain.Witness, error) {
	node := make([]byte, 65)
	node[0] = 9
	return &chain.Witness{Nodes: [][]byte{node}}, nil
}

// TestMalformedWitnessLoses checks that a party answering with a malformed
// witness loses the dispute instead of stopping it, whichever side it is.
func TestMalformedWitnessLoses(t *testing.T) {
	s := newScene(t)
	faultyKey := genKey(t)
	faulty := faultyExecutor(t, s, 9, faultyKey)
	for _, order := range []string{"honest first", "faulty first"} {
		a, b := Party(s.honest()), Party(junkWitness{&Signed{Block: faulty}})
		if order == "faulty first" {
			a, b = b, a
		}
		tr, err := Play(s.parent, a, b, s.txAt)
		if err != nil {
			t.Fatalf("%s: %v", order, err)
		}
		loser, ok := tr.Loser()
		if !ok || loser != faultyKey.Public() || !strings.Contains(tr.Wrong[0].Reason, "witness node 0: node") {
			t.Fatalf("%s: verdict %+v", order, tr.Wrong)
		}
		if !tr.Decided || tr.Root != s.block.Roots[9] {
			t.Fatalf("%s: referee root %x decided=%v", order, tr.Root[:8], tr.Decided)
		}
	}
}

// TestPlayRefusesInconsistentBlocks checks that validly signed blocks whose
// roots or transaction lists do not match their headers are refused with a
// reason, not played (they used to index past their lists).
func TestPlayRefusesInconsistentBlocks(t *testing.T) {
	s := newScene(t)
	key := genKey(t)
	faulty := faultyExecutor(t, s, 3, key)
	noTxs := *faulty
	noTxs.TxIDs = nil // not covered by the signature
	short := *faulty
	short.Roots = faulty.Roots[:10]
	short.StateRoot = short.Roots[9]
	if err := chain.SignBlock(context.Background(), &short, keys.NewKeySigner(key)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		b    *chain.Block
		want string
	}{
		{"no transaction list", &noTxs, "64 roots for 0 transactions"},
		{"fewer roots", &short, "10 roots for 64 transactions"},
	} {
		for _, first := range []bool{false, true} {
			a, b := Party(s.honest()), Party(&Signed{Block: c.b})
			if first {
				a, b = b, a
			}
			_, err := Play(s.parent, a, b, s.txAt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s (first %v): %v", c.name, first, err)
			}
		}
	}
}
