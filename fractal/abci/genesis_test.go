package abci

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/keys"
)

// TestAppStateEpochs: without epochs app_state is what it was before them
// (no "epochs" field); with them it carries epoch_blocks, dkg_window and
// the keyholder keys, parses back to the same rules, and CheckAppState
// holds it against the instance's stored rules. Rules that leave no room
// for the DKG's windows, or name another number of keyholders than
// validators, are refused; so is a genesis whose epochs the instance does
// not have, or the reverse.
func TestAppStateEpochs(t *testing.T) {
	f := newVoteFixture(t)
	trust, err := f.in.TrustEntry()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := f.in.ThresholdKey()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := EncodeAppState(&AppState{Trust: trust, ThresholdKey: pk})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte("epochs")) {
		t.Fatalf("app_state without epochs: %s", plain)
	}
	rules := &fractal.EpochRules{Blocks: 30, Window: 4}
	for range 4 {
		k, err := keys.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		rules.Keyholders = append(rules.Keyholders, k.Public())
	}
	withEpochs, err := EncodeAppState(&AppState{Trust: trust, ThresholdKey: pk, Epochs: rules})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(withEpochs, []byte(`"epochs":{"epoch_blocks":30,"dkg_window":4,"keyholders":["`)) {
		t.Fatalf("app_state with epochs: %s", withEpochs)
	}
	st, err := ParseAppState(withEpochs)
	if err != nil || st.Epochs == nil || !bytes.Equal(st.Epochs.Encode(), rules.Encode()) {
		t.Fatalf("parsed %+v %v", st, err)
	}
	if _, err := CheckAppState(withEpochs, f.in); err == nil || !strings.Contains(err.Error(), "disagree on epochs") {
		t.Fatalf("epochs the instance lacks: %v", err)
	}
	if err := f.in.AttachGenesisEpochs(rules); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckAppState(withEpochs, f.in); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckAppState(plain, f.in); err == nil || !strings.Contains(err.Error(), "disagree on epochs") {
		t.Fatalf("a genesis without the instance's epochs: %v", err)
	}
	other := *rules
	other.Window = 5
	raw, err := EncodeAppState(&AppState{Trust: trust, ThresholdKey: pk, Epochs: &other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckAppState(raw, f.in); err == nil || !strings.Contains(err.Error(), "other epoch rules") {
		t.Fatalf("other rules: %v", err)
	}
	for _, c := range []struct {
		r    fractal.EpochRules
		want string
	}{
		{fractal.EpochRules{Blocks: 12, Window: 4, Keyholders: rules.Keyholders}, "epoch_blocks 12 leaves no room"},
		{fractal.EpochRules{Blocks: 30, Window: 0, Keyholders: rules.Keyholders}, "dkg_window 0 outside"},
		{fractal.EpochRules{Blocks: 30, Window: 4, Keyholders: rules.Keyholders[:3]}, "3 keyholder keys for 4 validators"},
	} {
		raw, err := EncodeAppState(&AppState{Trust: trust, ThresholdKey: pk, Epochs: &c.r})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseAppState(raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("rules %+v: %v", c.r, err)
		}
	}
}

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
