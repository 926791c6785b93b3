package dkg

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
)

// TestResumeParty: on a chain of four parties, keyholder 3 is rebuilt
// from its State after each of its rounds (a restart) and goes on from
// the chain's envelopes: it makes no second deal, its own envelopes are
// what it sent, Decide qualifies all four and its Settle gives a share
// that matches the key. A state of another session, for another
// keyholder's key, cut short, with a trailing byte, with another
// polynomial than its deal's, or before the deal is refused with its
// reason.
func TestResumeParty(t *testing.T) {
	ks := genKeys(t, 4)
	s := sessionOf(t, Config{Epoch: 2, K: 3, Keys: ks})
	ps := make([]*Party, 4)
	var chain []*Envelope
	if _, err := mustParty(t, s, ks[2]).State(); err == nil || !strings.Contains(err.Error(), "round 0") {
		t.Fatalf("state before the deal: %v", err)
	}
	for i := range ps {
		ps[i] = mustParty(t, s, ks[i])
		e, err := ps[i].Start()
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, e)
	}
	restart := func() {
		state, err := ps[2].State()
		if err != nil {
			t.Fatal(err)
		}
		sent := ps[2].Own()
		if ps[2], err = ResumeParty(s, ks[2], state); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(ps[2].Own(), sent, func(a, b *Envelope) bool { return a.Hash() == b.Hash() }) {
			t.Fatal("the resumed party's own envelopes differ from what it sent")
		}
	}
	restart()
	// Hostile or stale states.
	good, err := ps[2].State()
	if err != nil {
		t.Fatal(err)
	}
	other := sessionOf(t, Config{Epoch: 3, K: 3, Keys: ks})
	badCoef := bytes.Clone(good)
	badCoef[1+32+4] ^= 1 // the first coefficient, still canonical
	for _, c := range []struct {
		name  string
		s     *Session
		state []byte
		want  string
	}{
		{"another session", other, good, "of another session"},
		{"another keyholder", s, good, "is keyholder 3's deal, not this keyholder's deal"},
		{"cut short", s, good[:len(good)-1], "dkg: party state: "},
		{"a trailing byte", s, append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"another polynomial", s, badCoef, "its deal does not commit to its polynomial"},
		{"empty", s, nil, "dkg: party state: "},
	} {
		key := ks[2]
		if c.name == "another keyholder" {
			key = ks[1]
		}
		if _, err := ResumeParty(c.s, key, c.state); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	chain = chainRounds(t, ps, chain, restart)
	o, err := Decide(s, chain)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Qual, []int{1, 2, 3, 4}) || !slices.Equal(o.Holders, []int{1, 2, 3, 4}) || len(o.Faults) != 0 {
		t.Fatalf("qual %v holders %v faults %+v", o.Qual, o.Holders, o.Faults)
	}
	for i, p := range ps {
		po, err := p.Settle(chain)
		if err != nil || po.Hash != o.Hash || po.Share.Index != i+1 {
			t.Fatalf("party %d: %+v %v", i+1, po, err)
		}
	}
}

func mustParty(t testing.TB, s *Session, k keys.PrivateKey) *Party {
	t.Helper()
	p, err := NewParty(s, k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func FuzzResumeParty(f *testing.F) {
	ks := genKeys(f, 4)
	s := sessionOf(f, Config{Epoch: 2, K: 3, Keys: ks})
	p, err := NewParty(s, ks[0])
	if err != nil {
		f.Fatal(err)
	}
	if _, err := p.Start(); err != nil {
		f.Fatal(err)
	}
	state, err := p.State()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(state)
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ResumeParty(s, ks[0], data)
		if err != nil {
			return
		}
		again, err := q.State()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("a state that resumes encodes differently: %v", err)
		}
	})
}
