package poseidon

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"
	stdp2 "github.com/consensys/gnark/std/permutation/poseidon2"
)

// Gadget computes Compress and Hash inside a circuit.
type Gadget struct {
	api  frontend.API
	perm *stdp2.Permutation
}

// NewGadget returns the in-circuit twin of Compress and Hash for api, which
// must be over the BN254 scalar field.
func NewGadget(api frontend.API) (*Gadget, error) {
	p, err := stdp2.NewPoseidon2(api)
	if err != nil {
		return nil, fmt.Errorf("poseidon: gadget: %w", err)
	}
	return &Gadget{api: api, perm: p}, nil
}

// Compress is the in-circuit Compress (about 186 R1CS constraints).
func (g *Gadget) Compress(left, right frontend.Variable) frontend.Variable {
	return g.perm.Compress(left, right)
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
