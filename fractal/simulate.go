package fractal

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Simulate runs tx as the next block would and writes nothing: the
// admission checks of Check that need no queue (form, size, the block gas
// limit, the fee, not executed before), then phases 1–3 through the Execute
// stage against the committed state, with the executor as the block's
// producer. It returns tx's receipt, with the gas of each phase and the fee
// it would pay; a transaction that admission or the phases refuse gets a
// refused receipt saying why (phase admission for the checks before phase
// 1). The error is for a host failure only.
//
// A transaction with signers but no signatures at all runs as if each
// signer had signed: no Lua code sees a signature and the ID does not
// cover them, so the gas is the signed transaction's, and a wallet can
// estimate before signing. Any signature given must verify. The gas of a
// run depends on the gas limit only when it runs out, so a simulation with
// a higher limit reports what the transaction needs (decision 145).
//
// It takes no lock: like Execute it reads one snapshot of the store, and
// the next block may still see another state (a note spent meanwhile).
func (in *Instance) Simulate(ctx context.Context, tx *phases.Tx) (*phases.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	run := tx
	if len(tx.Signatures) == 0 && len(tx.Signers) > 0 {
		cp := *tx
		run = &cp
		run.MarkVerified()
	}
	view := in.db.NewTransaction(false)
	defer view.Discard()
	id := tx.ID()
	if err := in.simulateAdmission(view, run); err != nil {
		return &phases.Receipt{TxID: id, Status: phases.Refused, Phase: phases.PhaseAdmission, Reason: err.Error()}, nil
	}
	head, err := headHeight(view)
	if err != nil {
		return nil, fmt.Errorf("fractal: simulate: %w", err)
	}
	p := &Proposal{Producer: in.pub, Txs: []*phases.Tx{run}}
	if p.Parent, err = in.blockAt(view, head); err != nil {
		return nil, fmt.Errorf("fractal: simulate: %w", err)
	}
	x, err := in.execute(ctx, badgerdb.KV{Txn: view}, p, nil)
	if err != nil {
		return nil, fmt.Errorf("fractal: simulate: %w", err)
	}
	return x.Receipts[0], nil
}

// simulateAdmission is Check's admission for Simulate: everything but the
// queue, and signatures only when tx is not marked as verified.
func (in *Instance) simulateAdmission(view *badger.Txn, tx *phases.Tx) error {
	if _, err := in.checkForm(tx); err != nil {
		return err
	}
	if len(tx.Signatures) > 0 {
		if err := tx.VerifySignatures(); err != nil {
			return err
		}
	}
	if err := in.checkFee(view, tx, false); err != nil {
		return err
	}
	return checkExecuted(view, tx.ID())
}

// GasMargin is the share EstimateGas adds to the smallest sufficient gas
// limit, in percent (decision 145): a block may see a state that costs a
// little more (a longer note read, another branch taken) than the
// simulation's.
const GasMargin = 20

// EstimateGas finds a gas limit for tx. It simulates tx, unsigned, with the
// largest gas limit admission allows it (the smallest of
// phases.MaxGasLimit, max_block_gas and, when it offers a fee, what its fee
// note can pay at its price), then searches for the smallest limit with
// which the simulation is still accepted: the gas used is not always
// enough, since each of the N validity predicates may use only 1/N of what
// calculation left. It returns that simulation's receipt and the limit plus
// GasMargin percent, rounded up, within the largest. The receipt of a
// transaction that would be refused says why; the limit is then 0. tx is
// not changed: set the limit, then sign (the ID covers it).
func (in *Instance) EstimateGas(ctx context.Context, tx *phases.Tx) (*phases.Receipt, uint64, error) {
	run := *tx
	run.Signatures = nil
	largest, err := in.largestGasLimit(tx)
	if err != nil {
		return nil, 0, err
	}
	simulate := func(limit uint64) (*phases.Receipt, error) {
		run.GasLimit = limit
		return in.Simulate(ctx, &run)
	}
	rc, err := simulate(largest)
	if err != nil || rc.Err() != nil {
		return rc, 0, err
	}
	// The smallest sufficient limit lies in [used, largest]: double from
	// the gas used until a run is accepted, then halve the gap.
	lo, hi := rc.Gas.Total(), largest // lo-1 fails (or is below used), hi passes
	for try := lo; try < hi; try = min(hi, 2*try) {
		r, err := simulate(try)
		if err != nil {
			return nil, 0, err
		}
		if r.Err() == nil {
			hi, rc = try, r
			break
		}
		lo = try + 1
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, err := simulate(mid)
		if err != nil {
			return nil, 0, err
		}
		if r.Err() == nil {
			hi, rc = mid, r
		} else {
			lo = mid + 1
		}
	}
	return rc, min(largest, hi+(hi*GasMargin+99)/100), nil
}

// largestGasLimit is the largest gas limit admission lets tx ask for.
func (in *Instance) largestGasLimit(tx *phases.Tx) (uint64, error) {
	limit := min(uint64(phases.MaxGasLimit), in.cfg.MaxBlockGas)
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
