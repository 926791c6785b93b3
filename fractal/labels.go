package fractal

// Labelled outputs (decision 144): the label record of every committed
// transaction that labelled outputs, under prefixLabels, which follow
// reads through the snapshot (phases.LabelIndex). The records are also in
// the state tree (chain.EffectChanges), so verify rebuilds and compares
// them, and a witness proves what follow read.

import (
	"fmt"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Labels implements phases.LabelIndex: the label record stored for txid
// in the snapshot's store, nil when there is none. A block's snapshot is
// the store before it, so follow sees earlier blocks only.
func (s snapshot) Labels(txid notes.Hash) ([]phases.Labelled, error) {
	raw, ok, err := s.r.Get(hashKey(prefixLabels, txid))
	if err != nil || !ok {
		return nil, err
	}
	ls, err := chain.DecodeLabels(raw)
	if err != nil {
		return nil, fmt.Errorf("fractal: labels of %x: %w", txid[:8], err)
	}
	return ls, nil
}

// labelsPart is the label index's part in a block: the record of each
// accepted transaction that labelled outputs.
type labelsPart struct {
	ids     []notes.Hash
	records [][]byte
}

func (l *labelsPart) admit(txs []*phases.Tx) []error { return make([]error, len(txs)) }

func (l *labelsPart) apply(r *TxResult) error {
	if ls := r.Outcome.Labelled(); len(ls) > 0 {
		l.ids = append(l.ids, r.Outcome.Receipt.TxID)
		l.records = append(l.records, chain.EncodeLabels(ls))
	}
	return nil
}

func (l *labelsPart) finish(*chain.Block) {}

func (l *labelsPart) write(w kv.Store, _ *Execution) error {
	for i, id := range l.ids {
		if err := w.Set(hashKey(prefixLabels, id), l.records[i]); err != nil {
			return err
		}
	}
	return nil
}
