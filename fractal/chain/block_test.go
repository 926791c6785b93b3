package chain

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
)

func TestBlockEncodingRoundTrip(t *testing.T) {
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ids := [][32]byte{{1}, {2}, {3}}
	b := &Block{Instance: [32]byte{8}, Height: 7, Prev: [32]byte{9}, TxsHash: TxsHash(ids),
		Roots: [][32]byte{{4}, {5}, {6}}, StateRoot: [32]byte{6}, TxIDs: ids}
	if err := SignBlock(context.Background(), b, keys.NewKeySigner(key)); err != nil {
		t.Fatal(err)
	}
	enc := b.Encode()
	got, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), enc) || got.Hash() != b.Hash() {
		t.Fatal("block did not round-trip")
	}
	if err := VerifyBlock(got); err != nil {
		t.Fatal(err)
	}
	// Every single-byte change is refused by the decoder or the signature.
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 1
		if d, err := DecodeBlock(bad); err == nil && VerifyBlock(d) == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
}

func TestDecodeBlockRefusals(t *testing.T) {
	ids := [][32]byte{{1}}
	good := &Block{Height: 1, TxsHash: TxsHash(ids), Roots: [][32]byte{{4}}, StateRoot: [32]byte{4}, TxIDs: ids}
	cases := map[string]struct {
		mutate func(b *Block) []byte
		want   string
	}{
		"trailing":   {func(b *Block) []byte { return append(b.Encode(), 0) }, "1 trailing bytes"},
		"truncated":  {func(b *Block) []byte { e := b.Encode(); return e[:len(e)-1] }, "truncated input"},
		"version":    {func(b *Block) []byte { e := b.Encode(); e[0] = 2; return e }, "unknown version 2"},
		"roots":      {func(b *Block) []byte { b.Roots = nil; return b.Encode() }, "0 roots for 1 transactions"},
		"txs hash":   {func(b *Block) []byte { b.TxsHash = [32]byte{}; return b.Encode() }, "transactions hash does not match"},
		"final root": {func(b *Block) []byte { b.StateRoot = [32]byte{}; return b.Encode() }, "final state root differs"},
		"genesis":    {func(b *Block) []byte { b.Height = 0; return b.Encode() }, "genesis block with a parent or transactions"},
	}
	for name, c := range cases {
		b := *good
		_, err := DecodeBlock(c.mutate(&b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func FuzzDecodeBlock(f *testing.F) {
	ids := [][32]byte{{1}, {2}}
	f.Add((&Block{Height: 1, TxsHash: TxsHash(ids), Roots: [][32]byte{{4}, {5}}, StateRoot: [32]byte{5}, TxIDs: ids}).Encode())
	f.Add((&Block{TxsHash: TxsHash(nil)}).Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBlock(data)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Encode(), data) {
			t.Fatal("decode accepted a non-canonical encoding")
		}
	})
}
