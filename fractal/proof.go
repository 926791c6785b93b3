package fractal

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
)

// Prove returns the live note at k (or its absence) with a proof against
// the head block's state root.
func (in *Instance) Prove(k notes.StateKey) (*chain.QueryProof, error) {
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("fractal: prove: %w", err)
	}
	qp := &chain.QueryProof{Key: k}
	err := in.db.View(func(txn *badger.Txn) error {
		h, err := headHeight(txn)
		if err != nil {
			return err
		}
		if qp.Block, err = in.blockAt(txn, h); err != nil {
			return err
		}
		view := badgerdb.KV{Txn: txn}
		if qp.Note, err = (snapshot{view}).Get(k); err != nil {
			return err
		}
		if qp.Proof, err = tree.Prove(view, qp.Block.StateRoot, chain.TreeKey(k)); err != nil {
			return err
		}
		// The store's note and the tree must agree; a proof of anything
		// else would be refused by every checker.
		_, err = qp.Statement()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: prove %s: %w", k, err)
	}
	return qp, nil
}
