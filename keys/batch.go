package keys

import (
	"crypto/rand"
	"fmt"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// BatchItem is one signature for VerifyBatch: Sig on Msg by Pub.
type BatchItem struct {
	Pub PublicKey
	Msg []byte
	Sig []byte
}

// VerifyBatch checks many signatures at once and returns nil exactly when
// Verify would accept every one of them. Each item first passes Verify's
// checks before the equation (its refusal is returned, naming the item);
// then one random linear combination of the cofactored equations,
//
//	8·(Σ z_i·R_i + Σ (z_i·h_i)·A_i − (Σ z_i·s_i)·B) = 0,
//
// with independent random 128-bit z_i, replaces the per-signature checks
// (signatures by the same key share one A term). Since every 8·(s_iB − h_iA_i
// − R_i) lies in the prime-order subgroup, a batch holding a signature that
// Verify refuses passes with probability at most 2^−128. When the
// combination fails, the items are verified one by one to name the first
// bad one. It costs about half of Verify per signature in large batches.
func VerifyBatch(items []BatchItem) error {
	if len(items) == 0 {
		return nil
	}
	z := make([]byte, 16*len(items))
	if _, err := rand.Read(z); err != nil {
		return fmt.Errorf("keys: batch verify: reading randomness: %w", err)
	}
	var (
		points  = make([]*edwards25519.Point, 0, 2*len(items))
		scalars = make([]*edwards25519.Scalar, 0, 2*len(items))
		keyAt   = make(map[PublicKey]int) // index of a key's A term in points
		sumS    = edwards25519.NewScalar()
		wide    [64]byte
	)
	inv := invertDenominators(items)
	for i, it := range items {
		p, err := parseWith(it.Pub, it.Msg, it.Sig, inv[i])
		if err != nil {
			return fmt.Errorf("keys: batch item %d: %w", i, err)
		}
		R, err := p.point()
		if err != nil {
			return fmt.Errorf("keys: batch item %d: %w", i, err)
		}
		copy(wide[:16], z[16*i:16*i+16])
		zi, err := edwards25519.NewScalar().SetUniformBytes(wide[:])
		if err != nil {
			return fmt.Errorf("keys: batch verify: %w", err) // unreachable: 64 bytes
		}
		sumS.MultiplyAdd(zi, p.s, sumS)
		points, scalars = append(points, R), append(scalars, zi)
		zh := edwards25519.NewScalar().Multiply(zi, p.h)
		if k, ok := keyAt[it.Pub]; ok {
			scalars[k].Add(scalars[k], zh)
			continue
		}
		keyAt[it.Pub] = len(points)
		points, scalars = append(points, p.A), append(scalars, zh)
	}
	sum := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	sum.Subtract(sum, new(edwards25519.Point).ScalarBaseMult(sumS))
	if smallOrder(sum) {
		return nil
	}
	for i, it := range items {
		if err := Verify(it.Pub, it.Msg, it.Sig); err != nil {
			return fmt.Errorf("keys: batch item %d: %w", i, err)
		}
	}
	// Unreachable unless the random combination of valid equations failed,
	// which cannot happen: every item verified on its own.
	return nil
}

// invertDenominators returns, for each item whose public key is a canonical
// u other than p − 1, 1/(u + 1), the inverse every conversion to Edwards
// form needs, and nil for the others (parse refuses them). One field
// inversion serves the whole batch (Montgomery's trick: three
// multiplications per key instead of an inversion each).
func invertDenominators(items []BatchItem) []*field.Element {
	out := make([]*field.Element, len(items))
	dens := make([]field.Element, len(items))
	prefix := make([]field.Element, len(items)) // products of the dens so far
	acc := new(field.Element).One()
	one := new(field.Element).One()
	for i := range items {
		if !canonicalField(items[i].Pub[:]) {
			continue
		}
		u, _ := new(field.Element).SetBytes(items[i].Pub[:]) // 32 bytes: no error
		dens[i].Add(u, one)
		if dens[i].Equal(new(field.Element).Zero()) == 1 {
			continue
		}
		prefix[i].Set(acc)
		acc.Multiply(acc, &dens[i])
		out[i] = &dens[i] // marks the item; replaced by its inverse below
	}
	inv := new(field.Element).Invert(acc)
	for i := len(items) - 1; i >= 0; i-- {
		if out[i] == nil {
			continue
		}
		d := new(field.Element).Set(&dens[i])
		out[i] = new(field.Element).Multiply(inv, &prefix[i])
		inv.Multiply(inv, d)
	}
	return out
}
