package dkg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// The envelope bodies (docs/formats/tfhe.md "DKG"). Parsing is strict: a
// body that parses has exactly one encoding, and every point is canonical
// and in the prime-order subgroup. A parse error in a signed deal is the
// dealer's public fault.

// boxSize is one encrypted share: a scalar and the GCM tag.
const boxSize = group.ScalarSize + 16

const boxDomain = "fractal/tfhe/dkg-deal/v1"

// deal is a parsed deal body: the dealer's Feldman commitments C_0..C_{k−1}
// (C_j = a_j·G for its polynomial f), an ephemeral key E = e·G, and f(j)
// for every other keyholder j encrypted under e·A_j.
type deal struct {
	commits []*edwards25519.Point
	eph     *edwards25519.Point
	boxes   [][]byte // recipient order, the dealer left out
}

func encodeDeal(d *deal) []byte {
	w := enc.NewWriter(8 + 32*len(d.commits) + 32 + boxSize*len(d.boxes))
	w.U32(uint32(len(d.commits)))
	for _, c := range d.commits {
		w.Fixed(c.Bytes())
	}
	w.Fixed(d.eph.Bytes())
	w.U32(uint32(len(d.boxes)))
	for _, b := range d.boxes {
		w.Fixed(b)
	}
	return w.Bytes()
}

func parseDeal(s *Session, body []byte) (*deal, error) {
	r := enc.NewReader(body)
	d := &deal{}
	k := r.Count(MaxKeyholders, "commitments")
	if r.Err() == nil && k != s.K {
		return nil, fmt.Errorf("%d commitments, the threshold is %d", k, s.K)
	}
	raw := r.Fixed(32 * k)
	eph := r.Fixed(group.PointSize)
	nb := r.Count(MaxKeyholders, "encrypted shares")
	if r.Err() == nil && nb != s.N()-1 {
		return nil, fmt.Errorf("%d encrypted shares for %d other keyholders", nb, s.N()-1)
	}
	for i := 0; i < nb && r.Err() == nil; i++ {
		d.boxes = append(d.boxes, r.Fixed(boxSize))
	}
	if err := r.Finish(); err != nil {
		return nil, err
	}
	for i := 0; i < k; i++ {
		c, err := group.DecodePoint(raw[32*i:32*i+32], true)
		if err != nil {
			return nil, fmt.Errorf("commitment %d: %w", i, err)
		}
		d.commits = append(d.commits, c)
	}
	var err error
	if d.eph, err = group.DecodePoint(eph, false); err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	return d, nil
}

// boxIndex is where recipient j's share sits in dealer i's deal.
func boxIndex(i, j int) int {
	if j < i {
		return j - 1
	}
	return j - 2
}

