// Package dkg runs kyber's Pedersen distributed key generation (Joint-Feldman)
// among n keyholders in one process, with every message passed as a signed
// envelope through an explicit Link that a caller (or a test) can use to
// drop, delay or corrupt messages.
//
// kyber's protocol has no session identifier of its own: its messages name
// only the participants and the dealt polynomial. Every envelope here carries
// a 32-byte session identifier and is signed over it by the sender's long-term
// key, so a message from another run is refused. The run is round based: the
// end of each round is the timeout, after which the threshold-certified path
// applies (a deal counts when at least k keyholders approved it and no
// complaint stands), not "all n must answer".
package dkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"filippo.io/edwards25519"
	"go.dedis.ch/kyber/v3"
	kyed "go.dedis.ch/kyber/v3/group/edwards25519"
	pedersen "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// MaxKeyholders bounds n.
const MaxKeyholders = 256

// Envelope kinds.
const (
	KindDeal          uint8 = 1
	KindResponse      uint8 = 2
	KindJustification uint8 = 3
)

// Broadcast is the To field of an envelope meant for every keyholder.
const Broadcast uint32 = 0

const envelopeVersion = 1
const envelopeDomain = "fractal/tfhe/dkg-envelope/v1"

// Envelope is one DKG message. From and To are 1-based keyholder numbers (To
// is Broadcast for responses and justifications). Sig is the sender's Schnorr
// signature over every other field.
type Envelope struct {
	Session [32]byte
	Kind    uint8
	From    uint32
	To      uint32
	Body    []byte
	Sig     []byte
}

func (e *Envelope) signed() []byte {
	w := enc.NewWriter(48 + len(e.Body))
	w.U8(envelopeVersion)
	w.Fixed(e.Session[:])
	w.U8(e.Kind)
	w.U32(e.From)
	w.U32(e.To)
	w.Var(e.Body)
	return w.Bytes()
}

// Encode returns the envelope's canonical encoding (signed fields, then the
// 64-byte signature).
func (e *Envelope) Encode() []byte { return append(e.signed(), e.Sig...) }

// DecodeEnvelope parses an Encode output. It does not check the signature.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	r := enc.NewReader(b)
	e := &Envelope{}
	if v := r.U8(); v != envelopeVersion && r.Err() == nil {
		r.Fail(fmt.Errorf("unknown envelope version %d", v))
	}
	r.Into(e.Session[:])
	e.Kind = r.U8()
	e.From = r.U32()
	e.To = r.U32()
	e.Body = r.Var(1<<20, "envelope body")
	e.Sig = r.Fixed(group.SignatureSize)
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("dkg: envelope: %w", err)
	}
	return e, nil
}

// Sign signs the envelope with a long-term secret (kyber edwards25519 scalar).
func (e *Envelope) Sign(long kyber.Scalar) error {
	x, err := filippoScalar(long)
	if err != nil {
		return err
	}
	e.Sig = group.Sign(envelopeDomain, x, e.signed())
	return nil
}

// Link carries envelopes between keyholders. Carry is called once per
// recipient (a broadcast is offered once for each keyholder, with To set to
// that keyholder) and returns what arrives: the envelope, a changed one, or
// nil when the message is lost.
type Link interface {
	Carry(e *Envelope) *Envelope
}

// Config describes one run.
type Config struct {
	N, K    int
	Session [32]byte
	// Longterm holds the keyholders' long-term secrets (index 0 is keyholder
	// 1); nil draws fresh ones. Tests pass them to act as a malicious sender.
	Longterm []kyber.Scalar
	// Link carries every envelope; nil is a network that loses nothing.
	Link Link
	// Progress, if set, is called after each keyholder finishes a step.
	Progress func(done, total int)
}

// Share is one keyholder's secret share of the distributed key.
type Share struct {
	Index  int    // 1-based keyholder number (the evaluation point)
	Secret []byte // 32-byte scalar
}

// Fault records a keyholder that misbehaved or was left out, and why.
type Fault struct {
	Keyholder int
	Reason    string
}

