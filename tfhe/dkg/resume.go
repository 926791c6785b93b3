package dkg

// A party on a chain must survive its process (decision 175): its
// polynomial is the only thing the chain cannot give back, and a second
// deal with another polynomial would be equivocation. State is what a
// party keeps on disk; ResumeParty makes it a party again, which the
// chain's envelopes then bring up to date.

import (
	"bytes"
	"errors"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

const stateVersion = 1

// MaxState bounds a party's state: its polynomial and one envelope of
// each of its rounds 1–3.
const MaxState = 1 + 32 + 4 + 32*MaxKeyholders + 4 + 3*(4+MaxEnvelope)

// State returns what the party needs to go on after a restart: `u8 1 ‖
// bytes[32] session ID ‖ u32 k ‖ k × bytes[32] coefficient ‖ u32 round ‖
// round × (u32 len ‖ envelope)`: its polynomial and its own envelopes of
// rounds 1 to the round it reached, one each. It holds the secret polynomial: keep it as a share.
func (p *Party) State() ([]byte, error) {
	if p.coef == nil || p.round > KindJustification {
		return nil, fmt.Errorf("dkg: party state: round %d (a state is kept between the deal and round 3)", p.round)
	}
	id := p.s.ID()
	w := enc.NewWriter(MaxState)
	w.U8(stateVersion)
	w.Fixed(id[:])
	w.U32(uint32(len(p.coef)))
	for _, c := range p.coef {
		w.Fixed(c.Bytes())
	}
	w.U32(uint32(p.round))
	for k := KindDeal; k <= p.round; k++ {
		w.Var(p.v.msgs[k][p.self][0].Encode())
	}
	return w.Bytes(), nil
}

// StateSession returns the ID of the session a party state belongs to.
func StateSession(state []byte) ([32]byte, error) {
	var id [32]byte
	if len(state) < 1+32 || state[0] != stateVersion {
		return id, errors.New("dkg: party state: not a party state of version 1")
	}
	copy(id[:], state[1:33])
	return id, nil
}

// Own returns the party's own envelopes of the rounds it reached, in
// round order.
func (p *Party) Own() []*Envelope {
	var out []*Envelope
	for k := KindDeal; k <= min(p.round, KindJustification); k++ {
		out = append(out, p.v.msgs[k][p.self]...)
	}
	return out
}

// ResumeParty is the party of key in session s restored from state: its
// polynomial, and its own envelopes, each opened as the session opens any
// (signature, session) and from this keyholder, the deal's commitments
// those of the polynomial. The error says why the state is refused.
func ResumeParty(s *Session, key keys.PrivateKey, state []byte) (*Party, error) {
	p, err := NewParty(s, key)
	if err != nil {
		return nil, err
	}
	if err := p.resume(state); err != nil {
		return nil, fmt.Errorf("dkg: party state: %w", err)
	}
	return p, nil
}

func (p *Party) resume(state []byte) error {
	if len(state) > MaxState {
		return fmt.Errorf("%d bytes, limit %d", len(state), MaxState)
	}
	r := enc.NewReader(state)
	if v := r.U8(); r.Err() == nil && v != stateVersion {
		return fmt.Errorf("unknown version %d", v)
	}
	var id [32]byte
	r.Into(id[:])
	if r.Err() == nil && id != p.s.ID() {
		return errors.New("of another session")
	}
	k := r.Count(MaxKeyholders, "coefficients")
	if r.Err() == nil && k != p.s.K {
		return fmt.Errorf("%d coefficients, the threshold is %d", k, p.s.K)
	}
	coef := make([]*edwards25519.Scalar, 0, k)
	for range k {
		raw := r.Fixed(group.ScalarSize)
		if r.Err() != nil {
			break
		}
		c, err := group.DecodeScalar(raw)
		if err != nil {
			return err
		}
		coef = append(coef, c)
	}
	round := Kind(r.U32())
	if r.Err() == nil && (round < KindDeal || round > KindJustification) {
		return fmt.Errorf("round %d", round)
	}
	var own []*Envelope
	for kind := KindDeal; r.Err() == nil && kind <= round; kind++ {
		raw := r.Var(MaxEnvelope, "envelope")
		if r.Err() != nil {
			break
		}
		e, err := p.s.Open(raw)
		if err != nil {
			return err
		}
		if e.Kind != kind || int(e.From) != p.self {
			return fmt.Errorf("envelope %d is keyholder %d's %s, not this keyholder's %s", kind, e.From, e.Kind, kind)
		}
		own = append(own, e)
	}
	if err := r.Finish(); err != nil {
		return err
	}
	d, err := parseDeal(p.s, own[0].Body)
	if err != nil {
		return fmt.Errorf("its deal: %w", err)
	}
	for j, c := range group.Commit(coef) {
		if !bytes.Equal(c.Bytes(), d.commits[j].Bytes()) {
			return errors.New("its deal does not commit to its polynomial")
		}
	}
	for _, e := range own {
		if _, err := p.v.add(e); err != nil {
			return err
		}
	}
	p.coef, p.round = coef, round
	return nil
}
