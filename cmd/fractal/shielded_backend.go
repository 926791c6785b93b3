package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
)

func init() {
	for _, c := range []*cobra.Command{shieldedSyncCmd, shieldedShieldCmd, shieldedTransferCmd, shieldedUnshieldCmd} {
		nodeFlag(c)
	}
}

// shieldedBackend is what the shielded verbs need of an instance: the pool
// predicate deployed, the blocks for the wallet, transparent token notes,
// and a transaction submitted and sealed. An instance opened from --home
// gives it, or a node through its API.
type shieldedBackend interface {
	deployPool() error
	source() wallet.Source
	notes(p notes.Pattern) ([]*notes.Note, error)
	submit(tx *phases.Tx) (receiptView, error)
}

// withShielded runs f on the node cmd talks to, or on the instance in
// --home when none.
func withShielded(cmd *cobra.Command, f func(shieldedBackend) error) error {
	n, err := nodeOf(cmd)
	if err != nil {
		return err
	}
	if n == nil {
		return withInstance(func(in *fractal.Instance) error { return f(localShielded{in}) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	return f(nodeShielded{ctx, n})
}

type localShielded struct{ in *fractal.Instance }

func (l localShielded) deployPool() error {
	_, err := l.in.Deploy(shielded.PoolPredicate)
	return err
}

func (l localShielded) source() wallet.Source { return wallet.Local(l.in) }

func (l localShielded) notes(p notes.Pattern) ([]*notes.Note, error) { return l.in.Notes(p) }

func (l localShielded) submit(tx *phases.Tx) (receiptView, error) {
	id, err := l.in.Submit(tx)
	if err != nil {
		return receiptView{}, err
	}
	rc, b, err := sealFor(l.in, id)
	if err != nil {
		return receiptView{}, err
	}
	return viewReceipt(l.in, rc, b), nil
}

type nodeShielded struct {
	ctx context.Context
	n   *nodeRef
}

func (r nodeShielded) deployPool() error {
	_, err := r.n.Deploy(r.ctx, shielded.PoolPredicate)
	return err
}

func (r nodeShielded) source() wallet.Source { return r.n.WalletSource(r.ctx) }

func (r nodeShielded) notes(p notes.Pattern) ([]*notes.Note, error) {
	return r.n.Notes(r.ctx, p.String())
}

func (r nodeShielded) submit(tx *phases.Tx) (receiptView, error) {
	out, err := r.n.Submit(r.ctx, tx, true)
	if err != nil {
		return receiptView{}, err
	}
	var b *fractal.Block
	switch out.State {
	case v1.TransactionState_TRANSACTION_STATE_QUEUED:
		return receiptView{}, fmt.Errorf("transaction %x is queued on the node and not sealed yet: fractal receipt %x", out.ID[:8], out.ID)
	case v1.TransactionState_TRANSACTION_STATE_COMMITTED:
		if b, err = r.n.Block(r.ctx, &out.Height); err != nil {
			return receiptView{}, err
		}
	}
	return viewReceipt(nodeExports{r.ctx, r.n}, out.Receipt, b), nil
}
