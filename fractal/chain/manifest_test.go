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

// TestCertifiedManifestFile: a certified file (version 2) round-trips with
// its certificates; DecodeManifests, which reads signed blocks, refuses it;
// truncated or padded files are refused.
func TestCertifiedManifestFile(t *testing.T) {
	ids := [][32]byte{{1}}
	blocks := []*Block{{Height: 3, Roots: [][32]byte{{1}}, StateRoot: [32]byte{1}, TxIDs: ids, TxsHash: TxsHash(ids)}, {Height: 4, TxsHash: TxsHash(nil)}}
	certs := [][]byte{{1, 2, 3}, {}}
	file := EncodeCertifiedManifests(blocks, certs)
	got, gotCerts, err := DecodeManifestFile(file)
	if err != nil || len(got) != 2 || got[0].Hash() != blocks[0].Hash() || !bytes.Equal(gotCerts[0], certs[0]) || len(gotCerts[1]) != 0 {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := DecodeManifests(file); err == nil || err.Error() != "fractal: manifest file: a certified manifest file (version 2), not one of signed blocks" {
		t.Fatalf("DecodeManifests of a certified file: %v", err)
	}
	if _, certs, err := DecodeManifestFile(EncodeManifests(blocks)); err != nil || certs != nil {
		t.Fatalf("a file of signed blocks: %v %v", certs, err)
	}
	for _, bad := range [][]byte{file[:len(file)-1], append(file, 0)} {
		if _, _, err := DecodeManifestFile(bad); err == nil {
			t.Fatal("a damaged certified file decoded")
		}
	}
}

func FuzzDecodeManifestFile(f *testing.F) {
	ids := [][32]byte{{1}}
	b := &Block{Height: 3, Roots: [][32]byte{{1}}, StateRoot: [32]byte{1}, TxIDs: ids, TxsHash: TxsHash(ids)}
	f.Add(EncodeCertifiedManifests([]*Block{b}, [][]byte{{7}}))
	f.Add(EncodeManifests([]*Block{b}))
	f.Add([]byte{2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		blocks, certs, err := DecodeManifestFile(raw)
		if err != nil {
			return
		}
		again := EncodeManifests(blocks)
		if certs != nil {
			again = EncodeCertifiedManifests(blocks, certs)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("a manifest file that decodes re-encodes differently")
		}
	})
}
