package chain

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/fractalvm/fractal/keys"
)

// A manifest is a block's header and signature: it decodes back to the
// block without its transaction list, with the same hash, and its encoding
// is canonical.
func TestManifestRoundTrip(t *testing.T) {
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ids := [][32]byte{{1}, {2}}
	b := &Block{Instance: [32]byte{8}, Height: 7, Prev: [32]byte{9}, TxsHash: TxsHash(ids),
		Roots: [][32]byte{{4}, {5}}, StateRoot: [32]byte{5}, TxIDs: ids}
	if err := SignBlock(context.Background(), b, keys.NewKeySigner(key)); err != nil {
		t.Fatal(err)
	}
	raw := b.EncodeManifest()
	m, err := DecodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Hash() != b.Hash() || VerifyBlock(m) != nil || len(m.TxIDs) != 0 || !bytes.Equal(m.EncodeManifest(), raw) {
		t.Fatal("the manifest does not decode to the block's header")
	}
	if _, err := DecodeManifest(append(raw, 0)); err == nil {
		t.Fatal("a manifest with a trailing byte decoded")
	}
	if _, err := DecodeManifest(raw[:len(raw)-1]); err == nil {
		t.Fatal("a truncated manifest decoded")
	}
	bad := &Block{Height: 3, Roots: [][32]byte{{1}}, StateRoot: [32]byte{2}}
	if _, err := DecodeManifest(bad.EncodeManifest()); err == nil || err.Error() != "fractal: manifest: final state root differs from the last transaction's root" {
		t.Fatalf("inconsistent roots: %v", err)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	b := &Block{Height: 3, Roots: [][32]byte{{1}}, StateRoot: [32]byte{1}}
	f.Add(b.EncodeManifest())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := DecodeManifest(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(m.EncodeManifest(), raw) {
			t.Fatalf("a manifest that decodes re-encodes differently")
		}
	})
}