// boxAEAD is the AES-256-GCM key for dealer i's share to recipient j:
// HKDF-SHA256 of the shared point e·A_j = a_j·E, bound to the session, both
// numbers, E and A_j. Each key encrypts one share, so the nonce is zero.
func boxAEAD(s *Session, i, j int, eph, shared *edwards25519.Point) (cipher.AEAD, error) {
	w := enc.NewWriter(128)
	w.Fixed([]byte(boxDomain))
	w.Fixed(s.id[:])
	w.U32(uint32(i))
	w.U32(uint32(j))
	w.Fixed(eph.Bytes())
	w.Fixed(s.pts[j-1].Bytes())
	key, err := hkdf.Key(sha256.New, shared.Bytes(), nil, string(w.Bytes()), 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

var zeroNonce = make([]byte, 12)

// sealShare encrypts dealer i's share f(j) to keyholder j with the
// ephemeral secret e.
func sealShare(s *Session, i, j int, e *edwards25519.Scalar, eph *edwards25519.Point, share *edwards25519.Scalar) ([]byte, error) {
	aead, err := boxAEAD(s, i, j, eph, new(edwards25519.Point).ScalarMult(e, s.pts[j-1]))
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, zeroNonce, share.Bytes(), nil), nil
}

// openShare decrypts keyholder j's share in dealer i's deal with j's secret
// a, and checks it against the dealer's commitments: f(j)·G = Σ j^m·C_m.
func openShare(s *Session, i, j int, a *edwards25519.Scalar, d *deal) (*edwards25519.Scalar, Reason) {
	aead, err := boxAEAD(s, i, j, d.eph, new(edwards25519.Point).ScalarMult(a, d.eph))
	if err != nil {
		return nil, ReasonNoDecrypt
	}
	plain, err := aead.Open(nil, zeroNonce, d.boxes[boxIndex(i, j)], nil)
	if err != nil {
		return nil, ReasonNoDecrypt
	}
	x, err := group.DecodeScalar(plain)
	if err != nil || !shareMatches(d.commits, j, x) {
		return nil, ReasonWrongShare
	}
	return x, ReasonNone
}

// shareMatches reports whether x·G is the commitments' value at j.
func shareMatches(commits []*edwards25519.Point, j int, x *edwards25519.Scalar) bool {
	return new(edwards25519.Point).ScalarBaseMult(x).Equal(group.EvalCommits(commits, uint64(j))) == 1
}

// Status is what a response says about one deal.
type Status uint8

// Response statuses.
const (
	StatusMissing   Status = 0 // no deal arrived from the dealer in time
	StatusApproval  Status = 1 // the share decrypted and matched the commitments
	StatusComplaint Status = 2 // it did not (see the reason); the dealer must reveal it
)

// Reason says why a keyholder complained. It is the complainer's word: the
// dealer answers by revealing the share, which anyone can check.
type Reason uint8

// Complaint reasons.
const (
	ReasonNone       Reason = 0
	ReasonNoDecrypt  Reason = 1
	ReasonWrongShare Reason = 2
	ReasonMalformed  Reason = 3
	ReasonTwoDeals   Reason = 4
)

func (r Reason) String() string {
	switch r {
	case ReasonNoDecrypt:
		return "its share did not decrypt"
	case ReasonWrongShare:
		return "its share did not match the commitments"
	case ReasonMalformed:
		return "the deal is malformed"
	case ReasonTwoDeals:
		return "two different deals"
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// entry is what a response says about one dealer's deal.
type entry struct {
	status Status
	deal   [32]byte // the deal envelope's hash (zero when missing)
	reason Reason   // complaints only
}

const entrySize = 1 + 32 + 1

// encodeResponse writes one entry per other keyholder, in keyholder order.
func encodeResponse(es []entry) []byte {
	w := enc.NewWriter(4 + entrySize*len(es))
	w.U32(uint32(len(es)))
	for _, e := range es {
		w.U8(uint8(e.status))
		w.Fixed(e.deal[:])
		w.U8(uint8(e.reason))
	}
	return w.Bytes()
}

// parseResponse returns keyholder from's entries indexed by dealer number
// (its own slot left zero).
func parseResponse(s *Session, from int, body []byte) ([]entry, error) {
	r := enc.NewReader(body)
	n := r.Count(MaxKeyholders, "entries")
	if r.Err() == nil && n != s.N()-1 {
		return nil, fmt.Errorf("%d entries for %d other keyholders", n, s.N()-1)
	}
	out := make([]entry, s.N()+1)
	for i := 1; i <= s.N() && r.Err() == nil; i++ {
		if i == from {
			continue
		}
		e := entry{status: Status(r.U8())}
		r.Into(e.deal[:])
		e.reason = Reason(r.U8())
		switch {
		case r.Err() != nil:
		case e.status == StatusMissing && (e.deal != [32]byte{} || e.reason != ReasonNone):
			r.Fail(fmt.Errorf("entry for keyholder %d: a missing deal names a deal or reason", i))
		case e.status == StatusApproval && e.reason != ReasonNone:
			r.Fail(fmt.Errorf("entry for keyholder %d: an approval gives a reason", i))
		case e.status == StatusComplaint && (e.reason < ReasonNoDecrypt || e.reason > ReasonTwoDeals):
			r.Fail(fmt.Errorf("entry for keyholder %d: unknown complaint reason %d", i, e.reason))
		case e.status > StatusComplaint:
			r.Fail(fmt.Errorf("entry for keyholder %d: unknown status %d", i, e.status))
		}
		out[i] = e
	}
	if err := r.Finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// reveal is a share a dealer discloses to answer a complaint.
type reveal struct {
	to    int
	share *edwards25519.Scalar
}

func encodeJustification(rs []reveal) []byte {
	w := enc.NewWriter(4 + 36*len(rs))
	w.U32(uint32(len(rs)))
	for _, r := range rs {
		w.U32(uint32(r.to))
		w.Fixed(r.share.Bytes())
	}
	return w.Bytes()
}

// parseJustification returns the revealed shares by recipient; recipients
// are other keyholders, in increasing order.
func parseJustification(s *Session, from int, body []byte) (map[int]*edwards25519.Scalar, error) {
	r := enc.NewReader(body)
	n := r.Count(MaxKeyholders, "revealed shares")
	out := map[int]*edwards25519.Scalar{}
	last := 0
	for i := 0; i < n && r.Err() == nil; i++ {
		to := int(r.U32())
		raw := r.Fixed(group.ScalarSize)
		if r.Err() != nil {
			break
		}
		if to <= last || to > s.N() || to == from {
			r.Fail(fmt.Errorf("revealed share %d: recipient %d out of order or range", i, to))
			break
		}
		x, err := group.DecodeScalar(raw)
		if err != nil {
			r.Fail(fmt.Errorf("revealed share for keyholder %d: %w", to, err))
			break
		}
		out[to], last = x, to
	}
	if err := r.Finish(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseConfirmation(body []byte) ([32]byte, error) {
	var h [32]byte
	if len(body) != len(h) {
		return h, errors.New("a confirmation is one 32-byte transcript hash")
	}
	copy(h[:], body)
	return h, nil
}
