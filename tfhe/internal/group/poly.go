package group

import "filippo.io/edwards25519"

// Polynomials over the scalar field and their commitments (Feldman): the
// trusted dealer, the DKG's dealers and the public key all evaluate them at
// keyholder numbers.

// RandomPoly returns k uniform coefficients a_0..a_{k−1}: a polynomial of
// degree k−1, any k of whose values fix it.
func RandomPoly(k int) []*edwards25519.Scalar {
	coef := make([]*edwards25519.Scalar, k)
	for i := range coef {
		coef[i] = RandomScalar()
	}
	return coef
}

// Commit returns a_j·G for each coefficient.
func Commit(coef []*edwards25519.Scalar) []*edwards25519.Point {
	out := make([]*edwards25519.Point, len(coef))
	for i, c := range coef {
		out[i] = new(edwards25519.Point).ScalarBaseMult(c)
	}
	return out
}

// EvalPoly returns Σ a_j·x^j by Horner's rule.
func EvalPoly(coef []*edwards25519.Scalar, x uint64) *edwards25519.Scalar {
	xs := ScalarFromUint64(x)
	acc := edwards25519.NewScalar()
	for j := len(coef) - 1; j >= 0; j-- {
		acc.MultiplyAdd(acc, xs, coef[j])
	}
	return acc
}

// EvalCommits returns Σ x^j·C_j by Horner's rule: the commitment to the
// polynomial's value at x (a keyholder's verification key when x is its
// number). Variable time: commitments are public.
func EvalCommits(commits []*edwards25519.Point, x uint64) *edwards25519.Point {
	xs := ScalarFromUint64(x)
	acc := edwards25519.NewIdentityPoint()
	for j := len(commits) - 1; j >= 0; j-- {
		acc.VarTimeDoubleScalarBaseMult(xs, acc, edwards25519.NewScalar())
		acc.Add(acc, commits[j])
	}
	return acc
}
