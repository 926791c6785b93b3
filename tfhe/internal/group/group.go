// Package group holds the edwards25519 arithmetic that the threshold scheme and
// its key generation share: strict point decoding (canonical, prime-order
// subgroup), uniform scalars, the hash-to-challenge construction and
// polynomials, on filippo.io/edwards25519 (RFC 8032 encodings).
package group

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/enc"
)

// PointSize and ScalarSize are the encoded sizes of a point and a scalar.
const (
	PointSize  = 32
	ScalarSize = 32
)

// minusOne is ℓ−1, the scalar used for the subgroup check.
var minusOne = edwards25519.NewScalar().Negate(scalarOne())

func scalarOne() *edwards25519.Scalar {
	var b [32]byte
	b[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}

// Errors a point decoding can return; callers wrap them with what the point was.
var (
	ErrNonCanonical = errors.New("non-canonical point encoding")
	ErrSmallOrder   = errors.New("point outside the prime-order subgroup")
	ErrIdentity     = errors.New("point is the identity")
)

// InSubgroup reports whether p lies in the prime-order subgroup, by checking
// [ℓ]p = 0 as [ℓ−1]p + p. Variable time: only ever applied to public points.
func InSubgroup(p *edwards25519.Point) bool {
	q := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(minusOne, p, edwards25519.NewScalar())
	q.Add(q, p)
	return q.Equal(edwards25519.NewIdentityPoint()) == 1
}

// DecodePoint decodes a point received from outside. It refuses non-canonical
// encodings (so every point has one encoding and hashes are unambiguous) and
// points with a small-order component, which would let a sender learn a
// keyholder's secret modulo 8 from its reply. Identity is refused unless
// allowIdentity is set.
func DecodePoint(b []byte, allowIdentity bool) (*edwards25519.Point, error) {
	if len(b) != PointSize {
		return nil, fmt.Errorf("point is %d bytes, want %d", len(b), PointSize)
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, err
	}
	if string(p.Bytes()) != string(b) {
		return nil, ErrNonCanonical
	}
	if !InSubgroup(p) {
		return nil, ErrSmallOrder
	}
	if !allowIdentity && p.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, ErrIdentity
	}
	return p, nil
}

// DecodeScalar decodes a canonical scalar (little-endian, below ℓ).
func DecodeScalar(b []byte) (*edwards25519.Scalar, error) {
	if len(b) != ScalarSize {
		return nil, fmt.Errorf("scalar is %d bytes, want %d", len(b), ScalarSize)
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b)
	if err != nil {
		return nil, errors.New("non-canonical scalar")
	}
	return s, nil
}

// RandomScalar returns a uniform scalar from crypto/rand.
func RandomScalar() *edwards25519.Scalar {
	var b [64]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; continuing with
		// a predictable nonce would leak keys, so stop.
		panic("group: crypto/rand failed: " + err.Error())
	}
	s, _ := edwards25519.NewScalar().SetUniformBytes(b[:])
	return s
}

// ScalarFromUint64 returns v as a scalar.
func ScalarFromUint64(v uint64) *edwards25519.Scalar {
	var b [32]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}

// Challenge is the one hash-to-scalar construction of the package: SHA-512
// over a canonical transcript (a domain string, then each part as a
// length-prefixed byte string), reduced modulo ℓ. The 512-bit digest makes the
// reduction's bias negligible; the length prefixes make the transcript
// unambiguous.
func Challenge(domain string, parts ...[]byte) *edwards25519.Scalar {
	w := enc.NewWriter(64 + 40*len(parts))
	w.String(domain)
	w.U32(uint32(len(parts)))
	for _, p := range parts {
		w.Var(p)
	}
	sum := sha512.Sum512(w.Bytes())
	s, _ := edwards25519.NewScalar().SetUniformBytes(sum[:])
	return s
}

// U32 is a 4-byte big-endian encoding, for binding integers into a Challenge.
func U32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
