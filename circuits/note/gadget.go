package note

import (
	"math/big"

	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/circuits/poseidon"
)

// Gadget computes owners, commitments and nullifiers inside a circuit.
type Gadget struct {
	api frontend.API
	h   *poseidon.Gadget
}

// NewGadget returns the in-circuit twin of this package for api.
func NewGadget(api frontend.API, h *poseidon.Gadget) *Gadget { return &Gadget{api: api, h: h} }

// Owner is the in-circuit OwnerOf.
func (g *Gadget) Owner(ask, nk frontend.Variable) frontend.Variable {
	return g.h.Compress(ask, nk)
}

// Commitment is the in-circuit Note.Commitment. The caller range-checks value
// to 64 bits and asset to AssetSize*8 bits; only then is the packing injective.
func (g *Gadget) Commitment(owner, value, asset, rho, rcm frontend.Variable) frontend.Variable {
	packed := g.api.Add(value, g.api.Mul(asset, new(big.Int).Lsh(big.NewInt(1), 64)))
	return g.h.Hash(TagNote, owner, packed, rho, rcm)
}

// Nullifier is the in-circuit Nullifier.
func (g *Gadget) Nullifier(nk, rho frontend.Variable) frontend.Variable {
	return g.h.Compress(nk, rho)
}
