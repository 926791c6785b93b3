package abci

import (
	"bytes"
	"encoding/hex"
	"testing"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/tfhe"
)

// FuzzParseAppState: app_state never panics the parser, and what parses
// with a key encodes back to a parse of the same key and expiry window.
func FuzzParseAppState(f *testing.F) {
	pk, _, err := tfhe.TrustedDealerSetup(4, 3)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"id":"00","genesis":"00"}`))
	f.Add([]byte(`{"trust":{},"threshold_key":"` + "00000000" + `"}`))
	f.Add([]byte(`{"trust":{},"threshold_key":"` + hex.EncodeToString(pk.Encode()) + `","x":1}`))
	f.Add([]byte(`{"trust":{},"threshold_key":"` + hex.EncodeToString(pk.Encode()) + `","encrypted_expiry_blocks":7}`))
	f.Add([]byte(`{"trust":{},"threshold_key":"` + hex.EncodeToString(pk.Encode()) + `","epochs":{"epoch_blocks":30,"dkg_window":4,"keyholders":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseAppState(raw)
		if err != nil || s.ThresholdKey == nil {
			return
		}
		again, err := EncodeAppState(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParseAppState(again)
		if err != nil || s2.ThresholdKey.ID() != s.ThresholdKey.ID() || s2.EncryptedExpiryBlocks != s.EncryptedExpiryBlocks {
			t.Fatalf("re-encoded app_state: %v", err)
		}
	})
}

// FuzzDecodeExtension: any bytes are refused or decode to an extension
// that encodes back to the same bytes.
func FuzzDecodeExtension(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 5})
	f.Add(append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 5}, make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := DecodeExtension(raw)
		if err != nil {
			return
		}
		if again := EncodeExtension(e); !bytes.Equal(again, raw) {
			t.Fatalf("extension %x encodes back to %x", raw, again)
		}
	})
}

// FuzzDecodeSharesTx: any bytes after the magic are refused or decode
// without a panic.
func FuzzDecodeSharesTx(f *testing.F) {
	ok, err := EncodeSharesTx(&abcitypes.ExtendedCommitInfo{Round: 2, Votes: []abcitypes.ExtendedVoteInfo{{VoteExtension: []byte{1}, ExtensionSignature: []byte{2}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ok)
	f.Add([]byte(sharesTxMagic + "\xff\xff"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		DecodeSharesTx(raw)
	})
}
