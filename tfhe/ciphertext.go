package tfhe

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// Limits on payloads.
const (
	MaxContext = 1 << 10 // bytes of context bound to a payload
	MaxBody    = 1 << 24 // bytes of sealed body (plaintext + 16-byte tag)
	// CounterLimit: counters hold integers in [0, CounterLimit).
	CounterLimit = 1 << 32
)

// Domain strings of every hash in the package.
const (
	domainPayloadKey = "fractal/tfhe/payload-key/v1"
	domainPayloadPoK = "fractal/tfhe/payload-pok/v1"
	domainDLEQ       = "fractal/tfhe/dleq/v1"
)

// Ciphertext is a Counter or a Payload.
type Ciphertext interface {
	// ID is SHA-256 of the encoding; shares name the ciphertext by it.
	ID() [32]byte
	// KeyID names the public key the ciphertext was made for.
	KeyID() [32]byte
	Encode() []byte
	// encapsulation is the point U = r·G that keyholders decrypt.
	encapsulation() *edwards25519.Point
}

// Counter is exponential ElGamal: U = r·G, V = m·G + r·Y.
type Counter struct {
	key  [32]byte
	u, v *edwards25519.Point
}

func (c *Counter) encapsulation() *edwards25519.Point { return c.u }

// KeyID names the key.
func (c *Counter) KeyID() [32]byte { return c.key }

// ID is SHA-256 of the encoding.
func (c *Counter) ID() [32]byte { return sha256.Sum256(c.Encode()) }

// Encode returns the 98-byte canonical encoding.
func (c *Counter) Encode() []byte {
	w := enc.NewWriter(98)
	w.U8(tagCounter)
	w.U8(version)
	w.Fixed(c.key[:])
	w.Fixed(c.u.Bytes())
	w.Fixed(c.v.Bytes())
	return w.Bytes()
}

// Encrypt encrypts an integer m < 2^32 as a Counter (the seed's
// TFHE.Encrypt for the homomorphic kind).
func Encrypt(pk *PublicKey, m uint64) (*Counter, error) {
	if m >= CounterLimit {
		return nil, fmt.Errorf("tfhe: encrypt: %d is not below 2^32", m)
	}
	r := group.RandomScalar()
	u := new(edwards25519.Point).ScalarBaseMult(r)
	v := new(edwards25519.Point).ScalarMult(r, pk.Y())
	v.Add(v, new(edwards25519.Point).ScalarBaseMult(group.ScalarFromUint64(m)))
	return &Counter{key: pk.ID(), u: u, v: v}, nil
}

// Payload is a sealed byte string: U = r·G encapsulates K = r·Y, the body is
// AES-256-GCM under a key derived from K, and (A, z) is a Schnorr proof of
// knowledge of r whose challenge covers the key, the context, U and the body.
type Payload struct {
	key     [32]byte
	Context []byte
	u, a    *edwards25519.Point
	z       *edwards25519.Scalar
	body    []byte
}

func (p *Payload) encapsulation() *edwards25519.Point { return p.u }

// KeyID names the key.
func (p *Payload) KeyID() [32]byte { return p.key }

// ID is SHA-256 of the encoding.
func (p *Payload) ID() [32]byte { return sha256.Sum256(p.Encode()) }

// aad is what the AEAD authenticates besides the body: everything before the
// proof.
func (p *Payload) aad() []byte {
	w := enc.NewWriter(80 + len(p.Context))
	w.U8(tagPayload)
	w.U8(version)
	w.Fixed(p.key[:])
	w.Var(p.Context)
	w.Fixed(p.u.Bytes())
	return w.Bytes()
}

// Encode returns the canonical encoding.
func (p *Payload) Encode() []byte {
	w := enc.NewWriter(len(p.body) + len(p.Context) + 150)
	w.Fixed(p.aad())
	w.Fixed(p.a.Bytes())
	w.Fixed(p.z.Bytes())
	w.Var(p.body)
	return w.Bytes()
}

func (p *Payload) challenge() *edwards25519.Scalar {
	bodyHash := sha256.Sum256(p.body)
	return group.Challenge(domainPayloadPoK, p.key[:], p.Context, p.u.Bytes(), p.a.Bytes(), bodyHash[:])
}

