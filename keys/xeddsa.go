package keys

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// ErrInvalidSignature is wrapped by every refusal from Verify; the wrapping
// error says which check failed.
var ErrInvalidSignature = errors.New("keys: invalid signature")

// hash1Prefix is the 32-byte prefix of XEdDSA's hash_1: 2^256 − 1 − 1 in
// little-endian, that is 0xFE followed by 31 bytes of 0xFF. It separates the
// nonce hash from the challenge hash.
var hash1Prefix = func() [32]byte {
	var b [32]byte
	for i := range b {
		b[i] = 0xFF
	}
	b[0] = 0xFE
	return b
}()

// Sign returns the 64-byte XEdDSA signature R || s of msg under k. It reads
// 64 random bytes from rand for the nonce (XEdDSA hedges: the nonce hash also
// covers the key and the message, so a weak rand does not leak the key).
func (k PrivateKey) Sign(rand io.Reader, msg []byte) ([]byte, error) {
	var z [64]byte
	if _, err := io.ReadFull(rand, z[:]); err != nil {
		return nil, fmt.Errorf("keys: sign: reading randomness: %w", err)
	}
	pubA, a := edwardsKeyPair(k)

	// r = hash_1(a || M || Z) mod q
	h := sha512.New()
	h.Write(hash1Prefix[:])
	h.Write(a.Bytes())
	h.Write(msg)
	h.Write(z[:])
	r, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("keys: sign: nonce: %w", err)
	}
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()

	// s = r + h·a mod q, h = SHA-512(R || A || M) mod q
	c := challenge(R, pubA[:], msg)
	s := edwards25519.NewScalar().MultiplyAdd(c, a, r)

	sig := make([]byte, 0, SignatureSize)
	sig = append(sig, R...)
	return append(sig, s.Bytes()...), nil
}

// edwardsKeyPair is XEdDSA's calculate_key_pair: E = kB for the clamped k;
// the Edwards public key A is E with its sign bit forced to 0, and the
// signing scalar a is k or −k so that A = aB. The choice is constant-time.
func edwardsKeyPair(k PrivateKey) (pubA [32]byte, a *edwards25519.Scalar) {
	kS, err := edwards25519.NewScalar().SetBytesWithClamping(k[:])
	if err != nil {
		panic("keys: clamping refused a 32-byte key: " + err.Error()) // unreachable: length is fixed
	}
	copy(pubA[:], new(edwards25519.Point).ScalarBaseMult(kS).Bytes())
	sign := int(pubA[31] >> 7)
	pubA[31] &= 0x7F

	chosen := kS.Bytes()
	neg := edwards25519.NewScalar().Negate(kS).Bytes()
	subtle.ConstantTimeCopy(sign, chosen, neg)
	a, err = edwards25519.NewScalar().SetCanonicalBytes(chosen)
	if err != nil {
		panic("keys: reduced scalar not canonical: " + err.Error()) // unreachable: Bytes is canonical
	}
	return pubA, a
}

// EdwardsKey returns the key pair XEdDSA signs with: the scalar a and the
// Edwards point A = a·B (sign bit 0) of k. It is for protocols on
// edwards25519 that identify a party by its Fractal key, such as the
// threshold DKG's deal encryption (tfhe/dkg); a is as secret as k.
func (k PrivateKey) EdwardsKey() (a *edwards25519.Scalar, A *edwards25519.Point) {
	pubA, a := edwardsKeyPair(k)
	A, err := new(edwards25519.Point).SetBytes(pubA[:])
	if err != nil {
		panic("keys: encoding of a·B does not decode: " + err.Error()) // unreachable
	}
	return a, A
}

// EdwardsPoint returns the Edwards point XEdDSA verifies p's signatures
// with (y = (u − 1)/(u + 1), sign bit 0), the A of EdwardsKey. It refuses
// what Verify refuses: u ≥ p, a u with no Edwards point, small order. A
// point with a small-order component passes; callers that need the
// prime-order subgroup check it.
func (p PublicKey) EdwardsPoint() (*edwards25519.Point, error) {
	if !canonicalField(p[:]) {
		return nil, errors.New("keys: public key u is not below p = 2^255 − 19")
	}
	A, _, err := montgomeryToEdwards(p, nil)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return A, nil
}

// challenge returns SHA-512(R || A || M) mod q.
func challenge(R, A, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(R)
	h.Write(A)
	h.Write(msg)
	c, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		panic("keys: 64-byte hash refused: " + err.Error()) // unreachable: SHA-512 is 64 bytes
	}
	return c
}

// Verify checks an XEdDSA signature of msg by pub. It returns nil for a valid
// signature and otherwise an error wrapping ErrInvalidSignature that says
// which check failed. Following the specification's xeddsa_verify it refuses
// u ≥ p, a u with no point on the Edwards curve, a non-canonical R, and
// s ≥ q; it also refuses a public key of small order, which no X25519 key
// pair produces and under which signatures can be forged. The equation is
// cofactored: 8·(sB − hA − R) = 0 with R the canonical encoding of a point,
// so that VerifyBatch, which needs the cofactor, accepts exactly the same
// signatures (docs/formats/keys.md). A signature whose R equals sB − hA
// byte for byte, as every honest signer's does, is accepted without more work.
func Verify(pub PublicKey, msg, sig []byte) error {
	p, err := parse(pub, msg, sig)
	if err != nil {
		return err
	}
	// Rcheck = sB − hA
	negH := edwards25519.NewScalar().Negate(p.h)
	check := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(negH, p.A, p.s)
	if subtle.ConstantTimeCompare(check.Bytes(), p.R) == 1 {
		return nil
	}
	R, err := p.point()
	if err != nil {
		return err
	}
	if !smallOrder(check.Subtract(check, R)) {
		return errEquation
	}
	return nil
}

