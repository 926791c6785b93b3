package fractal

import (
	"context"
	"fmt"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// GasMargin is the share EstimateGas adds to the smallest sufficient gas
// limit, in percent (decision 145): a block may see a state that costs a
// little more (a longer note read, another branch taken) than the
// simulation's.
const GasMargin = 20

// GasEstimate is what EstimateGas found: the gas limit to sign, and the
// receipt of the simulation with the smallest sufficient limit and the
// height of the block whose state it ran against.
type GasEstimate struct {
	Limit   uint64
	Receipt *phases.Receipt
	Height  uint64
}

// EstimateGas finds a gas limit for tx. It simulates tx, unsigned, with the
// largest gas limit admission allows it (the smallest of
// phases.MaxGasLimit, max_block_gas, max_tx_gas, most when not 0 (a node's simulation
// limit) and, when it offers a fee, what its fee note can pay at its
// price), then searches for the smallest limit with
// which the simulation is still accepted: the gas used is not always
// enough, since each of the N validity predicates may use only 1/N of what
// calculation left. It returns that simulation's receipt and height and the
// limit plus GasMargin percent, rounded up, within the largest. The receipt
// of a transaction that phases 1–3 would refuse says why, and the limit is
// then 0; one that admission refuses is an error, as for Simulate. tx is not
// changed: set the limit, then sign (the ID covers it).
func (in *Instance) EstimateGas(ctx context.Context, tx *phases.Tx, most uint64) (*GasEstimate, error) {
	run := *tx
	run.Signatures = nil
	largest, err := in.largestGasLimit(tx)
	if err != nil {
		return nil, err
	}
	if most != 0 {
		largest = min(largest, most)
	}
	simulate := func(limit uint64) (*GasEstimate, error) {
		run.GasLimit = limit
		rc, h, err := in.Simulate(ctx, &run, true)
		return &GasEstimate{Receipt: rc, Height: h}, err
	}
	est, err := simulate(largest)
	if err != nil {
		return nil, err
	}
	if est.Receipt.Err() != nil {
		return est, nil
	}
	// The smallest sufficient limit lies in [used, largest]: double from
	// the gas used until a run is accepted, then halve the gap.
	lo, hi := est.Receipt.Gas.Total(), largest // lo-1 fails (or is below used), hi passes
	for try := lo; try < hi; try = min(hi, 2*try) {
		e, err := simulate(try)
		if err != nil {
			return nil, err
		}
		if e.Receipt.Err() == nil {
			hi, est = try, e
			break
		}
		lo = try + 1
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := simulate(mid)
		if err != nil {
			return nil, err
		}
		if e.Receipt.Err() == nil {
			hi, est = mid, e
		} else {
			lo = mid + 1
		}
	}
	est.Limit = min(largest, hi+(hi*GasMargin+99)/100)
	return est, nil
}

// largestGasLimit is the largest gas limit admission lets tx ask for.
func (in *Instance) largestGasLimit(tx *phases.Tx) (uint64, error) {
	limit := min(uint64(phases.MaxGasLimit), in.cfg.MaxBlockGas, in.MaxTxGas())
	if tx.Fee == nil || tx.Fee.Price == 0 || in.rules.Fee == nil {
		return limit, nil
	}
	list, err := in.Notes(notes.PatternFromKeyPrefix(tx.Fee.Note))
	if err != nil {
		return 0, fmt.Errorf("fractal: estimate gas: %w", err)
	}
	for _, n := range list {
		if n.StateKey().Equal(tx.Fee.Note) {
			if amount, err := in.rules.Fee.Payable(&phases.Tx{Fee: tx.Fee, Signers: tx.Signers}, n); err == nil {
				return min(limit, amount/tx.Fee.Price), nil
			}
		}
	}
	return limit, nil // Simulate says why the fee cannot be paid
}
