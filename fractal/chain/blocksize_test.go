package chain

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// fullBlock returns a block holding MaxBlockTxs transactions (the largest
// a Config lets an instance seal) with all-empty state roots except the
// first, signed by key.
func fullBlock(t *testing.T, key keys.PrivateKey, first byte) *Block {
	t.Helper()
	b := &Block{Height: 7, Prev: [32]byte{1}, Roots: make([][32]byte, MaxBlockTxs)}
	for i := range MaxBlockTxs {
		b.TxIDs = append(b.TxIDs, [32]byte{byte(i), byte(i >> 8), 1})
	}
	b.Roots[0][0] = first
	b.TxsHash = TxsHash(b.TxIDs)
	if err := SignBlock(context.Background(), b, keys.NewKeySigner(key)); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFullBlockFitsEveryFile checks that a block of MaxBlockTxs
// transactions passes through every format that carries one: a manifest
// file, an evidence record and a query proof.
func TestFullBlockFitsEveryFile(t *testing.T) {
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fullBlock(t, key, 1), fullBlock(t, key, 2)
	if n := len(a.Encode()); n > maxBlockBytes {
		t.Fatalf("a full block encodes to %d bytes, over the limit of %d", n, maxBlockBytes)
	}
	got, err := DecodeManifests(EncodeManifests([]*Block{a}))
	if err != nil || len(got) != 1 || got[0].Hash() != a.Hash() {
		t.Fatalf("manifest file of a full block: %v", err)
	}
	if _, err := DecodeEvidence(NewEvidence(SameHeight, a, b).Encode()); err != nil {
		t.Fatalf("evidence of two full blocks: %v", err)
	}
	qp := &QueryProof{Key: notes.StateKey{Key: []byte("k")}, Proof: &statetree.Proof{}, Block: a}
	back, err := DecodeQueryProof(qp.Encode())
	if err != nil {
		t.Fatalf("query proof against a full block: %v", err)
	}
	if st, err := CheckQueryProof(back, key.Public(), nil); err != nil || st.Note != nil {
		t.Fatalf("query proof against a full block: %v %v", st, err)
	}
}
