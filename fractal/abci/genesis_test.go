package abci

import (
	"bytes"
	"crypto/rand"
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
