package dkg

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"filippo.io/edwards25519"
)

// view is the envelopes one keyholder, or an auditor reading a transcript,
// holds for a session, by round and sender: at most two different ones
// each, since a second is all the evidence needed that the sender said two
// things.
type view struct {
	s     *Session
	msgs  [KindConfirmation + 1][][]*Envelope // [kind][sender], senders from 1
	deals map[[32]byte]parsedDeal             // deal bodies parsed once, by envelope hash
}

type parsedDeal struct {
	d   *deal
	err error
}

func newView(s *Session) *view {
	v := &view{s: s, deals: map[[32]byte]parsedDeal{}}
	for k := range v.msgs {
		v.msgs[k] = make([][]*Envelope, s.N()+1)
	}
	return v
}

// add keeps e (already opened: session, sender and signature checked). It
// reports whether e was new; an envelope seen before changes nothing, and a
// third different one from the same sender for the same round is not kept.
func (v *view) add(e *Envelope) (bool, error) {
	have := v.msgs[e.Kind][e.From]
	h := e.Hash()
	for _, o := range have {
		if o.Hash() == h {
			return false, nil
		}
	}
	if len(have) == 2 {
		return false, &Refusal{From: e.From, Kind: e.Kind, Reason: "two different ones from this keyholder are already kept as evidence"}
	}
	v.msgs[e.Kind][e.From] = append(have, e)
	return true, nil
}

// deal parses a deal envelope's body, once.
func (v *view) deal(e *Envelope) (*deal, error) {
	h := e.Hash()
	p, ok := v.deals[h]
	if !ok {
		p.d, p.err = parseDeal(v.s, e.Body)
		v.deals[h] = p
	}
	return p.d, p.err
}

// sorted returns the envelopes of the given rounds in the transcript's
// canonical order: by round, sender, then hash.
func (v *view) sorted(kinds ...Kind) []*Envelope {
	var out []*Envelope
	for _, k := range kinds {
		for from := 1; from <= v.s.N(); from++ {
			es := slices.Clone(v.msgs[k][from])
			sort.Slice(es, func(a, b int) bool {
				ha, hb := es[a].Hash(), es[b].Hash()
				return bytes.Compare(ha[:], hb[:]) < 0
			})
			out = append(out, es...)
		}
	}
	return out
}

// Fault is a keyholder the rules of the DKG left out, and why: as a dealer
// (its deal is not part of the key) or as a holder (it holds no share).
// Every fault follows from the signed messages in the transcript.
type Fault struct {
	Keyholder int
	Reason    string
}

// decision is what the rules conclude from the messages of rounds 1–3. The
// keyholders and anyone checking a transcript run the same function
// (decide) on the same messages, so they reach the same key.
type decision struct {
	commits  []*edwards25519.Point // the joint polynomial's commitments
	qual     []int                 // dealers whose deals make the key
	holders  []int                 // keyholders that hold a share
	faults   []Fault
	hashes   map[int][32]byte                     // each qualified dealer's deal, by envelope hash
	revealed map[int]map[int]*edwards25519.Scalar // dealer → complainer → share revealed to answer it
}