// Seal encrypts plaintext for the key, binding context (say, the chain and
// height it is meant for) into the ciphertext.
func Seal(pk *PublicKey, plaintext, context []byte) (*Payload, error) {
	if len(context) > MaxContext {
		return nil, fmt.Errorf("tfhe: seal: context of %d bytes exceeds %d", len(context), MaxContext)
	}
	if len(plaintext)+16 > MaxBody {
		return nil, fmt.Errorf("tfhe: seal: plaintext of %d bytes exceeds %d", len(plaintext), MaxBody-16)
	}
	r := group.RandomScalar()
	p := &Payload{key: pk.ID(), Context: append([]byte(nil), context...)}
	p.u = new(edwards25519.Point).ScalarBaseMult(r)
	k := new(edwards25519.Point).ScalarMult(r, pk.Y())
	aead := payloadAEAD(p.key, p.u, k)
	p.body = aead.Seal(nil, make([]byte, aead.NonceSize()), plaintext, p.aad())
	s := group.RandomScalar()
	p.a = new(edwards25519.Point).ScalarBaseMult(s)
	p.z = edwards25519.NewScalar().MultiplyAdd(p.challenge(), r, s)
	return p, nil
}

// payloadAEAD derives the body key from the shared point. The key is fresh
// for every payload (fresh r), so the all-zero nonce is used once.
func payloadAEAD(keyID [32]byte, u, k *edwards25519.Point) cipher.AEAD {
	w := enc.NewWriter(128)
	w.String(domainPayloadKey)
	w.Fixed(keyID[:])
	w.Fixed(u.Bytes())
	w.Fixed(k.Bytes())
	key := sha256.Sum256(w.Bytes())
	block, _ := aes.NewCipher(key[:])
	aead, _ := cipher.NewGCM(block)
	return aead
}

// Check verifies that the payload is for pk and that its proof of knowledge
// holds. Keyholders call it (PartDec does) before releasing a share: a
// payload re-randomised or otherwise altered by someone who does not know r
// fails here, so decryption shares cannot be used as a decryption oracle.
func (p *Payload) Check(pk *PublicKey) error {
	if p.key != pk.ID() {
		return fmt.Errorf("tfhe: payload %w", errWrongKey)
	}
	// A == z·G − c·U
	negC := edwards25519.NewScalar().Negate(p.challenge())
	got := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(negC, p.u, p.z)
	if got.Equal(p.a) != 1 {
		return errors.New("tfhe: payload: invalid proof of knowledge (altered ciphertext)")
	}
	return nil
}

// DecodeCounter parses a Counter encoding.
func DecodeCounter(b []byte) (*Counter, error) {
	r := enc.NewReader(b)
	header(r, tagCounter, "counter ciphertext")
	c := &Counter{}
	r.Into(c.key[:])
	ub, vb := r.Fixed(group.PointSize), r.Fixed(group.PointSize)
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("tfhe: counter: %w", err)
	}
	var err error
	// Identity is allowed: Eval with factor 0 produces it.
	if c.u, err = group.DecodePoint(ub, true); err != nil {
		return nil, fmt.Errorf("tfhe: counter: U: %w", err)
	}
	if c.v, err = group.DecodePoint(vb, true); err != nil {
		return nil, fmt.Errorf("tfhe: counter: V: %w", err)
	}
	return c, nil
}

// DecodePayload parses a Payload encoding. It checks the points but not the
// proof; call Check with the key.
func DecodePayload(b []byte) (*Payload, error) {
	r := enc.NewReader(b)
	header(r, tagPayload, "payload ciphertext")
	p := &Payload{}
	r.Into(p.key[:])
	p.Context = r.Var(MaxContext, "context")
	ub, ab, zb := r.Fixed(group.PointSize), r.Fixed(group.PointSize), r.Fixed(group.ScalarSize)
	p.body = r.Var(MaxBody, "body")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("tfhe: payload: %w", err)
	}
	var err error
	if p.u, err = group.DecodePoint(ub, false); err != nil {
		return nil, fmt.Errorf("tfhe: payload: U: %w", err)
	}
	if p.a, err = group.DecodePoint(ab, true); err != nil {
		return nil, fmt.Errorf("tfhe: payload: proof: %w", err)
	}
	if p.z, err = group.DecodeScalar(zb); err != nil {
		return nil, fmt.Errorf("tfhe: payload: proof: %w", err)
	}
	if len(p.body) < 16 {
		return nil, fmt.Errorf("tfhe: payload: body of %d bytes is shorter than its tag", len(p.body))
	}
	return p, nil
}

// DecodeCiphertext parses either kind, by its type tag.
func DecodeCiphertext(b []byte) (Ciphertext, error) {
	if len(b) == 0 {
		return nil, errors.New("tfhe: ciphertext: empty input")
	}
	switch b[0] {
	case tagCounter:
		return DecodeCounter(b)
	case tagPayload:
		return DecodePayload(b)
	}
	return nil, fmt.Errorf("tfhe: ciphertext: unknown type tag 0x%02x", b[0])
}
