package fractal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// ImportGas is the gas limit of the import transactions ImportTx builds:
// the note's application and owner predicates run within it.
const ImportGas = 1_000_000

// ID and VerifyImport make the instance a phases.Transfers host.
var _ phases.Transfers = (*Instance)(nil)

// VerifyImport checks an import claim completely and returns what it
// proves: the export is addressed to this instance, its source is in the
// trust file, the manifest is of that source and signed by a key the trust
// file names for it, and the inclusion proof shows the record's outbox entry
// in the manifest's final state root. The error is the refusal reason.
func (in *Instance) VerifyImport(raw []byte) (*phases.Import, error) {
	c, err := DecodeClaim(raw)
	if err != nil {
		return nil, err
	}
	rec, m := c.Record, c.Manifest
	if rec.To != in.id {
		return nil, fmt.Errorf("export %x is addressed to instance %x, not this one", rec.ID(), rec.To)
	}
	p, err := in.peer(rec.From)
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	if p == nil {
		return nil, fmt.Errorf("instance %x is not in the trust file (fractal peers add)", rec.From)
	}
	if m.Instance != rec.From {
		return nil, fmt.Errorf("the manifest is of instance %x, not of the export's source %x", m.Instance, rec.From)
	}
	if !slices.Contains(p.Keys, keys.PublicKey(m.Executor)) {
		return nil, fmt.Errorf("the manifest is signed by %s, a key the trust file does not name for instance %x", keys.PublicKey(m.Executor), rec.From)
	}
	if err := VerifyBlock(m); err != nil {
		return nil, fmt.Errorf("the manifest's signature does not verify")
	}
	got, err := statetree.ProvenValue(m.StateRoot, outboxKey(rec.TxID, rec.Index), c.Proof)
	if err != nil {
		return nil, fmt.Errorf("the inclusion proof does not verify against the manifest of height %d: %v", m.Height, err)
	}
	if got == nil {
		return nil, fmt.Errorf("export %x is not in instance %x's state at height %d: not yet covered by a signed manifest", rec.ID(), rec.From, m.Height)
	}
	if *got != outboxValue(rec.To, &rec.Note) {
		return nil, fmt.Errorf("the export record differs from the one instance %x committed", rec.From)
	}
	return &phases.Import{From: rec.From, ExportID: rec.ID(), Exported: rec.Note}, nil
}

// Imported implements phases.ImportIndex over a storage snapshot.
func (s snapshot) Imported(id notes.Hash) (bool, error) {
	_, err := s.txn.Get(hashKey(prefixImportIx, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fractal: import index: %w", err)
	}
	return true, nil
}

// Imported reports whether the export named id was imported here.
func (in *Instance) Imported(id [32]byte) (bool, error) {
	var done bool
	err := in.db.View(func(txn *badger.Txn) (err error) {
		done, err = snapshot{txn}.Imported(id)
		return err
	})
	return done, err
}

// ImportTx builds the import transaction of a claim, for signer to sign:
// no code, the claim as extradata after phases.ImportMagic, and the new
// note's exact state key as its only write constraint (so two imports of
// one export conflict and run in order).
func ImportTx(c *Claim, signer keys.PublicKey) *phases.Tx {
	n := c.Record.Note
	n.Provenance = append([][]byte{append([]byte(nil), c.Record.From[:]...)}, n.Provenance...)
	return &phases.Tx{
		GasLimit:  ImportGas,
		Write:     notes.ConstraintSet{notes.ExactPattern(n.StateKey())},
		Extradata: append([]byte(phases.ImportMagic), c.Encode()...),
		Signers:   []keys.PublicKey{signer},
	}
}

// ImportClaim imports one claim given as its encoding (a claim file, which
// may come from anywhere): it refuses bytes that do not decode and an export
// already imported here, then queues the import transaction signed by
// signer, seals, and returns its receipt with the block that committed it
// (nil when the import was refused; the receipt says why and nothing is
// stored).
func (in *Instance) ImportClaim(raw []byte, signer keys.PrivateKey) (*phases.Receipt, *Block, error) {
	c, err := DecodeClaim(raw)
	if err != nil {
		return nil, nil, err
	}
	id := c.Record.ID()
	done, err := in.Imported(id)
	if err != nil {
		return nil, nil, fmt.Errorf("fractal: import: %w", err)
	}
	if done {
		return nil, nil, fmt.Errorf("fractal: import: export %x was already imported", id)
	}
	tx := ImportTx(c, signer.Public())
	if err := tx.Sign(rand.Reader, signer); err != nil {
		return nil, nil, fmt.Errorf("fractal: import: %w", err)
	}
	txid, err := in.Submit(tx)
	if err != nil {
		return nil, nil, fmt.Errorf("fractal: import: %w", err)
	}
	// Others' transactions queued before it may fill a block first.
	rc, b, err := in.SealFor(context.Background(), txid)
	if err != nil {
		return nil, nil, fmt.Errorf("fractal: import: %w", err)
	}
	return rc, b, nil
}