// Result is the outcome of a successful run.
type Result struct {
	Session [32]byte
	N, K    int
	// Commits are the public polynomial's coefficients; Commits[0] is the key.
	Commits [][]byte
	// Shares holds a share for each keyholder that ended up holding one
	// (sorted by index); excluded keyholders are listed in Faults.
	Shares []Share
	// Qual lists the dealers whose deals were certified (1-based, sorted).
	Qual   []int
	Faults []Fault
	// Transcript is every envelope sent, in sending order.
	Transcript []*Envelope
}

// Suite is the kyber group the DKG runs on.
var Suite = kyed.NewBlakeSHA256Ed25519()

type keyholder struct {
	num    int // 1-based
	long   kyber.Scalar
	gen    *pedersen.DistKeyGenerator
	faults []Fault
	out    []*Envelope
}

func (h *keyholder) fault(who int, format string, args ...any) {
	h.faults = append(h.faults, Fault{Keyholder: who, Reason: fmt.Sprintf(format, args...)})
}

func (h *keyholder) send(session [32]byte, kind uint8, to uint32, body []byte) error {
	e := &Envelope{Session: session, Kind: kind, From: uint32(h.num), To: to, Body: body}
	if err := e.Sign(h.long); err != nil {
		return err
	}
	h.out = append(h.out, e)
	return nil
}

