package tfhe

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// FinDec verifies every share of ct and combines k of them into r·Y (the
// common step of the seed's TFHE.FinDec). It refuses fewer than k shares, a
// second share from one keyholder, shares for another ciphertext or key, and
// bad proofs; a refusal caused by one share is a *ShareError naming its
// keyholder.
func FinDec(pk *PublicKey, ct Ciphertext, shares []*Share) (*edwards25519.Point, error) {
	if ct.KeyID() != pk.ID() {
		return nil, fmt.Errorf("tfhe: findec: ciphertext %w", errWrongKey)
	}
	if err := distinct(shares); err != nil {
		return nil, err
	}
	if len(shares) < pk.K {
		return nil, fmt.Errorf("tfhe: findec: %d shares, need %d", len(shares), pk.K)
	}
	if err := VerifyShares(pk, ct, shares); err != nil {
		return nil, err
	}
	return combine(pk, shares), nil
}

func distinct(shares []*Share) error {
	seen := map[int]bool{}
	for _, s := range shares {
		if seen[s.Index] {
			return blame(s.Index, "duplicate share")
		}
		seen[s.Index] = true
	}
	return nil
}

// combine interpolates Σ λ_i·D_i at 0 over the k lowest-indexed shares.
func combine(pk *PublicKey, shares []*Share) *edwards25519.Point {
	use := append([]*Share(nil), shares...)
	sort.Slice(use, func(a, b int) bool { return use[a].Index < use[b].Index })
	use = use[:pk.K]
	scalars := make([]*edwards25519.Scalar, len(use))
	points := make([]*edwards25519.Point, len(use))
	for i, s := range use {
		num, den := group.ScalarFromUint64(1), group.ScalarFromUint64(1)
		xi := group.ScalarFromUint64(uint64(s.Index))
		for _, o := range use {
			if o.Index == s.Index {
				continue
			}
			xj := group.ScalarFromUint64(uint64(o.Index))
			num.Multiply(num, xj)
			den.Multiply(den, edwards25519.NewScalar().Subtract(xj, xi))
		}
		scalars[i] = num.Multiply(num, den.Invert(den))
		points[i] = s.d
	}
	return new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
}

// Open decrypts a payload with k or more shares (FinDec for payloads).
func Open(pk *PublicKey, p *Payload, shares []*Share) ([]byte, error) {
	if err := p.Check(pk); err != nil {
		return nil, err
	}
	k, err := FinDec(pk, p, shares)
	if err != nil {
		return nil, err
	}
	return openWith(p, k)
}

func openWith(p *Payload, k *edwards25519.Point) ([]byte, error) {
	aead := payloadAEAD(p.key, p.u, k)
	pt, err := aead.Open(nil, make([]byte, aead.NonceSize()), p.body, p.aad())
	if err != nil {
		return nil, errors.New("tfhe: open: payload body does not decrypt")
	}
	return pt, nil
}

// DecryptCounter decrypts a counter with k or more shares (FinDec for
// counters).
func DecryptCounter(pk *PublicKey, c *Counter, shares []*Share) (uint64, error) {
	k, err := FinDec(pk, c, shares)
	if err != nil {
		return 0, err
	}
	m := new(edwards25519.Point).Subtract(c.v, k)
	v, ok := discreteLog(m)
	if !ok {
		return 0, errors.New("tfhe: decrypt: counter value is not below 2^32")
	}
	return v, nil
}

// OpenBlock decrypts a sealed block: batches holds each keyholder's
// ShareBatch for ps, in block order. Every share of every batch is verified
// in one random linear combination (one by one only to name a culprit if it
// fails). The block's plaintexts come back in order; a payload whose body
// does not decrypt (its sender's fault) gets a nil plaintext and an error in
// its slot, and does not affect the others.
func OpenBlock(pk *PublicKey, ps []*Payload, batches []*ShareBatch) ([][]byte, []error, error) {
	seen := map[int]bool{}
	for _, b := range batches {
		if b.Key != pk.ID() {
			return nil, nil, blame(b.Index, "batch %w", errWrongKey)
		}
		if seen[b.Index] {
			return nil, nil, blame(b.Index, "duplicate batch")
		}
		seen[b.Index] = true
		if len(b.Shares) != len(ps) {
			return nil, nil, blame(b.Index, "batch has %d shares for %d payloads", len(b.Shares), len(ps))
		}
	}
	if len(batches) < pk.K {
		return nil, nil, fmt.Errorf("tfhe: open block: %d share batches, need %d", len(batches), pk.K)
	}
	cts := make([]Ciphertext, len(ps))
	groups := make([][]*Share, len(ps))
	for i, p := range ps {
		if p.key != pk.ID() {
			return nil, nil, fmt.Errorf("tfhe: open block: payload %d %w", i, errWrongKey)
		}
		cts[i] = p
		for _, b := range batches {
			groups[i] = append(groups[i], b.Shares[i])
		}
	}
	if err := verifyShares(pk, cts, groups); err != nil {
		return nil, nil, err
	}
	out := make([][]byte, len(ps))
	errs := make([]error, len(ps))
	_ = workers.Each(context.Background(), len(ps), func(i int) error {
		out[i], errs[i] = openWith(ps[i], combine(pk, groups[i])) // one verdict per payload
		return nil
	})
	return out, errs, nil
}
