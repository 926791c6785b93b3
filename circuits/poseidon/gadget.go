package poseidon

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	stdp2 "github.com/consensys/gnark/std/permutation/poseidon2"
)

// Gadget computes Compress and Hash inside a circuit.
//
// It runs the width-2 permutation of gnark's std/permutation/poseidon2 with
// the same parameters and the same round structure, but orders the factors
// of each S-box so that the prover's G2 multi-exponentiation is a third
// shorter (see sBox and docs/decisions/063-prover-speed.md).
type Gadget struct {
	api frontend.API
	p   stdp2.Parameters
}

// NewGadget returns the in-circuit twin of Compress and Hash for api, which
// must be over the BN254 scalar field.
func NewGadget(api frontend.API) (*Gadget, error) {
	if api.Compiler().Field().Cmp(ecc.BN254.ScalarField()) != 0 {
		return nil, fmt.Errorf("poseidon: gadget: field %s is not BN254's scalar field", api.Compiler().Field())
	}
	p, err := stdp2.GetDefaultParameters(ecc.BN254)
	if err != nil {
		return nil, fmt.Errorf("poseidon: gadget: %w", err)
	}
	if p.Width != 2 || p.DegreeSBox != 5 || p.NbFullRounds%2 != 0 {
		return nil, fmt.Errorf("poseidon: gadget: unexpected parameters (width %d, S-box degree %d, %d full rounds)", p.Width, p.DegreeSBox, p.NbFullRounds)
	}
	return &Gadget{api: api, p: p}, nil
}

// Compress is the in-circuit Compress (186 R1CS constraints: 62 S-boxes).
func (g *Gadget) Compress(left, right frontend.Variable) frontend.Variable {
	s := g.permute(left, right)
	return g.api.Add(s[1], right)
}

// sBox returns x^5 as x3·x2 with x2 = x·x and x3 = x2·x. gnark's R1CS
// builder puts the shorter factor of a product in the B matrix, so here B
// holds only the terms of x and the wire x2; the std chain x4·x puts x4 in B
// as well. Wires absent from B are skipped by both B multi-exponentiations
// of the Groth16 prover (the G2 one costs about three G1 ones).
func (g *Gadget) sBox(x frontend.Variable) frontend.Variable {
	x2 := g.api.Mul(x, x)
	x3 := g.api.Mul(x2, x)
	return g.api.Mul(x3, x2)
}

// permute is the Poseidon2 permutation of width 2: external matrix
// [[2,1],[1,2]], internal matrix [[2,1],[1,3]], round keys added after each
// matrix as in std's permutationWidth2 (and so in gnark-crypto).
func (g *Gadget) permute(a, b frontend.Variable) [2]frontend.Variable {
	api, rk := g.api, g.p.RoundKeys
	rf, rp := g.p.NbFullRounds/2, g.p.NbPartialRounds
	// ext returns M_E·(a, b) + (k0, k1); a nil key adds nothing.
	ext := func(a, b frontend.Variable, k0, k1 *big.Int) (frontend.Variable, frontend.Variable) {
		x, y := api.Add(api.Mul(a, 2), b), api.Add(a, api.Mul(b, 2))
		if k0 != nil {
			x = api.Add(x, k0)
		}
		if k1 != nil {
			y = api.Add(y, k1)
		}
		return x, y
	}
	// in returns M_I·(a, b) + (k0, k1).
	in := func(a, b frontend.Variable, k0, k1 *big.Int) (frontend.Variable, frontend.Variable) {
		x, y := api.Add(api.Mul(a, 2), b, k0), api.Add(a, api.Mul(b, 3))
		if k1 != nil {
			y = api.Add(y, k1)
		}
		return x, y
	}
	a, b = ext(a, b, &rk[0][0], &rk[0][1])
	for r := 0; r < rf; r++ { // first full rounds; the last one leads into a partial round
		var k1 *big.Int
		if r+1 < rf {
			k1 = &rk[r+1][1]
		}
		a, b = ext(g.sBox(a), g.sBox(b), &rk[r+1][0], k1)
	}
	for r := rf; r < rf+rp; r++ { // partial rounds; the last one leads into a full round
		var k1 *big.Int
		if r+1 == rf+rp {
			k1 = &rk[r+1][1]
		}
		a, b = in(g.sBox(a), b, &rk[r+1][0], k1)
	}
	for r := rf + rp; r < 2*rf+rp; r++ { // last full rounds; no key after the final one
		var k0, k1 *big.Int
		if r+1 < 2*rf+rp {
			k0, k1 = &rk[r+1][0], &rk[r+1][1]
		}
		a, b = ext(g.sBox(a), g.sBox(b), k0, k1)
	}
	return [2]frontend.Variable{a, b}
}

// Hash is the in-circuit Hash.
func (g *Gadget) Hash(tag Tag, xs ...frontend.Variable) frontend.Variable {
	e := tag.Element()
	var s frontend.Variable = e.BigInt(new(big.Int))
	for _, x := range xs {
		s = g.Compress(s, x)
	}
	return s
}
