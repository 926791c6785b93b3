package dkg

import (
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// On a chain (decision 162) the DKG's messages of rounds 1–3 are
// transactions: every keyholder reads the same envelopes from the same
// blocks, so the chain is the agreement that round 4's confirmations give
// a transport without broadcast (decision 133), and there are none. The
// rules are the same function (decide).

// chainView opens msgs (the envelopes of rounds 1–3 a chain recorded for
// s) into a view: every signature checked, at most two per sender and
// round.
func chainView(s *Session, msgs []*Envelope) (*view, error) {
	v := newView(s)
	for _, e := range msgs {
		if e.Kind > KindJustification {
			return nil, fmt.Errorf("dkg: a %s on a chain (the chain is the agreement: no confirmations)", e.Kind)
		}
		if _, err := s.Open(e.Encode()); err != nil {
			return nil, err
		}
		if _, err := v.add(e); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// decideChain applies the rules to a chain's messages: the outcome without
// confirmations, and the decision for a party's share.
func decideChain(s *Session, msgs []*Envelope) (*Outcome, *view, *decision, error) {
	v, err := chainView(s, msgs)
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := decide(v)
	if err != nil {
		return nil, nil, nil, err
	}
	t := &Transcript{Session: s, Messages: v.sorted(KindDeal, KindResponse, KindJustification)}
	o := &Outcome{Session: s, Transcript: t, Hash: t.Hash(), Qual: d.qual, Holders: d.holders, Faults: d.faults}
	for _, c := range d.commits {
		o.Commits = append(o.Commits, c.Bytes())
	}
	return o, v, d, nil
}

// Decide is the DKG's outcome from the messages of rounds 1–3 a chain
// recorded for s, in any order: the key, qualified dealers, holders and
// faults, and the transcript (no confirmations; its hash is what the key
// records). Every validator runs it at the end of round 3 on the same
// messages and reaches the same outcome. The error says why the rules
// leave no key.
func Decide(s *Session, msgs []*Envelope) (*Outcome, error) {
	o, _, _, err := decideChain(s, msgs)
	return o, err
}

// CheckChain checks a transcript whose agreement a chain gave (it holds no
// confirmations): every signature and the rules, as Decide.
func CheckChain(t *Transcript) (*Outcome, error) {
	if len(t.Confirmations) != 0 {
		return nil, errors.New("dkg: transcript: a chain's transcript holds no confirmations")
	}
	return Decide(t.Session, t.Messages)
}

// Settle ends this party's DKG on a chain: the outcome of Decide over the
// chain's messages msgs, with this keyholder's share of the key. Its own
// deal's part comes from its polynomial, the others' from the qualified
// deals in msgs (opened with its key) or the shares their dealers
// revealed. It needs no round 4. The error says why it holds no share.
func (p *Party) Settle(msgs []*Envelope) (*Outcome, error) {
	if p.coef == nil {
		return nil, errors.New("dkg: settle: the party never dealt")
	}
	o, v, d, err := decideChain(p.s, msgs)
	if err != nil {
		return nil, err
	}
	share, err := p.share(d, func(i int) (*edwards25519.Scalar, error) {
		if x := d.revealed[i][p.self]; x != nil {
			return x, nil
		}
		dl, err := v.deal(v.msgs[KindDeal][i][0])
		if err != nil {
			return nil, err
		}
		x, reason := openShare(p.s, i, p.self, p.a, dl)
		if reason != ReasonNone {
			return nil, fmt.Errorf("dkg: keyholder %d: the deal of keyholder %d on the chain: %s", p.self, i, reason)
		}
		return x, nil
	})
	o.Share = share
	return o, err
}
