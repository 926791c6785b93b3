package fractal

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// executeBlock runs txs through phases 1–3 against view, after the shielded
// pool's block sh (begun on view) admitted them: a shielded transaction whose proof, anchor, nullifiers
// or fee the pool refuses gets a refused receipt and does not run, so no
// other transaction of the block sees its effects. It hands every outcome to
// emit in block order, as soon as it is final (phases.ExecuteBlockFunc), so
// the caller commits while later transactions run; sh then commits the
// admitted ones' nullifiers and commitments (package shielded).
func (in *Instance) executeBlock(view *badger.Txn, sh *shielded.Block, txs []*phases.Tx, emit func(i int, o *phases.Outcome) error) error {
	errs := sh.Admit(badgerdb.KV{Txn: view}, txs)
	run := make([]*phases.Tx, 0, len(txs))
	var pos []int // the index in txs of each of run
	for i, tx := range txs {
		if errs[i] == nil {
			run, pos = append(run, tx), append(pos, i)
		}
	}
	next := 0 // the first index of txs not yet emitted
	// emitUpTo emits the pool's refusals before index end.
	emitUpTo := func(end int) error {
		for ; next < end; next++ {
			rc := phases.Receipt{TxID: txs[next].ID(), Status: phases.Refused, Phase: phases.PhaseAdmission, Reason: errs[next].Error()}
			if err := emit(next, &phases.Outcome{Receipt: rc}); err != nil {
				return err
			}
		}
		return nil
	}
	emitRun := func(k int, o *phases.Outcome) error {
		if err := emitUpTo(pos[k]); err != nil {
			return err
		}
		next++
		return emit(pos[k], o)
	}
	if in.cfg.Serial {
		outs, err := phases.ExecuteSerial(snapshot{view}, in, in.pool, run)
		for k := 0; err == nil && k < len(outs); k++ {
			err = emitRun(k, outs[k])
		}
		if err != nil {
			return err
		}
	} else if err := phases.ExecuteBlockFunc(snapshot{view}, in, in.pool, run, emitRun); err != nil {
		return err
	}
	return emitUpTo(len(txs))
}

// replayShielded re-runs the shielded pool on a replay store for the
// committed transactions of b: each must be admitted again (proof, anchor,
// nullifiers), and the commitment-tree root after them must be the block's.
func replayShielded(p *shielded.Pool, txn *badger.Txn, b *chain.Block, txs []*phases.Tx) error {
	s := badgerdb.KV{Txn: txn}
	sh, err := p.Begin(s)
	if err != nil {
		return err
	}
	for i, err := range sh.Admit(s, txs) {
		if err != nil {
			return &VerifyError{Kind: "transaction", Height: b.Height, Tx: i, TxID: txs[i].ID(), Detail: "refused on replay: " + err.Error()}
		}
	}
	for _, tx := range txs {
		if err := sh.Commit(s, tx, b.Height); err != nil {
			return err
		}
	}
	root, err := sh.Finish(s)
	if err != nil {
		return err
	}
	if root != b.CommitmentRoot {
		return &VerifyError{Kind: "root", Height: b.Height, Tx: -1,
			Detail: fmt.Sprintf("block says commitment-tree root %x, the replay gives %x", b.CommitmentRoot[:8], root[:8])}
	}
	return nil
}