// Run executes the DKG and returns the agreed key, or an error when fewer
// than k keyholders end with the same key. Once ctx is done no further
// keyholder step starts and Run returns ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	n, k := cfg.N, cfg.K
	if n < 2 || n > MaxKeyholders {
		return nil, fmt.Errorf("dkg: n = %d, want 2..%d", n, MaxKeyholders)
	}
	if k < 2 || k > n {
		return nil, fmt.Errorf("dkg: k = %d, want 2..n (kyber's DKG needs a threshold of at least 2)", k)
	}
	if cfg.Longterm != nil && len(cfg.Longterm) != n {
		return nil, fmt.Errorf("dkg: %d long-term keys for %d keyholders", len(cfg.Longterm), n)
	}
	pubs := make([]kyber.Point, n)
	verify := make([]*edwards25519.Point, n)
	hs := make([]*keyholder, n)
	for i := range hs {
		long := Suite.Scalar().Pick(Suite.RandomStream())
		if cfg.Longterm != nil {
			long = cfg.Longterm[i]
		}
		pubs[i] = Suite.Point().Mul(long, nil)
		b, _ := pubs[i].MarshalBinary()
		p, err := group.DecodePoint(b, false)
		if err != nil {
			return nil, fmt.Errorf("dkg: long-term key of keyholder %d: %w", i+1, err)
		}
		verify[i] = p
		hs[i] = &keyholder{num: i + 1, long: long}
	}
	for i, h := range hs {
		gen, err := pedersen.NewDistKeyGenerator(Suite, h.long, pubs, k)
		if err != nil {
			return nil, fmt.Errorf("dkg: keyholder %d: %w", i+1, err)
		}
		h.gen = gen
	}
	res := &Result{Session: cfg.Session, N: n, K: k}
	steps, total := 0, 4*n
	var mu sync.Mutex
	step := func() {
		mu.Lock()
		defer mu.Unlock()
		steps++
		if cfg.Progress != nil {
			cfg.Progress(steps, total)
		}
	}
	inbox := make([][]*Envelope, n)
	// deliver moves every keyholder's outgoing envelopes through the link,
	// in keyholder order, into the recipients' inboxes.
	deliver := func() {
		for i := range inbox {
			inbox[i] = nil
		}
		for _, h := range hs {
			for _, e := range h.out {
				res.Transcript = append(res.Transcript, e)
				for to := 1; to <= n; to++ {
					if to == h.num || (e.To != Broadcast && int(e.To) != to) {
						continue
					}
					c := *e
					c.To = uint32(to)
					got := &c
					if cfg.Link != nil {
						got = cfg.Link.Carry(got)
					}
					if got != nil {
						inbox[to-1] = append(inbox[to-1], got)
					}
				}
			}
			h.out = nil
		}
	}
	// open checks an envelope as keyholder h receives it.
	open := func(h *keyholder, e *Envelope, kind uint8) error {
		if e.Session != cfg.Session {
			return errors.New("envelope from another session")
		}
		if e.Kind != kind {
			return fmt.Errorf("envelope kind %d, want %d", e.Kind, kind)
		}
		if e.From < 1 || int(e.From) > n {
			return fmt.Errorf("sender %d out of range", e.From)
		}
		signedTo := e.To
		if kind != KindDeal {
			signedTo = Broadcast
		} else if int(e.To) != h.num {
			return fmt.Errorf("deal addressed to keyholder %d", e.To)
		}
		check := *e
		check.To = signedTo
		x := verify[e.From-1]
		if err := group.Verify(envelopeDomain, x, check.signed(), e.Sig); err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		return nil
	}

	// Round 1: deals.
	err := each(ctx, hs, func(h *keyholder) error {
		deals, err := h.gen.Deals()
		if err != nil {
			return err
		}
		for j := 0; j < n; j++ {
			if d, ok := deals[j]; ok {
				if err := h.send(cfg.Session, KindDeal, uint32(j+1), encodeDeal(d)); err != nil {
					return err
				}
			}
		}
		step()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dkg: deals: %w", err)
	}
	deliver()

	// Round 2: each keyholder checks its deals and broadcasts a response.
	err = each(ctx, hs, func(h *keyholder) error {
		for _, e := range sorted(inbox[h.num-1]) {
			if err := open(h, e, KindDeal); err != nil {
				h.fault(int(e.From), "deal to keyholder %d refused: %v", h.num, err)
				continue
			}
			d, err := decodeDeal(e.Body)
			if err == nil && int(d.Index) != int(e.From)-1 {
				err = fmt.Errorf("deal names dealer %d", d.Index+1)
			}
			if err == nil {
				err = h.checkDealCommits(d, pubs)
			}
			var resp *pedersen.Response
			if err == nil {
				resp, err = h.gen.ProcessDeal(d)
			}
			if err != nil {
				h.fault(int(e.From), "invalid deal to keyholder %d: %v", h.num, err)
				continue
			}
			if err := h.send(cfg.Session, KindResponse, Broadcast, encodeResponse(resp)); err != nil {
				return err
			}
		}
		step()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dkg: responses: %w", err)
	}
	deliver()

	// Round 3: responses; a dealer answers each complaint with a justification.
	err = each(ctx, hs, func(h *keyholder) error {
		for _, e := range sorted(inbox[h.num-1]) {
			if err := open(h, e, KindResponse); err != nil {
				h.fault(int(e.From), "response refused by keyholder %d: %v", h.num, err)
				continue
			}
			resp, err := decodeResponse(e.Body)
			if err == nil && int(resp.Response.Index) != int(e.From)-1 {
				err = fmt.Errorf("response names verifier %d", resp.Response.Index+1)
			}
			var j *pedersen.Justification
			if err == nil {
				j, err = h.gen.ProcessResponse(resp)
			}
			if err != nil {
				// A response about a deal this keyholder never received is
				// expected after a lost deal and is not the sender's fault.
				if err.Error() != "verifier: need to receive deal before response" {
					h.fault(int(e.From), "invalid response seen by keyholder %d: %v", h.num, err)
				}
				continue
			}
			if j != nil {
				body, err := encodeJustification(j)
				if err != nil {
					return err
				}
				if err := h.send(cfg.Session, KindJustification, Broadcast, body); err != nil {
					return err
				}
			}
		}
		step()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dkg: justifications: %w", err)
	}
	deliver()

	// Round 4: justifications, then the timeout.
	err = each(ctx, hs, func(h *keyholder) error {
		for _, e := range sorted(inbox[h.num-1]) {
			if err := open(h, e, KindJustification); err != nil {
				h.fault(int(e.From), "justification refused by keyholder %d: %v", h.num, err)
				continue
			}
			j, err := decodeJustification(Suite, e.Body)
			if err == nil && int(j.Index) != int(e.From)-1 {
				err = fmt.Errorf("justification names dealer %d", j.Index+1)
			}
			if err == nil {
				err = h.gen.ProcessJustification(j)
			}
			if err != nil {
				h.fault(int(e.From), "invalid justification seen by keyholder %d: %v", h.num, err)
			}
		}
		if !h.gen.Certified() {
			h.gen.SetTimeout()
		}
		step()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dkg: certification: %w", err)
	}
	return finish(res, hs)
}

// checkDealCommits opens a deal addressed to h in a throwaway verifier (so
// h's own DKG state is untouched) and refuses it when a commitment has a
// small-order component. kyber decodes the commitments inside the encrypted
// deal without a subgroup check, and its share check cannot see torsion that
// vanishes at every index (an order-2 point added to two coefficients adds
// x(x+1)·T = 0 at every x): such a deal would be approved by all, and the
// summed public key would carry torsion, failing the whole run at the end
// instead of excluding one dealer.
func (h *keyholder) checkDealCommits(d *pedersen.Deal, pubs []kyber.Point) error {
	v, err := vss.NewVerifier(Suite, h.long, pubs[d.Index], pubs)
	if err != nil {
		return err
	}
	if _, err := v.ProcessEncryptedDeal(d.Deal); err != nil {
		return err
	}
	for i, c := range v.Commits() {
		b, err := c.MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := group.DecodePoint(b, true); err != nil {
			return fmt.Errorf("deal commitment %d: %w", i, err)
		}
	}
	return nil
}

// view is what one keyholder concluded.
type view struct {
	key     string // QUAL and commitments, to compare views
	qual    []int
	commits [][]byte
	share   []byte
}

// finish compares the keyholders' conclusions. The key that the most
// keyholders reached wins if at least k reached it; a keyholder whose view
// differs (it missed a deal, say) gets no share and is listed as a fault.
// Each share is checked against the public polynomial, which is what makes
// it usable; kyber's QualifiedShares is not used, as it also drops
// keyholders whose only fault is a response lost on the way.
func finish(res *Result, hs []*keyholder) (*Result, error) {
	views := make([]*view, len(hs))
	for i, h := range hs {
		res.Faults = append(res.Faults, h.faults...)
		if !h.gen.ThresholdCertified() {
			continue
		}
		dks, err := h.gen.DistKeyShare()
		if err != nil {
			continue
		}
		v := &view{qual: h.gen.QUAL()}
		sort.Ints(v.qual)
		var kb bytes.Buffer
		for _, q := range v.qual {
			fmt.Fprintf(&kb, "%d,", q)
		}
		for _, c := range dks.Commits {
			b, _ := c.MarshalBinary()
			v.commits = append(v.commits, b)
			kb.Write(b)
		}
		v.key = kb.String()
		v.share, _ = dks.Share.V.MarshalBinary()
		views[i] = v
	}
	count := map[string]int{}
	best := ""
	for _, v := range views {
		if v == nil {
			continue
		}
		count[v.key]++
		if count[v.key] > count[best] || (count[v.key] == count[best] && v.key < best) {
			best = v.key
		}
	}
	if count[best] < res.K {
		return nil, fmt.Errorf("dkg: failed: at most %d keyholders reached the same key, need %d; faults: %s", count[best], res.K, faultList(res.Faults))
	}
	for _, v := range views {
		if v != nil && v.key == best {
			res.Commits = v.commits
			for _, q := range v.qual {
				res.Qual = append(res.Qual, q+1)
			}
			break
		}
	}
	for i, c := range res.Commits {
		if _, err := group.DecodePoint(c, true); err != nil {
			return nil, fmt.Errorf("dkg: public commitment %d: %w", i, err)
		}
	}
	for i, v := range views {
		switch {
		case v == nil:
			res.Faults = append(res.Faults, Fault{i + 1, "no certified key at the timeout"})
		case v.key != best:
			res.Faults = append(res.Faults, Fault{i + 1, "reached a different key (missed messages); left out"})
		default:
			if err := checkShare(res.Commits, i+1, v.share); err != nil {
				res.Faults = append(res.Faults, Fault{i + 1, err.Error()})
				continue
			}
			res.Shares = append(res.Shares, Share{Index: i + 1, Secret: v.share})
		}
	}
	if len(res.Shares) < res.K {
		return nil, fmt.Errorf("dkg: failed: %d keyholders hold a valid share, need %d; faults: %s", len(res.Shares), res.K, faultList(res.Faults))
	}
	for i := 1; i <= res.N; i++ {
		if !contains(res.Qual, i) {
			res.Faults = append(res.Faults, Fault{i, "deal not certified; not part of the key"})
		}
	}
	sort.SliceStable(res.Faults, func(a, b int) bool { return res.Faults[a].Keyholder < res.Faults[b].Keyholder })
	return res, nil
}

// checkShare checks x·G against the public polynomial at index.
func checkShare(commits [][]byte, index int, secret []byte) error {
	x, err := group.DecodeScalar(secret)
	if err != nil {
		return fmt.Errorf("share: %w", err)
	}
	got := new(edwards25519.Point).ScalarBaseMult(x)
	want, err := EvalCommits(commits, index)
	if err != nil {
		return err
	}
	if got.Equal(want) != 1 {
		return errors.New("share does not match the public polynomial")
	}
	return nil
}

// EvalCommits evaluates the public polynomial at a 1-based keyholder index,
// giving that keyholder's public verification key.
func EvalCommits(commits [][]byte, index int) (*edwards25519.Point, error) {
	x := group.ScalarFromUint64(uint64(index))
	acc := edwards25519.NewIdentityPoint()
	for j := len(commits) - 1; j >= 0; j-- {
		c, err := group.DecodePoint(commits[j], true)
		if err != nil {
			return nil, fmt.Errorf("commitment %d: %w", j, err)
		}
		acc.ScalarMult(x, acc)
		acc.Add(acc, c)
	}
	return acc, nil
}

func faultList(fs []Fault) string {
	if len(fs) == 0 {
		return "none"
	}
	var b bytes.Buffer
	for i, f := range fs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "keyholder %d: %s", f.Keyholder, f.Reason)
	}
	return b.String()
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// sorted orders an inbox by sender, so each keyholder processes messages in
// the same order whatever the link did.
func sorted(es []*Envelope) []*Envelope {
	sort.SliceStable(es, func(a, b int) bool { return es[a].From < es[b].From })
	return es
}

// each runs f for every keyholder on up to GOMAXPROCS goroutines; each
// keyholder's state is touched by one goroutine only. The error is the
// lowest-numbered keyholder's, or ctx's.
func each(ctx context.Context, hs []*keyholder, f func(*keyholder) error) error {
	return workers.Each(ctx, len(hs), func(i int) error { return f(hs[i]) })
}

func filippoScalar(s kyber.Scalar) (*edwards25519.Scalar, error) {
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return group.DecodeScalar(b)
}

const transcriptTag, transcriptVersion = 0x07, 1

// EncodeTranscript writes the run's envelopes, for audit: the session, n, k,
// then each envelope's encoding (a deal's body is encrypted to its
// recipient, so the transcript reveals no share).
func (r *Result) EncodeTranscript() []byte {
	w := enc.NewWriter(64 + 256*len(r.Transcript))
	w.U8(transcriptTag)
	w.U8(transcriptVersion)
	w.Fixed(r.Session[:])
	w.U32(uint32(r.N))
	w.U32(uint32(r.K))
	w.U32(uint32(len(r.Transcript)))
	for _, e := range r.Transcript {
		w.Var(e.Encode())
	}
	return w.Bytes()
}
