package wallet

import (
	"context"
	"time"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/zk"
)

// Sent is what one of the Send methods did.
type Sent struct {
	TxID    notes.Hash
	Receipt *phases.Receipt
	Block   *chain.Block  // the block that committed it; nil when refused
	Proving time.Duration // how long building and proving the transaction took
}

// Instance is what sending through an instance needs: its chain to sync
// from, its notes to pick inputs from, and a way to deploy the pool's
// predicate, submit a transaction and learn its outcome. A
// *fractal.Instance is one; so is a client of a node.
type Instance interface {
	Chain
	Notes(p notes.Pattern) ([]*notes.Note, error)
	Deploy(src []byte) (notes.Hash, error)
	Submit(tx *phases.Tx) (notes.Hash, error)
	// SealFor returns the receipt of the submitted transaction id with the
	// block that committed it (nil when refused), once a block decided it.
	SealFor(ctx context.Context, id notes.Hash) (*phases.Receipt, *chain.Block, error)
}

// Progress reports the long steps of a send; either function may be nil.
type Progress struct {
	Sync  func(done, total uint64) // after each block a sync scans
	Prove func(finished bool)      // as proving starts, and once it ended
}

// SendShield is Shield through an instance: it picks signer's notes of tok
// on in (PickTokenNotes) to shield amount for to, then runs send.
func (w *Wallet) SendShield(ctx context.Context, in Instance, pk *zk.Keys, tok Token, amount uint64, signer keys.PrivateKey, to Address, pr Progress) (*Sent, error) {
	return w.send(ctx, in, pr, func(ctx context.Context) (*phases.Tx, error) {
		all, err := in.Notes(TokenNotes(tok, signer.Public()))
		if err != nil {
			return nil, err
		}
		picked, err := PickTokenNotes(all, tok, signer.Public(), amount)
		if err != nil {
			return nil, err
		}
		return w.Shield(ctx, pk, tok, amount, picked, signer, to)
	})
}

// SendTransfer is Transfer through an instance; see send.
func (w *Wallet) SendTransfer(ctx context.Context, in Instance, pk *zk.Keys, tok Token, amount uint64, to Address, pr Progress) (*Sent, error) {
	return w.send(ctx, in, pr, func(ctx context.Context) (*phases.Tx, error) {
		return w.Transfer(ctx, pk, tok, amount, to)
	})
}

// SendUnshield is Unshield through an instance; see send.
func (w *Wallet) SendUnshield(ctx context.Context, in Instance, pk *zk.Keys, tok Token, amount uint64, recipient keys.PublicKey, recipientOwner notes.Hash, pr Progress) (*Sent, error) {
	return w.send(ctx, in, pr, func(ctx context.Context) (*phases.Tx, error) {
		return w.Unshield(ctx, pk, tok, amount, recipient, recipientOwner)
	})
}

// send runs one shielded transaction through in: it deploys the pool
// notes' owner predicate (idempotent; phase 3 runs it), syncs the wallet
// (its tree root is the proof's anchor), builds and proves the transaction
// with build, submits it, waits for the block that decides it (SealFor) and, when
// it was accepted, syncs again so the wallet holds its change. A refused
// transaction is no error: its receipt says why, and nothing of it is
// stored. ctx is checked between the steps and before proving.
func (w *Wallet) send(ctx context.Context, in Instance, pr Progress, build func(context.Context) (*phases.Tx, error)) (*Sent, error) {
	if _, err := in.Deploy(shielded.PoolPredicate); err != nil {
		return nil, err
	}
	if _, err := w.Sync(in, pr.Sync); err != nil {
		return nil, err
	}
	if pr.Prove != nil {
		pr.Prove(false)
	}
	start := time.Now()
	tx, err := build(ctx)
	proving := time.Since(start)
	if pr.Prove != nil {
		pr.Prove(true)
	}
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, err := in.Submit(tx)
	if err != nil {
		return nil, err
	}
	rc, b, err := in.SealFor(ctx, id)
	if err != nil {
		return nil, err
	}
	sent := &Sent{TxID: id, Receipt: rc, Block: b, Proving: proving}
	if rc.Status != phases.Accepted {
		return sent, nil
	}
	if _, err := w.Sync(in, pr.Sync); err != nil {
		return nil, err
	}
	return sent, nil
}
