package dkg

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/fractalvm/fractal/internal/enc"
)

const (
	transcriptTag     = 0x07
	transcriptVersion = 2 // 1 held kyber's per-recipient messages
	// maxMessages bounds the envelopes of rounds 1–3: two of each kind
	// from each keyholder at most.
	maxMessages = 3 * 2 * MaxKeyholders
)

// MaxTranscript bounds a transcript's encoding.
const MaxTranscript = 64 + 32*MaxKeyholders + (maxMessages+MaxKeyholders)*(4+MaxEnvelope)

// Transcript is a DKG's public record: the session, every signed message of
// rounds 1–3 (deals, responses, justifications) in canonical order, and the
// confirmations of the keyholders that reached it. Deals carry shares
// encrypted to their recipients only, so the transcript holds no secret;
// from it alone anyone recomputes the key, the qualified dealers, who holds
// a share, and every keyholder left out and why (Check).
type Transcript struct {
	Session       *Session
	Messages      []*Envelope // rounds 1–3: by round, sender, then hash
	Confirmations []*Envelope // round 4: by sender
}

// head writes the part the hash covers: tag ‖ version ‖ session ‖
// count ‖ messages.
func (t *Transcript) head(w *enc.Writer) {
	w.U8(transcriptTag)
	w.U8(transcriptVersion)
	t.Session.write(w)
	w.U32(uint32(len(t.Messages)))
	for _, e := range t.Messages {
		w.Var(e.Encode())
	}
}

// Hash is SHA-256 of the transcript's encoding without its confirmations:
// what the keyholders confirm and what the threshold key records.
func (t *Transcript) Hash() [32]byte {
	w := enc.NewWriter(1 << 12)
	t.head(w)
	return sha256.Sum256(w.Bytes())
}

// Encode returns the transcript's canonical encoding: the hashed part, then
// u32 count ‖ confirmations.
func (t *Transcript) Encode() []byte {
	w := enc.NewWriter(1 << 12)
	t.head(w)
	w.U32(uint32(len(t.Confirmations)))
	for _, e := range t.Confirmations {
		w.Var(e.Encode())
	}
	return w.Bytes()
}

// DecodeTranscript parses a transcript and checks its form: a valid
// session, envelopes of this session in canonical order, no duplicates, at
// most two messages per sender and round, confirmations one per sender.
// It checks neither signatures nor the rules (Check does).
func DecodeTranscript(b []byte) (*Transcript, error) {
	if len(b) > MaxTranscript {
		return nil, fmt.Errorf("dkg: transcript: %d bytes, limit %d", len(b), MaxTranscript)
	}
	r := enc.NewReader(b)
	if tag, v := r.U8(), r.U8(); r.Err() == nil && (tag != transcriptTag || v != transcriptVersion) {
		r.Fail(fmt.Errorf("not a DKG transcript of version %d (tag 0x%02x, version %d)", transcriptVersion, tag, v))
	}
	s, err := readSession(r)
	if err != nil {
		if r.Err() == nil {
			r.Fail(err)
		}
		return nil, fmt.Errorf("dkg: transcript: %w", r.Err())
	}
	t := &Transcript{Session: s}
	read := func(max int, what string) []*Envelope {
		var out []*Envelope
		n := r.Count(max, what)
		for i := 0; i < n && r.Err() == nil; i++ {
			e, err := DecodeEnvelope(r.Var(MaxEnvelope, "envelope"))
			if err != nil {
				r.Fail(fmt.Errorf("%s %d: %w", what, i, err))
				break
			}
			out = append(out, e)
		}
		return out
	}
	t.Messages = read(6*s.N(), "messages")
	t.Confirmations = read(s.N(), "confirmations")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("dkg: transcript: %w", err)
	}
	if err := t.checkOrder(); err != nil {
		return nil, fmt.Errorf("dkg: transcript: %w", err)
	}
	return t, nil
}

// checkOrder checks that the envelopes are this session's, in canonical
// order, and within the per-sender limits.
func (t *Transcript) checkOrder() error {
	id := t.Session.ID()
	var prev *Envelope
	count := map[[2]uint32]int{}
	for i, e := range t.Messages {
		switch {
		case e.Session != id:
			return fmt.Errorf("message %d: %v", i, errSession)
		case e.Kind < KindDeal || e.Kind > KindJustification:
			return fmt.Errorf("message %d: a %s among the messages of rounds 1–3", i, e.Kind)
		case e.From < 1 || int(e.From) > t.Session.N():
			return fmt.Errorf("message %d: sender %d is not a keyholder", i, e.From)
		}
		if prev != nil && !less(prev, e) {
			return fmt.Errorf("message %d: not in canonical order (round, sender, hash) or repeated", i)
		}
		key := [2]uint32{uint32(e.Kind), e.From}
		if count[key]++; count[key] > 2 {
			return fmt.Errorf("message %d: a third %s from keyholder %d", i, e.Kind, e.From)
		}
		prev = e
	}
	for i, e := range t.Confirmations {
		switch {
		case e.Session != id:
			return fmt.Errorf("confirmation %d: %v", i, errSession)
		case e.Kind != KindConfirmation:
			return fmt.Errorf("confirmation %d: a %s among the confirmations", i, e.Kind)
		case i > 0 && e.From <= t.Confirmations[i-1].From:
			return fmt.Errorf("confirmation %d: not in sender order or repeated", i)
		}
	}
	return nil
}

func less(a, b *Envelope) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.From != b.From {
		return a.From < b.From
	}
	ha, hb := a.Hash(), b.Hash()
	return bytes.Compare(ha[:], hb[:]) < 0
}

// Check verifies a transcript from nothing but itself: every signature, the
// rules of the DKG applied to rounds 1–3 (the same function the keyholders
// ran), and at least k confirmations of its hash by keyholders that hold a
// share. It returns the outcome: key, qualified dealers, holders, faults.
func Check(t *Transcript) (*Outcome, error) {
	v := newView(t.Session)
	for _, e := range append(slices.Clone(t.Messages), t.Confirmations...) {
		if _, err := t.Session.Open(e.Encode()); err != nil {
			return nil, fmt.Errorf("dkg: transcript: %w", err)
		}
		if _, err := v.add(e); err != nil {
			return nil, fmt.Errorf("dkg: transcript: %w", err)
		}
	}
	d, err := decide(v)
	if err != nil {
		return nil, err
	}
	o, err := outcome(t.Session, v, d, t.Hash())
	if err == nil && len(o.Transcript.Confirmations) != len(t.Confirmations) {
		err = fmt.Errorf("dkg: transcript: %d confirmations, %d of them by keyholders holding a share and of this transcript", len(t.Confirmations), len(o.Transcript.Confirmations))
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}
