package merkle

import (
	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/circuits/poseidon"
)

// RootGadget returns the root that leaf and the path (siblings leaf level
// first, position bits least significant first) lead to, inside a circuit.
// It constrains every bit to 0 or 1 and costs one Compress plus two
// constraints per level.
func RootGadget(api frontend.API, h *poseidon.Gadget, leaf frontend.Variable, siblings, bits []frontend.Variable) frontend.Variable {
	cur := leaf
	for i := range siblings {
		api.AssertIsBoolean(bits[i])
		// bit 0: (cur, sibling); bit 1: (sibling, cur). One product swaps both.
		d := api.Mul(bits[i], api.Sub(siblings[i], cur))
		cur = h.Compress(api.Add(cur, d), api.Sub(siblings[i], d))
	}
	return cur
}
