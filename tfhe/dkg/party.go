package dkg

import (
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// Party is one keyholder's side of the DKG: a state machine that makes its
// own messages, keeps the messages it receives, and in the end holds its
// own share and nothing else. It does no I/O and reads no clock: a driver
// passes it the envelopes that arrive (Receive), asks who has not been
// heard from in the current round (Missing), and ends each round when
// everyone has answered or its time is up (Next). Run drives n parties in
// one process; Drive runs one against a Transport.
//
// The rounds: 1, each keyholder deals (commitments, and a share encrypted
// to every other keyholder); 2, each responds to every deal (approval or
// complaint); 3, each dealer reveals the shares it was complained about,
// and anyone holding deals that the responses show differ passes them on;
// 4, each confirms the hash of the transcript of rounds 1–3 it reached.
// The key follows from the transcript alone (decide).
type Party struct {
	s     *Session
	self  int
	key   keys.PrivateKey
	a     *edwards25519.Scalar // the Edwards form of key, to open deals
	round Kind                 // the round whose message was sent last; 0 before Start, done after
	coef  []*edwards25519.Scalar
	v     *view
	mine  map[int]*edwards25519.Scalar // shares received in approved deals, by dealer
	dec   *decision
	err   error // decide's, when the rules leave no key
}

// done is the round after the last.
const done = KindConfirmation + 1

// NewParty is the party of the keyholder whose key is key.
func NewParty(s *Session, key keys.PrivateKey) (*Party, error) {
	self := s.Index(key.Public())
	if self == 0 {
		return nil, fmt.Errorf("dkg: key %s is not one of the session's keyholders", key.Public())
	}
	a, _ := key.EdwardsKey()
	return &Party{s: s, self: self, key: key, a: a, v: newView(s), mine: map[int]*edwards25519.Scalar{}}, nil
}

// Self is this party's keyholder number.
func (p *Party) Self() int { return p.self }

// Round is the round in progress (its own message sent); 0 before Start.
func (p *Party) Round() Kind { return p.round }

// Done reports whether the last round has ended.
func (p *Party) Done() bool { return p.round == done }

// Start begins round 1 and returns this keyholder's deal: a fresh random
// polynomial of degree k−1, its commitments, and its value at every other
// keyholder encrypted to that keyholder.
func (p *Party) Start() (*Envelope, error) {
	if p.round != 0 {
		return nil, errors.New("dkg: party already started")
	}
	s := p.s
	p.coef = group.RandomPoly(s.K)
	e := group.RandomScalar()
	d := &deal{commits: group.Commit(p.coef), eph: new(edwards25519.Point).ScalarBaseMult(e)}
	for j := 1; j <= s.N(); j++ {
		if j == p.self {
			continue
		}
		box, err := sealShare(s, p.self, j, e, d.eph, group.EvalPoly(p.coef, uint64(j)))
		if err != nil {
			return nil, err
		}
		d.boxes = append(d.boxes, box)
	}
	p.round = KindDeal
	return p.send(KindDeal, encodeDeal(d))
}

func (p *Party) send(kind Kind, body []byte) (*Envelope, error) {
	e, err := p.s.Seal(p.key, kind, p.self, body)
	if err != nil {
		return nil, err
	}
	if _, err := p.v.add(e); err != nil {
		return nil, err
	}
	return e, nil
}

// Receive opens an envelope that arrived and keeps it. It reports whether
// the envelope was new (a copy of one already kept changes nothing). The
// error is a *Refusal for an envelope that does not decode, is from another
// session or not signed by the keyholder it names. Envelopes of a later
// round are kept for it; those of an earlier round still count in the
// transcript (a deal passed on as evidence, say).
func (p *Party) Receive(raw []byte) (*Envelope, bool, error) {
	e, err := p.s.Open(raw)
	if err != nil {
		return nil, false, err
	}
	isNew, err := p.v.add(e)
	return e, isNew, err
}

// Missing lists the keyholders whose message for the round in progress has
// not arrived.
func (p *Party) Missing() []int {
	if p.round < KindDeal || p.round > KindConfirmation {
		return nil
	}
	var out []int
	for j := 1; j <= p.s.N(); j++ {
		if j != p.self && len(p.v.msgs[p.round][j]) == 0 {
			out = append(out, j)
		}
	}
	return out
}

// Next ends the round in progress, whoever has answered, and returns the
// envelopes to send for the next: this keyholder's message, and in round 3
// the deals it passes on. After round 4 it returns none, and Outcome tells
// the result.
func (p *Party) Next() ([]*Envelope, error) {
	var out []*Envelope
	var err error
	switch p.round {
	case KindDeal:
		out, err = p.respond()
	case KindResponse:
		out, err = p.justify()
	case KindJustification:
		out, err = p.confirm()
	case KindConfirmation:
	default:
		return nil, fmt.Errorf("dkg: no round in progress (round %d)", p.round)
	}
	if err != nil {
		return nil, err
	}
	p.round++
	return out, nil
}

// respond opens this keyholder's share in every deal and approves or
// complains, naming each deal by its hash.
func (p *Party) respond() ([]*Envelope, error) {
	var es []entry
	for i := 1; i <= p.s.N(); i++ {
		if i == p.self {
			continue
		}
		deals := p.v.msgs[KindDeal][i]
		var e entry
		switch len(deals) {
		case 0:
			e.status = StatusMissing
		case 1:
			e.status, e.deal = StatusComplaint, deals[0].Hash()
			d, err := p.v.deal(deals[0])
			if err != nil {
				e.reason = ReasonMalformed
				break
			}
			x, reason := openShare(p.s, i, p.self, p.a, d)
			if reason != ReasonNone {
				e.reason = reason
				break
			}
			e.status, p.mine[i] = StatusApproval, x
		default: // the dealer is left out whatever this says; name one of them
			e = entry{status: StatusComplaint, deal: deals[0].Hash(), reason: ReasonTwoDeals}
		}
		es = append(es, e)
	}
	e, err := p.send(KindResponse, encodeResponse(es))
	return []*Envelope{e}, err
}

// justify reveals this dealer's share for every keyholder that complained
// about its deal, and passes on every deal it holds from a dealer that the
// responses show sent different deals: the dealer's own signature makes
// them evidence for every keyholder.
func (p *Party) justify() ([]*Envelope, error) {
	s := p.s
	mine := p.v.msgs[KindDeal][p.self][0].Hash()
	named := make([]map[[32]byte]bool, s.N()+1)
	for i := 1; i <= s.N(); i++ {
		named[i] = map[[32]byte]bool{}
		for _, d := range p.v.msgs[KindDeal][i] {
			named[i][d.Hash()] = true
		}
	}
	var rs []reveal
	for j := 1; j <= s.N(); j++ {
		rsp := p.v.msgs[KindResponse][j]
		if j == p.self || len(rsp) != 1 {
			continue
		}
		es, err := parseResponse(s, j, rsp[0].Body)
		if err != nil {
			continue
		}
		if e := es[p.self]; e.status == StatusComplaint && e.deal == mine {
			rs = append(rs, reveal{to: j, share: group.EvalPoly(p.coef, uint64(j))})
		}
		for i := 1; i <= s.N(); i++ {
			if i != j && es[i].status != StatusMissing {
				named[i][es[i].deal] = true
			}
		}
	}
	// The deals passed on go first: a keyholder ends round 3 once it has
	// every justification, and a transport keeps each sender's order, so
	// it has the evidence by then.
	var out []*Envelope
	for i := 1; i <= s.N(); i++ {
		if i != p.self && len(named[i]) >= 2 {
			out = append(out, p.v.msgs[KindDeal][i]...)
		}
	}
	e, err := p.send(KindJustification, encodeJustification(rs))
	if err != nil {
		return nil, err
	}
	return append(out, e), nil
}

// confirm applies the rules to rounds 1–3 and confirms the transcript's
// hash, whatever they concluded.
func (p *Party) confirm() ([]*Envelope, error) {
	p.dec, p.err = decide(p.v)
	h := p.transcript().Hash()
	e, err := p.send(KindConfirmation, h[:])
	return []*Envelope{e}, err
}

func (p *Party) transcript() *Transcript {
	return &Transcript{Session: p.s, Messages: p.v.sorted(KindDeal, KindResponse, KindJustification)}
}

// Share is one keyholder's secret share of the distributed key.
type Share struct {
	Index  int    // 1-based keyholder number (the evaluation point)
	Secret []byte // 32-byte scalar
}

// Outcome is what a DKG concluded, for one keyholder (Party.Outcome) or
// for anyone reading the transcript (Check).
type Outcome struct {
	Session    *Session
	Transcript *Transcript // rounds 1–3, and the confirmations of its hash by holders
	Hash       [32]byte    // the transcript's hash
	// Commits are the joint polynomial's coefficients; Commits[0] is the key.
	Commits   [][]byte
	Qual      []int // dealers whose deals make the key
	Holders   []int // keyholders holding a share
	Confirmed []int // holders that confirmed this transcript
	Faults    []Fault
	// Share is this keyholder's (Party.Outcome only).
	Share *Share
}

// outcome counts the holders' confirmations of hash; fewer than k is a
// failure (the keyholders did not reach one transcript).
func outcome(s *Session, v *view, d *decision, hash [32]byte) (*Outcome, error) {
	o := &Outcome{Session: s, Hash: hash, Qual: d.qual, Holders: d.holders, Faults: d.faults,
		Transcript: &Transcript{Session: s, Messages: v.sorted(KindDeal, KindResponse, KindJustification)}}
	for _, c := range d.commits {
		o.Commits = append(o.Commits, c.Bytes())
	}
	var other, none []int
	for _, j := range d.holders {
		cs := v.msgs[KindConfirmation][j]
		if len(cs) != 1 {
			none = append(none, j)
			continue
		}
		if h, err := parseConfirmation(cs[0].Body); err != nil || h != hash {
			other = append(other, j)
			continue
		}
		o.Confirmed = append(o.Confirmed, j)
		o.Transcript.Confirmations = append(o.Transcript.Confirmations, cs[0])
	}
	if len(o.Confirmed) < s.K {
		return o, fmt.Errorf("dkg: failed: this transcript is confirmed by %d holders (%s), needs %d; confirmed another: %s; no confirmation: %s",
			len(o.Confirmed), KeyholderList(o.Confirmed), s.K, KeyholderList(other), KeyholderList(none))
	}
	return o, nil
}

// Outcome is the result once the last round has ended: the key, and this
// keyholder's share, checked against it. The error says why there is no
// share for this keyholder: the rules left no key, the keyholder missed a
// deal, or fewer than k holders confirmed its transcript. The Outcome is
// returned with the error when the rounds got that far, for the record.
func (p *Party) Outcome() (*Outcome, error) {
	if p.round != done {
		return nil, errors.New("dkg: the rounds are not over")
	}
	if p.err != nil {
		return nil, p.err
	}
	d := p.dec
	o, err := outcome(p.s, p.v, d, p.transcript().Hash())
	if err != nil {
		return o, err
	}
	share, err := p.share(d, func(i int) (*edwards25519.Scalar, error) {
		if x := p.mine[i]; x != nil {
			return x, nil
		}
		return d.revealed[i][p.self], nil
	})
	o.Share = share
	return o, err
}

// share sums this keyholder's share of the key d decided: its own
// polynomial's value for its own deal, other(i) for each other qualified
// dealer i's part; checked against the key's commitments. The error says
// why it holds none.
func (p *Party) share(d *decision, other func(i int) (*edwards25519.Scalar, error)) (*Share, error) {
	if !contains(d.holders, p.self) {
		for _, f := range d.faults {
			if f.Keyholder == p.self && strings.HasPrefix(f.Reason, "holds no share") {
				return nil, fmt.Errorf("dkg: keyholder %d %s", p.self, f.Reason)
			}
		}
		return nil, fmt.Errorf("dkg: keyholder %d holds no share", p.self) // unreachable: decide names every non-holder
	}
	x := edwards25519.NewScalar()
	for _, i := range d.qual {
		part, err := group.EvalPoly(p.coef, uint64(p.self)), error(nil)
		if i != p.self {
			part, err = other(i)
		}
		if err != nil {
			return nil, err
		}
		x.Add(x, part)
	}
	if !shareMatches(d.commits, p.self, x) {
		return nil, fmt.Errorf("dkg: keyholder %d: its share does not match the key", p.self)
	}
	return &Share{Index: p.self, Secret: x.Bytes()}, nil
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// KeyholderList names keyholders for people: "keyholders 1, 3" or "none".
func KeyholderList(xs []int) string {
	if len(xs) == 0 {
		return "none"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return "keyholders " + strings.Join(parts, ", ")
}
