// Package circuits holds Fractal's gnark circuits. Transfer is the shielded
// pool's 2-input, 2-output transfer on BN254; its native twin is spread over
// the primitive packages beside it (poseidon, note, merkle), and
// NewTransferWitness builds a checked assignment and its public statement
// from native values. The statement is written out in docs/circuits.md.
package circuits

import (
	"math/big"

	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/circuits/poseidon"
)

// ValueBits is the width of every amount: note values, the fee, and the net
// amount shifted by 2^63.
const ValueBits = 64

// TransferName names the circuit in key caches and files.
const TransferName = "transfer-2x2-v1"

// SpendWitness is the private part of one input.
type SpendWitness struct {
	Ask, Nk         frontend.Variable // the owner's spend-authorising and nullifier keys
	Value, Rho, Rcm frontend.Variable
	Siblings        [merkle.Depth]frontend.Variable
	PathBits        [merkle.Depth]frontend.Variable // position, least significant bit first
}

// OutputWitness is the private part of one output; its rho is the nullifier
// of the input with the same index.
type OutputWitness struct {
	Owner, Value, Rcm frontend.Variable
}

// Transfer is the 2-in-2-out transfer statement. The public inputs, in this
// order (gnark's order of declaration), are Root, Nullifiers[0..1],
// Commitments[0..1], Asset, Net, Fee, Binding.
type Transfer struct {
	Root        frontend.Variable    `gnark:",public"` // anchor: a recent commitment-tree root
	Nullifiers  [2]frontend.Variable `gnark:",public"` // of the two inputs
	Commitments [2]frontend.Variable `gnark:",public"` // of the two outputs
	Asset       frontend.Variable    `gnark:",public"` // the one asset moved, < 2^184
	Net         frontend.Variable    `gnark:",public"` // signed amount entering the pool (shield > 0, unshield < 0)
	Fee         frontend.Variable    `gnark:",public"` // amount leaving the pool as fee
	Binding     frontend.Variable    `gnark:",public"` // hash of the rest of the transaction

	In  [2]SpendWitness
	Out [2]OutputWitness
}

// Define states: both inputs are owned notes in the tree (or worthless
// dummies), their nullifiers are correct and distinct, both outputs are
// well-formed commitments with rho bound to a nullifier, all amounts fit in
// 64 bits, and value is conserved:
// in0 + in1 + Net = out0 + out1 + Fee.
func (c *Transfer) Define(api frontend.API) error {
	h, err := poseidon.NewGadget(api)
	if err != nil {
		return err
	}
	ng := note.NewGadget(api, h)

	// Amount ranges. All terms below 2^64 (and |Net| ≤ 2^63) make both sides
	// of the balance smaller than 2^66, far below the field modulus, so the
	// field equation is the integer equation: no wrap-around.
	api.ToBinary(c.Asset, note.AssetSize*8)
	api.ToBinary(api.Add(c.Net, new(big.Int).Lsh(big.NewInt(1), ValueBits-1)), ValueBits)
	api.ToBinary(c.Fee, ValueBits)

	var sumIn, sumOut frontend.Variable = 0, 0
	for i := range c.In {
		in := &c.In[i]
		api.ToBinary(in.Value, ValueBits)
		owner := ng.Owner(in.Ask, in.Nk)
		cm := ng.Commitment(owner, in.Value, c.Asset, in.Rho, in.Rcm)
		root := merkle.RootGadget(api, h, cm, in.Siblings[:], in.PathBits[:])
		// Membership, unless the input is a dummy of value 0.
		api.AssertIsEqual(api.Mul(api.Sub(root, c.Root), in.Value), 0)
		api.AssertIsEqual(ng.Nullifier(in.Nk, in.Rho), c.Nullifiers[i])
		sumIn = api.Add(sumIn, in.Value)
	}
	api.AssertIsDifferent(c.Nullifiers[0], c.Nullifiers[1])

	for j := range c.Out {
		out := &c.Out[j]
		api.ToBinary(out.Value, ValueBits)
		cm := ng.Commitment(out.Owner, out.Value, c.Asset, c.Nullifiers[j], out.Rcm)
		api.AssertIsEqual(cm, c.Commitments[j])
		sumOut = api.Add(sumOut, out.Value)
	}

	api.AssertIsEqual(api.Add(sumIn, c.Net), api.Add(sumOut, c.Fee))

	// Binding enters no other constraint; without one, Groth16 would not bind
	// it and a proof could be moved to another transaction.
	api.Mul(c.Binding, c.Binding)
	return nil
}
