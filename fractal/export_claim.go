package fractal

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
)

// ExportClaim returns the claim for one of this instance's exports,
// proven against the head block.
func (in *Instance) ExportClaim(rec *chain.ExportRecord) (*chain.Claim, error) {
	c := &chain.Claim{Record: rec}
	err := in.db.View(func(txn *badger.Txn) error {
		raw, err := getValue(txn, outboxStoreKey(rec.To, chain.OutboxKey(rec.TxID, rec.Index)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errors.New("no such export in the outbox")
		}
		if err != nil {
			return err
		}
		stored, err := storedExport(in.id, outboxStoreKey(rec.To, chain.OutboxKey(rec.TxID, rec.Index)), raw)
		if err != nil {
			return err
		}
		c.Record = stored
		h, err := headHeight(txn)
		if err != nil {
			return err
		}
		b, err := in.blockAt(txn, h)
		if err != nil {
			return err
		}
		b.TxIDs = nil
		c.Manifest = b
		c.Proof, err = tree.Prove(badgerdb.KV{Txn: txn}, b.StateRoot, chain.OutboxKey(rec.TxID, rec.Index))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: export claim %x: %w", rec.ID(), err)
	}
	return c, nil
}

// ClaimFor returns the claim for the export named id (as "fractal exports"
// lists it), proven against the head block: what a claim file holds.
func (in *Instance) ClaimFor(id [32]byte) (*chain.Claim, error) {
	recs, err := in.Exports(nil)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if rec.ID() == id {
			return in.ExportClaim(rec)
		}
	}
	return nil, fmt.Errorf("fractal: export claim: no export %x in this instance's outbox", id)
}
