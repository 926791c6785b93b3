package tfhe

import (
	"context"
	"errors"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// MaxBatch bounds the shares in one ShareBatch.
const MaxBatch = 1 << 16

// Share is keyholder Index's partial decryption D = x_i·U of one ciphertext,
// with a DLEQ proof (A = v·G, B = v·U, z = v + c·x_i) that log_G(Y_i) =
// log_U(D). The challenge c is recomputed by every verifier from the key ID,
// the ciphertext ID, the index, Y_i, U, D, A and B, so a share cannot be
// moved to another ciphertext, keyholder or key.
type Share struct {
	Key        [32]byte
	Ciphertext [32]byte
	Index      int
	d, a, b    *edwards25519.Point
	z          *edwards25519.Scalar
}

// ShareError names the keyholder whose share was refused.
type ShareError struct {
	Keyholder int
	Err       error
}

func (e *ShareError) Error() string {
	return fmt.Sprintf("tfhe: share from keyholder %d: %v", e.Keyholder, e.Err)
}

func (e *ShareError) Unwrap() error { return e.Err }

func blame(i int, format string, args ...any) error {
	return &ShareError{Keyholder: i, Err: fmt.Errorf(format, args...)}
}

// PartDec makes keyholder sk's share of ct (the seed's TFHE.PartDec). A
// payload's proof of knowledge is checked first; no share is released for a
// payload that fails it.
func PartDec(sk *KeyShare, ct Ciphertext) (*Share, error) {
	if ct.KeyID() != sk.PK.ID() {
		return nil, fmt.Errorf("tfhe: partdec: ciphertext %w", errWrongKey)
	}
	if p, ok := ct.(*Payload); ok {
		if err := p.Check(sk.PK); err != nil {
			return nil, err
		}
	}
	return partDec(sk, ct.ID(), ct.encapsulation()), nil
}

func partDec(sk *KeyShare, ctID [32]byte, u *edwards25519.Point) *Share {
	s := &Share{Key: sk.PK.ID(), Ciphertext: ctID, Index: sk.Index}
	s.d = new(edwards25519.Point).ScalarMult(sk.x, u)
	v := group.RandomScalar()
	s.a = new(edwards25519.Point).ScalarBaseMult(v)
	s.b = new(edwards25519.Point).ScalarMult(v, u)
	c := s.challenge(sk.PK.verify[sk.Index-1], u)
	s.z = edwards25519.NewScalar().MultiplyAdd(c, sk.x, v)
	return s
}

func (s *Share) challenge(y, u *edwards25519.Point) *edwards25519.Scalar {
	return group.Challenge(domainDLEQ, s.Key[:], s.Ciphertext[:], group.U32(uint32(s.Index)),
		y.Bytes(), u.Bytes(), s.d.Bytes(), s.a.Bytes(), s.b.Bytes())
}

// PartDecBatch makes keyholder sk's shares for a sealed block of payloads,
// in order, as one message. It refuses the whole block, naming the first
// payload that fails its check. The work is spread over GOMAXPROCS; once ctx
// is done no further share is made and ctx's error is returned.
func PartDecBatch(ctx context.Context, sk *KeyShare, ps []*Payload) (*ShareBatch, error) {
	if len(ps) > MaxBatch {
		return nil, fmt.Errorf("tfhe: partdec: %d payloads exceed %d", len(ps), MaxBatch)
	}
	b := &ShareBatch{Key: sk.PK.ID(), Index: sk.Index, Shares: make([]*Share, len(ps))}
	err := workers.Each(ctx, len(ps), func(i int) error {
		if err := ps[i].Check(sk.PK); err != nil {
			return fmt.Errorf("payload %d: %w", i, err)
		}
		b.Shares[i] = partDec(sk, ps[i].ID(), ps[i].u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tfhe: partdec: %w", err)
	}
	return b, nil
}

// check is the single-share verification: A == z·G − c·Y_i and
// B == z·U − c·D, with c recomputed.
func (s *Share) check(pk *PublicKey, ctID [32]byte, u *edwards25519.Point) error {
	if err := s.header(pk, ctID); err != nil {
		return err
	}
	y := pk.verify[s.Index-1]
	negC := edwards25519.NewScalar().Negate(s.challenge(y, u))
	a := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(negC, y, s.z)
	b := new(edwards25519.Point).VarTimeMultiScalarMult([]*edwards25519.Scalar{s.z, negC}, []*edwards25519.Point{u, s.d})
	if a.Equal(s.a) != 1 || b.Equal(s.b) != 1 {
		return blame(s.Index, "invalid DLEQ proof")
	}
	return nil
}

// header checks what needs no arithmetic.
func (s *Share) header(pk *PublicKey, ctID [32]byte) error {
	if s.Index < 1 || s.Index > pk.N {
		return blame(s.Index, "index out of 1..%d", pk.N)
	}
	if s.Key != pk.ID() {
		return blame(s.Index, "share %w", errWrongKey)
	}
	if s.Ciphertext != ctID {
		return blame(s.Index, "share is for another ciphertext")
	}
	return nil
}

// VerifyShare checks one share against ct.
func VerifyShare(pk *PublicKey, ct Ciphertext, s *Share) error {
	return s.check(pk, ct.ID(), ct.encapsulation())
}

// VerifyShares checks shares of ct: first all at once by a random linear
// combination of their verification equations (one multi-scalar
// multiplication), and only if that fails one by one, to name the keyholder.
func VerifyShares(pk *PublicKey, ct Ciphertext, shares []*Share) error {
	return verifyShares(pk, []Ciphertext{ct}, [][]*Share{shares})
}

// verifyShares batch-verifies groups of shares, group i being shares of
// cts[i].
func verifyShares(pk *PublicKey, cts []Ciphertext, groups [][]*Share) error {
	ids := make([][32]byte, len(cts))
	var scalars []*edwards25519.Scalar
	var points []*edwards25519.Point
	sumG := edwards25519.NewScalar()
	for i, ct := range cts {
		ids[i] = ct.ID()
		u := ct.encapsulation()
		sumU := edwards25519.NewScalar()
		for _, s := range groups[i] {
			if err := s.header(pk, ids[i]); err != nil {
				return err
			}
			y := pk.verify[s.Index-1]
			c := s.challenge(y, u)
			// ρ·(z·G − c·Y − A) + σ·(z·U − c·D − B) = 0 for random ρ, σ.
			rho, sigma := group.RandomScalar(), group.RandomScalar()
			sumG.MultiplyAdd(rho, s.z, sumG)
			sumU.MultiplyAdd(sigma, s.z, sumU)
			rc := edwards25519.NewScalar().Multiply(rho, c)
			sc := edwards25519.NewScalar().Multiply(sigma, c)
			scalars = append(scalars,
				rc.Negate(rc), edwards25519.NewScalar().Negate(rho),
				sc.Negate(sc), edwards25519.NewScalar().Negate(sigma))
			points = append(points, y, s.a, s.d, s.b)
		}
		scalars = append(scalars, sumU)
		points = append(points, u)
	}
	scalars = append(scalars, sumG)
	points = append(points, edwards25519.NewGeneratorPoint())
	sum := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	if sum.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil
	}
	for i, ct := range cts {
		for _, s := range groups[i] {
			if err := s.check(pk, ids[i], ct.encapsulation()); err != nil {
				return err
			}
		}
	}
	return errors.New("tfhe: batch verification failed but every share verifies alone")
}

// shareBodySize is a share's encoding after its key ID and index.
const shareBodySize = 32 + 3*group.PointSize + group.ScalarSize

func (s *Share) writeBody(w *enc.Writer) {
	w.Fixed(s.Ciphertext[:])
	w.Fixed(s.d.Bytes())
	w.Fixed(s.a.Bytes())
	w.Fixed(s.b.Bytes())
	w.Fixed(s.z.Bytes())
}

func readBody(r *enc.Reader, s *Share) {
	r.Into(s.Ciphertext[:])
	raw := r.Fixed(3 * group.PointSize)
	zb := r.Fixed(group.ScalarSize)
	if r.Err() != nil {
		return
	}
	var err error
	for i, dst := range []**edwards25519.Point{&s.d, &s.a, &s.b} {
		if *dst, err = group.DecodePoint(raw[32*i:32*i+32], true); err != nil {
			r.Fail(blame(s.Index, "point %d: %w", i, err))
			return
		}
	}
	if s.z, err = group.DecodeScalar(zb); err != nil {
		r.Fail(blame(s.Index, "%w", err))
	}
}

// Encode returns the share's 198-byte canonical encoding.
func (s *Share) Encode() []byte {
	w := enc.NewWriter(38 + shareBodySize)
	w.U8(tagShare)
	w.U8(version)
	w.Fixed(s.Key[:])
	w.U32(uint32(s.Index))
	s.writeBody(w)
	return w.Bytes()
}

// DecodeShare parses a Share encoding; its points are checked to be in the
// prime-order subgroup (a refusal names the keyholder).
func DecodeShare(b []byte) (*Share, error) {
	r := enc.NewReader(b)
	header(r, tagShare, "decryption share")
	s := &Share{}
	r.Into(s.Key[:])
	s.Index = int(r.U32())
	readBody(r, s)
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("tfhe: share: %w", err)
	}
	return s, nil
}

// ShareBatch is one keyholder's shares for a block of ciphertexts, in block
// order.
type ShareBatch struct {
	Key    [32]byte
	Index  int
	Shares []*Share
}

// Encode returns the batch's canonical encoding.
func (b *ShareBatch) Encode() []byte {
	w := enc.NewWriter(42 + len(b.Shares)*shareBodySize)
	w.U8(tagShareBatch)
	w.U8(version)
	w.Fixed(b.Key[:])
	w.U32(uint32(b.Index))
	w.U32(uint32(len(b.Shares)))
	for _, s := range b.Shares {
		s.writeBody(w)
	}
	return w.Bytes()
}

// DecodeShareBatch parses a ShareBatch encoding.
func DecodeShareBatch(b []byte) (*ShareBatch, error) {
	r := enc.NewReader(b)
	header(r, tagShareBatch, "share batch")
	sb := &ShareBatch{}
	r.Into(sb.Key[:])
	sb.Index = int(r.U32())
	n := r.Count(MaxBatch, "shares")
	if r.Err() == nil && r.Remaining() != n*shareBodySize {
		r.Fail(fmt.Errorf("%d shares need %d bytes, have %d", n, n*shareBodySize, r.Remaining()))
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		s := &Share{Key: sb.Key, Index: sb.Index}
		readBody(r, s)
		sb.Shares = append(sb.Shares, s)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("tfhe: share batch: %w", err)
	}
	return sb, nil
}
