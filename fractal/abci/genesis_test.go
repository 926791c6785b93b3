package abci

import (
	"encoding/hex"
	"encoding/json"
	"testing"
)

// TestAppStateExpiryWindow: encrypted_expiry_blocks is read when named
// (absent is the default), and refused past 2³² or negative.
func TestAppStateExpiryWindow(t *testing.T) {
	f := newVoteFixture(t)
	pk, err := f.in.ThresholdKey()
	if err != nil {
		t.Fatal(err)
	}
	entry, err := f.in.TrustEntry()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	trust, key := string(raw), hex.EncodeToString(pk.Encode())
	for _, c := range []struct {
		raw    string
		window uint64
		err    string
	}{
		{`{"trust":` + trust + `,"threshold_key":"` + key + `","encrypted_expiry_blocks":7}`, 7, ""},
		{`{"trust":` + trust + `,"threshold_key":"` + key + `"}`, 100, ""},
		{`{"trust":` + trust + `,"threshold_key":"` + key + `","encrypted_expiry_blocks":4294967297}`, 0, "encrypted_expiry_blocks 4294967297 is over 4294967296"},
		{`{"trust":` + trust + `,"threshold_key":"` + key + `","encrypted_expiry_blocks":-1}`, 0, "json: cannot unmarshal number -1 into Go struct field appStateJSON.encrypted_expiry_blocks of type uint64"},
	} {
		s, err := ParseAppState([]byte(c.raw))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.raw[len(c.raw)-40:], err)
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%s: %v, want %q", c.raw[len(c.raw)-40:], err, c.err)
		case c.err == "" && s.ExpiryBlocks() != c.window:
			t.Errorf("%s: window %d, want %d", c.raw[len(c.raw)-40:], s.ExpiryBlocks(), c.window)
		}
	}
}
