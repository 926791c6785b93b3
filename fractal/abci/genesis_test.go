package abci

import (
	"encoding/hex"
	"testing"

	"github.com/fractalvm/fractal/tfhe"
)

// FuzzParseAppState: app_state never panics the parser, and what parses
// with a key encodes back to a parse of the same key.
func FuzzParseAppState(f *testing.F) {
	pk, _, err := tfhe.TrustedDealerSetup(4, 3)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"id":"00","genesis":"00"}`))
	f.Add([]byte(`{"trust":{},"threshold_key":"` + "00000000" + `"}`))
	f.Add([]byte(`{"trust":{},"threshold_key":"` + hex.EncodeToString(pk.Encode()) + `","x":1}`))
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
		if err != nil || s2.ThresholdKey.ID() != s.ThresholdKey.ID() {
			t.Fatalf("re-encoded app_state: %v", err)
		}
	})
}
