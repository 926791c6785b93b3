package fractal

import (
	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// executeBlock runs txs through phases 1–3 against view, after the shielded
// pool admitted them: a shielded transaction whose proof, anchor, nullifiers
// or fee the pool refuses gets a refused receipt and does not run, so no
// other transaction of the block sees its effects. The returned pool block
// commits the admitted ones' nullifiers and commitments (package shielded).
func (in *Instance) executeBlock(view *badger.Txn, txs []*phases.Tx) (*shielded.Block, []*phases.Outcome, error) {
	sh, err := in.shielded.Begin(view)
	if err != nil {
		return nil, nil, err
	}
	errs := sh.Admit(view, txs)
	run := make([]*phases.Tx, 0, len(txs))
	for i, tx := range txs {
		if errs[i] == nil {
			run = append(run, tx)
		}
	}
	execute := phases.ExecuteBlock
	if in.cfg.Serial {
		execute = phases.ExecuteSerial
	}
	ran, err := execute(snapshot{view}, in, in.pool, run)
	if err != nil {
		return nil, nil, err
	}
	outs := make([]*phases.Outcome, len(txs))
	for i, tx := range txs {
		if errs[i] == nil {
			outs[i], ran = ran[0], ran[1:]
			continue
		}
		outs[i] = &phases.Outcome{Receipt: phases.Receipt{TxID: tx.ID(), Status: phases.Refused, Phase: phases.PhaseAdmission, Reason: errs[i].Error()}}
	}
	return sh, outs, nil
}
