package fractal

// Admission into a consensus engine's mempool (CometBFT's CheckTx, package
// fractal/abci): the Check stage on a raw transaction, plus what a mempool
// that is rechecked after every block needs to know (decision 122).

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// A Pending is a raw transaction a consensus mempool admitted, with what
// its admission learnt: the decoded transaction (its signatures checked
// and marked), or the code it deploys; and the inputs phase 1 named when
// it was admitted (none when its lookup found none yet: an input may come
// from a transaction still waiting).
type Pending struct {
	Tx       *phases.Tx  // nil for a deploy
	Deployed *notes.Hash // the code a deploy carries
	// Encrypted is the payload ID of an encrypted transaction
	// (encrypted_decided.go), nil for any other.
	Encrypted *[32]byte
	// DKG is the envelope of a DKG transaction (epochs_decided.go), nil
	// for any other.
	DKG    *dkg.Envelope
	inputs []notes.Note
	export *notes.Hash // the export an import consumes
}

// GasLimit is what the transaction may spend of a block's gas (0 for a
// deploy).
func (p *Pending) GasLimit() uint64 {
	if p.Tx == nil {
		return 0
	}
	return p.Tx.GasLimit
}

// CheckPending is the Check stage for a consensus mempool: raw is a code
// deploy, refused when its code does not compile, or a transaction,
// refused when it is over max_tx_bytes, does not decode, breaks the
// instance's limits, is not signed by each of its signers, was executed
// before, or, for a shielded one, when the pool refuses it now (proof,
// anchor, nullifiers), and for an import when its claim does not verify
// against the trust file or its export was imported. Its lookup then runs
// against the committed state; the inputs it names are kept for Recheck.
// It writes nothing. The error is the refusal; a failing store is an
// error too.
func (in *Instance) CheckPending(ctx context.Context, raw []byte) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, h, _, ok, err := deployed(raw); ok {
		if err != nil {
			return nil, fmt.Errorf("fractal: check deploy: %w", err)
		}
		return &Pending{Deployed: &h}, nil
	}
	if body, ok := encryptedPayload(raw); ok {
		return in.checkEncryptedPending(body)
	}
	if body, ok := dkgBody(raw); ok {
		return in.checkDKGPending(body)
	}
	tx, err := in.checkAlone(ctx, raw)
	if err != nil {
		return nil, err
	}
	tx.MarkVerified()
	p := &Pending{Tx: tx}
	// One read transaction for every check against the store: a
	// validator-set instance has no queue, so only the replay index.
	err = in.db.View(func(txn *badger.Txn) error {
		if err := checkExecuted(badgerdb.KV{Txn: txn}, tx.ID()); err != nil {
			return err
		}
		view := badgerdb.KV{Txn: txn}
		switch {
		case shielded.IsShielded(tx):
			sh, err := in.shielded.Begin(view)
			if err != nil {
				return err
			}
			if err := sh.Admit([]*phases.Tx{tx})[0]; err != nil {
				return err
			}
		case phases.IsImport(tx):
			c, err := chain.DecodeClaim(tx.Extradata[len(phases.ImportMagic):])
			if err != nil {
				return err
			}
			if _, err := in.VerifyImport(tx.Extradata[len(phases.ImportMagic):]); err != nil {
				return err
			}
			exp := c.Record.ID()
			p.export = &exp
		}
		return p.lookup(in, view)
	})
	if err != nil {
		id := tx.ID()
		return nil, fmt.Errorf("fractal: check %x: %w", id[:8], err)
	}
	return p, nil
}

// lookup runs p's phase 1 against view and keeps the inputs it names, or
// none when it refuses.
func (p *Pending) lookup(in *Instance, view badgerdb.KV) error {
	inputs, refused, err := phases.Inputs(snapshot{view}, in, in.pool, p.Tx)
	if err != nil {
		return err
	}
	if refused == nil {
		p.inputs = inputs
	}
	return nil
}

// LookupRefusal runs tx's phase 1 (lookup) against the committed state and
// returns the reason it refuses, or "" when it names live inputs. It writes
// nothing. A node asks it only of a resend of a transaction a recent block
// refused in lookup (decision 170), so that admission reads no store for
// any other.
func (in *Instance) LookupRefusal(tx *phases.Tx) (string, error) {
	var reason string
	err := in.db.View(func(txn *badger.Txn) error {
		_, refused, err := phases.Inputs(snapshot{badgerdb.KV{Txn: txn}}, in, in.pool, tx)
		if refused != nil {
			reason = refused.Receipt.Reason
		}
		return err
	})
	if err != nil {
		id := tx.ID()
		return "", fmt.Errorf("fractal: lookup %x: %w", id[:8], err)
	}
	return reason, nil
}

// Recheck is what a consensus mempool runs on every waiting transaction
// after each block, against the committed state: cheap, no signature or
// proof checked again. It refuses a transaction executed since (a
// replay), a shielded one whose nullifier was spent or whose anchor aged
// out, an import whose export was imported, and one whose inputs are gone:
// when a note its lookup named is no longer live, the lookup runs again
// and the transaction stays only if it names live inputs now. A deploy
// stays.
func (in *Instance) Recheck(ctx context.Context, p *Pending) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.DKG != nil { // its window may have closed, or a block recorded it
		_, err := in.checkDKGPending(p.DKG.Encode())
		return err
	}
	if p.Tx == nil {
		return nil
	}
	id := p.Tx.ID()
	err := in.db.View(func(txn *badger.Txn) error {
		view := badgerdb.KV{Txn: txn}
		if err := checkExecuted(badgerdb.KV{Txn: txn}, id); err != nil {
			return err
		}
		if shielded.IsShielded(p.Tx) {
			if err := in.shielded.Recheck(view, p.Tx); err != nil {
				return err
			}
		}
		if p.export != nil {
			done, err := snapshot{view}.Imported(*p.export)
			if err != nil {
				return err
			}
			if done {
				return fmt.Errorf("export %x was imported", p.export[:8])
			}
		}
		gone, err := inputsGone(view, p.inputs)
		if err != nil || !gone {
			return err
		}
		inputs, refused, err := phases.Inputs(snapshot{view}, in, in.pool, p.Tx)
		if err != nil {
			return err
		}
		if refused != nil {
			return fmt.Errorf("its inputs are gone: %s", refused.Receipt.Reason)
		}
		p.inputs = inputs
		return nil
	})
	if err != nil {
		return fmt.Errorf("fractal: recheck %x: %w", id[:8], err)
	}
	return nil
}

// inputsGone reports whether a note of inputs is no longer live as it was.
func inputsGone(view badgerdb.KV, inputs []notes.Note) (bool, error) {
	for i := range inputs {
		live, err := snapshot{view}.Get(inputs[i].StateKey())
		if err != nil {
			return false, err
		}
		if live == nil || live.ID() != inputs[i].ID() {
			return true, nil
		}
	}
	return false, nil
}