// errEquation is the refusal of a signature whose equation does not hold.
var errEquation = fmt.Errorf("%w: R ≠ sB − hA (wrong key, changed message or forged signature)", ErrInvalidSignature)

// parsed is a signature that passed every check but the equation.
type parsed struct {
	A    *edwards25519.Point  // the signer's Edwards key
	R    []byte               // R as signed, y canonical
	s, h *edwards25519.Scalar // s, and the challenge SHA-512(R ‖ A ‖ M) mod q
}

// parse runs every check of Verify that comes before the equation, in the
// specification's order, and computes the challenge.
func parse(pub PublicKey, msg, sig []byte) (*parsed, error) {
	return parseWith(pub, msg, sig, nil)
}

// parseWith is parse given 1/(u + 1) for the public key's u (nil: it
// computes it), so that a batch can invert all its keys' at once.
func parseWith(pub PublicKey, msg, sig []byte, invDen *field.Element) (*parsed, error) {
	if len(sig) != SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidSignature, len(sig), SignatureSize)
	}
	R, sBytes := sig[:32], sig[32:]

	if !canonicalField(pub[:]) {
		return nil, fmt.Errorf("%w: public key u is not below p = 2^255 − 19", ErrInvalidSignature)
	}
	var y [32]byte
	copy(y[:], R)
	y[31] &= 0x7F
	if !canonicalField(y[:]) {
		return nil, fmt.Errorf("%w: R is not canonical (y ≥ p)", ErrInvalidSignature)
	}
	if sBytes[31]&0xE0 != 0 {
		return nil, fmt.Errorf("%w: s ≥ 2^253", ErrInvalidSignature)
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: s is not reduced modulo q", ErrInvalidSignature)
	}
	A, encA, err := montgomeryToEdwards(pub, invDen)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	return &parsed{A: A, R: R, s: s, h: challenge(R, encA[:], msg)}, nil
}

// point decodes R. An R that is no point, or not the canonical encoding of
// its point, cannot equal an encoding of sB − hA and fails the equation.
// parse checked that R's y is below p, so the one other encoding that
// decodes is x = 0 with the sign bit set, and x = 0 exactly when y = ±1.
func (p *parsed) point() (*edwards25519.Point, error) {
	R, err := new(edwards25519.Point).SetBytes(p.R)
	if err != nil || p.R[31]>>7 == 1 && (isEncoding(p.R, &one) || isEncoding(p.R, &minusOne)) {
		return nil, errEquation
	}
	return R, nil
}

// one and minusOne are the canonical encodings of the field elements 1 and
// p − 1, the y of the two points with x = 0.
var one, minusOne = func() (a, b [32]byte) {
	f := new(field.Element).One()
	copy(a[:], f.Bytes())
	copy(b[:], f.Negate(f).Bytes())
	return a, b
}()

// isEncoding reports whether enc, its sign bit cleared, is y.
func isEncoding(enc []byte, y *[32]byte) bool {
	return enc[31]&0x7F == y[31] && subtle.ConstantTimeCompare(enc[:31], y[:31]) == 1
}

// smallOrder reports whether 8·P is the identity.
func smallOrder(P *edwards25519.Point) bool {
	return new(edwards25519.Point).MultByCofactor(P).Equal(edwards25519.NewIdentityPoint()) == 1
}

// canonicalField reports whether the 32 little-endian bytes b encode a field
// element below p, with the top bit clear.
func canonicalField(b []byte) bool {
	fe, err := new(field.Element).SetBytes(b)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(fe.Bytes(), b) == 1
}

// montgomeryToEdwards is XEdDSA's convert_mont for a canonical u: the
// Edwards point with y = (u − 1)/(u + 1) and sign bit 0, and its encoding
// (y itself: the decoded x has the sign bit's parity, 0). It refuses u = −1
// (where u + 1 has no inverse), a y with no x on the curve (u on the twist),
// and points of small order. invDen, when not nil, is 1/(u + 1).
func montgomeryToEdwards(pub PublicKey, invDen *field.Element) (*edwards25519.Point, [32]byte, error) {
	var enc [32]byte
	u, err := new(field.Element).SetBytes(pub[:])
	if err != nil {
		return nil, enc, fmt.Errorf("public key: %w", err)
	}
	one := new(field.Element).One()
	den := new(field.Element).Add(u, one)
	if den.Equal(new(field.Element).Zero()) == 1 {
		return nil, enc, errors.New("public key u = p − 1 has no Edwards point")
	}
	if invDen == nil {
		invDen = new(field.Element).Invert(den)
	}
	num := new(field.Element).Subtract(u, one)
	y := new(field.Element).Multiply(num, invDen)
	copy(enc[:], y.Bytes())
	A, err := new(edwards25519.Point).SetBytes(enc[:])
	if err != nil {
		return nil, enc, errors.New("public key u has no point on the Edwards curve")
	}
	if smallOrder(A) {
		return nil, enc, errors.New("public key has small order")
	}
	return A, enc, nil
}
