package chain

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

func testRules(t testing.TB) Rules {
	return Rules{
		Fee:    &phases.FeeToken{Application: notes.Hash{1}, Owner: notes.Hash{2}, Token: keys.PublicKey{9}.String() + ":GOLD"},
		Reward: &Reward{Application: notes.Hash{3}, Owner: notes.Hash{4}, Amount: 50},
	}
}

// TestGenesisVersions: an instance without rules keeps the version 1
// descriptor (executor key and salt, 65 bytes) and so its ID; one with
// rules is version 2 and round-trips; malformed descriptors are refused
// with their reasons.
func TestGenesisVersions(t *testing.T) {
	g := &Genesis{Executor: keys.PublicKey{5}, Salt: [32]byte{6}}
	v1 := g.Encode()
	if len(v1) != 65 || v1[0] != 1 {
		t.Fatalf("version 1 descriptor %x", v1)
	}
	g.Rules = testRules(t)
	v2 := g.Encode()
	back, err := DecodeGenesis(v2)
	if err != nil || !bytes.Equal(back.Encode(), v2) || back.ID() == (&Genesis{Executor: g.Executor, Salt: g.Salt}).ID() {
		t.Fatalf("version 2: %+v %v", back, err)
	}
	noRules := append([]byte{2}, v1[1:]...)
	noRules = append(noRules, 0, 0)
	badAmount := bytes.Clone(v2)
	badAmount[len(badAmount)-1] = 0 // the reward amount, 50, is its last byte
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"version 3", append([]byte{3}, v1[1:]...), "unknown version 3"},
		{"version 2 without rules", noRules, "version 2 without rules (version 1 is its encoding)"},
		{"trailing", append(bytes.Clone(v1), 0), "trailing"},
		{"short", v1[:40], "truncated input"},
		{"reward 0", badAmount, "reward amount 0 outside 1..999999999999999"},
	} {
		if _, err := DecodeGenesis(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzDecodeGenesis(f *testing.F) {
	g := &Genesis{Executor: keys.PublicKey{5}, Salt: [32]byte{6}}
	f.Add(g.Encode())
	g.Rules = testRules(f)
	f.Add(g.Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := DecodeGenesis(data)
		if err != nil {
			return
		}
		if !bytes.Equal(g.Encode(), data) {
			t.Fatalf("genesis %x does not round-trip", data)
		}
	})
}

func FuzzDecodeLabels(f *testing.F) {
	k := notes.StateKey{Application: notes.Hash{1}, Owner: notes.Hash{2}, Key: []byte("k")}
	f.Add(EncodeLabels([]phases.Labelled{{Label: "pay", Key: k}, {Label: "change.1", Key: k}}))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ls, err := DecodeLabels(data)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeLabels(ls), data) {
			t.Fatalf("label record %s does not round-trip", hex.EncodeToString(data))
		}
	})
}
