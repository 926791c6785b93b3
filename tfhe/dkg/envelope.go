package dkg

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
)

// Kind says which round an envelope belongs to; each keyholder sends one
// envelope of each kind.
type Kind uint8

// The rounds, in order.
const (
	KindDeal          Kind = 1 // the dealer's commitments and a share encrypted to each other keyholder
	KindResponse      Kind = 2 // approval or complaint about every other keyholder's deal
	KindJustification Kind = 3 // the shares a dealer reveals to answer complaints
	KindConfirmation  Kind = 4 // the hash of the transcript of rounds 1–3 the sender reached
)

func (k Kind) String() string {
	switch k {
	case KindDeal:
		return "deal"
	case KindResponse:
		return "response"
	case KindJustification:
		return "justification"
	case KindConfirmation:
		return "confirmation"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

const (
	envelopeVersion = 2 // 1 was kyber's per-recipient messages
	envelopeDomain  = "fractal/tfhe/dkg-envelope/v2\x00"
	// MaxBody bounds an envelope's body: a deal for n = k = 256 is about
	// 20 KiB.
	MaxBody = 32 << 10
	// MaxEnvelope bounds an envelope's encoding.
	MaxEnvelope = 1 + 32 + 1 + 4 + 4 + MaxBody + keys.SignatureSize
)

// Envelope is one DKG message: who sent it, for which session and round,
// signed by the sender's Fractal key (XEdDSA) over every other field. Every
// envelope goes to every keyholder; a deal's shares are encrypted to their
// recipients. An envelope proves itself, whoever passes it on.
type Envelope struct {
	Session [32]byte
	Kind    Kind
	From    uint32 // 1-based keyholder number
	Body    []byte
	Sig     []byte
}

func (e *Envelope) signed() []byte {
	w := enc.NewWriter(len(envelopeDomain) + 48 + len(e.Body))
	w.Fixed([]byte(envelopeDomain))
	e.header(w)
	return w.Bytes()
}

func (e *Envelope) header(w *enc.Writer) {
	w.U8(envelopeVersion)
	w.Fixed(e.Session[:])
	w.U8(uint8(e.Kind))
	w.U32(e.From)
	w.Var(e.Body)
}

// Encode returns the canonical encoding: version ‖ session ‖ kind ‖ from ‖
// var body ‖ signature.
func (e *Envelope) Encode() []byte {
	w := enc.NewWriter(48 + len(e.Body) + len(e.Sig))
	e.header(w)
	w.Fixed(e.Sig)
	return w.Bytes()
}

// Hash is SHA-256 of the encoding: what responses name a deal by.
func (e *Envelope) Hash() [32]byte { return sha256.Sum256(e.Encode()) }

// DecodeEnvelope parses an Encode output. It checks neither the session
// nor the signature (Session.Open does).
func DecodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) > MaxEnvelope {
		return nil, fmt.Errorf("dkg: envelope: %d bytes, limit %d", len(b), MaxEnvelope)
	}
	r := enc.NewReader(b)
	e := &Envelope{}
	if v := r.U8(); v != envelopeVersion && r.Err() == nil {
		r.Fail(fmt.Errorf("unknown envelope version %d", v))
	}
	r.Into(e.Session[:])
	e.Kind = Kind(r.U8())
	e.From = r.U32()
	e.Body = r.Var(MaxBody, "envelope body")
	e.Sig = r.Fixed(keys.SignatureSize)
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("dkg: envelope: %w", err)
	}
	return e, nil
}

// Seal signs a new envelope from keyholder from with its key: what a
// party sends (a driver that must alter its own message, a test's bad
// dealer, signs it again).
func (s *Session) Seal(key keys.PrivateKey, kind Kind, from int, body []byte) (*Envelope, error) {
	e := &Envelope{Session: s.id, Kind: kind, From: uint32(from), Body: body}
	sig, err := key.Sign(rand.Reader, e.signed())
	if err != nil {
		return nil, fmt.Errorf("dkg: sign %s: %w", kind, err)
	}
	e.Sig = sig
	return e, nil
}

// Refusal is an envelope refused on arrival: it does not decode, belongs
// to another session, names no keyholder of this one, or is not signed by
// the keyholder it names. Refused envelopes prove nothing and are not part
// of the transcript.
type Refusal struct {
	From   uint32 // the sender the envelope names (0 if it did not decode)
	Kind   Kind
	Reason string
}

func (r *Refusal) Error() string {
	if r.From == 0 {
		return "dkg: envelope refused: " + r.Reason
	}
	return fmt.Sprintf("dkg: %s from keyholder %d refused: %s", r.Kind, r.From, r.Reason)
}

// Open decodes an envelope received for this session and checks it:
// session, kind, sender and signature. It returns a *Refusal when any
// check fails.
func (s *Session) Open(raw []byte) (*Envelope, error) {
	e, err := DecodeEnvelope(raw)
	if err != nil {
		return nil, &Refusal{Reason: err.Error()}
	}
	refuse := func(format string, args ...any) error {
		return &Refusal{From: e.From, Kind: e.Kind, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case e.Session != s.id:
		return nil, refuse("%v (session %x, this one is %x)", errSession, e.Session[:4], s.id[:4])
	case e.Kind < KindDeal || e.Kind > KindConfirmation:
		return nil, refuse("unknown kind %d", uint8(e.Kind))
	case e.From < 1 || int(e.From) > s.N():
		return nil, refuse("sender %d is not a keyholder of this session (1..%d)", e.From, s.N())
	}
	if err := keys.Verify(s.Keys[e.From-1], e.signed(), e.Sig); err != nil {
		return nil, refuse("not signed by keyholder %d's key: %v", e.From, err)
	}
	return e, nil
}
