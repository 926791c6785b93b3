package fractal

import (
	"fmt"

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

// replayShielded re-runs the shielded pool on a replay store for the
// committed transactions of b: each must be admitted again (proof, anchor,
// nullifiers), and the commitment-tree root after them must be the block's.
func replayShielded(p *shielded.Pool, txn *badger.Txn, b *Block, txs []*phases.Tx) error {
	sh, err := p.Begin(txn)
	if err != nil {
		return err
	}
	for i, err := range sh.Admit(txn, txs) {
		if err != nil {
			return &VerifyError{Kind: "transaction", Height: b.Height, Tx: i, TxID: txs[i].ID(), Detail: "refused on replay: " + err.Error()}
		}
	}
	for _, tx := range txs {
		if err := sh.Commit(txn, tx, b.Height); err != nil {
			return err
		}
	}
	root, err := sh.Finish(txn)
	if err != nil {
		return err
	}
	if root != b.CommitmentRoot {
		return &VerifyError{Kind: "root", Height: b.Height, Tx: -1,
			Detail: fmt.Sprintf("block says commitment-tree root %x, the replay gives %x", b.CommitmentRoot[:8], root[:8])}
	}
	return nil
}
