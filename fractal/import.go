package fractal

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// ID and VerifyImport make the instance a phases.Transfers host.
var _ phases.Transfers = (*Instance)(nil)

// VerifyImport checks an import claim completely and returns what it
// proves: the export is addressed to this instance, its source is in the
// trust file, and chain.VerifyClaim accepts it with the keys the trust file
// names for the source. The error is the refusal reason.
func (in *Instance) VerifyImport(raw []byte) (*phases.Import, error) {
	c, err := chain.DecodeClaim(raw)
	if err != nil {
		return nil, err
	}
	var trusted []keys.PublicKey
	if from := c.Record.From; c.Record.To == in.id { // else VerifyClaim names the destination
		p, err := in.peer(from)
		if err != nil {
			return nil, fmt.Errorf("trust file: %w", err)
		}
		if p == nil {
			return nil, fmt.Errorf("instance %x is not in the trust file (fractal peers add)", from)
		}
		trusted = p.Keys
	}
	return chain.VerifyClaim(c, in.id, trusted)
}

// Imported reports whether the export named id was imported here.
func (in *Instance) Imported(id [32]byte) (bool, error) {
	var done bool
	err := in.db.View(func(txn *badger.Txn) (err error) {
		done, err = snapshot{badgerdb.KV{Txn: txn}}.Imported(id)
		return err
	})
	return done, err
}

// ImportClaim imports one claim given as its encoding (a claim file, which
// may come from anywhere): it refuses bytes that do not decode and an export
// already imported here, then queues the import transaction signed by
// signer, seals, and returns its receipt with the block that committed it
// (nil when the import was refused; the receipt says why and nothing is
// stored).
func (in *Instance) ImportClaim(ctx context.Context, raw []byte, signer keys.PrivateKey) (*phases.Receipt, *chain.Block, error) {
	c, err := chain.DecodeClaim(raw)
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
	tx := chain.ImportTx(c, signer.Public())
	if err := tx.Sign(rand.Reader, signer); err != nil {
		return nil, nil, fmt.Errorf("fractal: import: %w", err)
	}
	txid, err := in.Submit(tx)
	if err != nil {
		return nil, nil, fmt.Errorf("fractal: import: %w", err)
	}
	// Others' transactions queued before it may fill a block first.
	rc, b, err := in.SealFor(ctx, txid)
	if err != nil {
		return nil, nil, fmt.Errorf("fractal: import: %w", err)
	}
	return rc, b, nil
}