// decide applies the rules (docs/decisions/130):
//
//   - A dealer qualifies when it sent exactly one deal, the deal is well
//     formed (k commitments and n−1 encrypted shares, points canonical and
//     in the prime-order subgroup), fewer than k keyholders complained about
//     it, it answered every complaint by revealing a share that matches its
//     commitments, and at least k keyholders (itself included) approved it
//     or had their complaint answered. Responses count only when they name
//     that very deal by its hash.
//   - The key is the sum of the qualified dealers' polynomials; at least k
//     must qualify.
//   - A keyholder holds a share when its one response approved every
//     qualified deal but its own, or complained and was answered; at least
//     k must hold one.
//
// A keyholder that sent two different messages for one round is treated as
// having sent none for it (a deal: the dealer is left out).
func decide(v *view) (*decision, error) {
	s := v.s
	n, k := s.N(), s.K
	d := &decision{hashes: map[int][32]byte{}, revealed: map[int]map[int]*edwards25519.Scalar{}}
	resp := make([][]entry, n+1)
	why := make([]string, n+1) // why a keyholder's response does not count
	for j := 1; j <= n; j++ {
		switch es := v.msgs[KindResponse][j]; len(es) {
		case 0:
			why[j] = "sent no response"
		case 1:
			var err error
			if resp[j], err = parseResponse(s, j, es[0].Body); err != nil {
				why[j] = "its response is malformed: " + err.Error()
			}
		default:
			why[j] = "sent two different responses"
		}
	}
	var dealerFaults []Fault
	for i := 1; i <= n; i++ {
		if reason := d.judge(v, i, resp); reason != "" {
			dealerFaults = append(dealerFaults, Fault{i, "deal left out: " + reason})
			continue
		}
		d.qual = append(d.qual, i)
	}
	if len(d.qual) < k {
		return nil, fmt.Errorf("dkg: failed: %d dealers qualified, need %d; %s", len(d.qual), k, faultList(dealerFaults))
	}
	d.commits = make([]*edwards25519.Point, k)
	for m := range d.commits {
		d.commits[m] = edwards25519.NewIdentityPoint()
	}
	for _, i := range d.qual {
		dl, _ := v.deal(v.msgs[KindDeal][i][0])
		for m, c := range dl.commits {
			d.commits[m].Add(d.commits[m], c)
		}
	}
	var holderFaults []Fault
	for j := 1; j <= n; j++ {
		if resp[j] == nil {
			holderFaults = append(holderFaults, Fault{j, "holds no share: " + why[j]})
			continue
		}
		missed := 0
		for _, i := range d.qual {
			if e := resp[j][i]; i != j && (e.status == StatusMissing || e.deal != d.hashes[i]) {
				missed = i
				break
			}
		}
		if missed != 0 {
			holderFaults = append(holderFaults, Fault{j, fmt.Sprintf("holds no share: did not receive the deal of keyholder %d", missed)})
			continue
		}
		d.holders = append(d.holders, j)
	}
	d.faults = append(dealerFaults, holderFaults...)
	sort.SliceStable(d.faults, func(a, b int) bool { return d.faults[a].Keyholder < d.faults[b].Keyholder })
	if len(d.holders) < k {
		return nil, fmt.Errorf("dkg: failed: %d keyholders hold a share, need %d; %s", len(d.holders), k, faultList(d.faults))
	}
	return d, nil
}

// judge returns why dealer i's deal is left out, or "" when it qualifies.
func (d *decision) judge(v *view, i int, resp [][]entry) string {
	s := v.s
	deals := v.msgs[KindDeal][i]
	switch len(deals) {
	case 0:
		return "sent no deal"
	case 2:
		return "sent two different deals (equivocation; both are in the transcript)"
	}
	dl, err := v.deal(deals[0])
	if err != nil {
		return "malformed deal: " + err.Error()
	}
	h := deals[0].Hash()
	approvals := 1 // the dealer's own
	var complaints []int
	for j := 1; j <= s.N(); j++ {
		if j == i || resp[j] == nil || resp[j][i].deal != h {
			continue
		}
		switch resp[j][i].status {
		case StatusApproval:
			approvals++
		case StatusComplaint:
			complaints = append(complaints, j)
		}
	}
	if len(complaints) >= s.K {
		var b strings.Builder
		for n, j := range complaints {
			if n > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d (%s)", j, resp[j][i].reason)
		}
		return fmt.Sprintf("complaints from keyholders %s: k = %d or more", b.String(), s.K)
	}
	var revealed map[int]*edwards25519.Scalar
	if len(complaints) > 0 {
		js := v.msgs[KindJustification][i]
		if len(js) == 2 {
			return "sent two different justifications"
		}
		if len(js) == 1 {
			if revealed, err = parseJustification(s, i, js[0].Body); err != nil {
				return "malformed justification: " + err.Error()
			}
		}
	}
	for _, j := range complaints {
		x, ok := revealed[j]
		if !ok {
			return fmt.Sprintf("did not answer the complaint of keyholder %d (%s)", j, resp[j][i].reason)
		}
		if !shareMatches(dl.commits, j, x) {
			return fmt.Sprintf("the share it revealed to answer keyholder %d does not match its commitments", j)
		}
		approvals++
	}
	if approvals < s.K {
		return fmt.Sprintf("approved by %d keyholders (itself included), needs %d", approvals, s.K)
	}
	d.hashes[i] = h
	d.revealed[i] = revealed
	return ""
}

func faultList(fs []Fault) string {
	if len(fs) == 0 {
		return "no faults"
	}
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "keyholder %d: %s", f.Keyholder, f.Reason)
	}
	return b.String()
}
