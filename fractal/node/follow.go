package node

import (
	"context"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// A node whose blocks are made elsewhere — a validator of a validator-set
// instance, whose blocks come from its network's consensus — serves the
// same API from the same Node: it is started and stopped as a solo node
// (its seal loop finds nothing queued), its submissions go to the
// consensus engine's mempool instead (package fractal/validator/gateway),
// and each committed block is announced with Announce, so that waiting
// callers, Watch and CompactBlocks streams and the refusal memory work as
// on a solo node (decision 137).

// Precheck refuses, with the kind and reason a solo node's Submit gives, a
// transaction that is over max_tx_gas, malformed or oversize, a resend of
// one a recent block refused in lookup while its lookup still refuses, or
// one queued or executed already in this instance.
func (n *Node) Precheck(tx *phases.Tx) error {
	id := tx.ID()
	if err := n.overGas(tx); err != nil {
		return err
	}
	if err := precheck(tx, n.in.Config().MaxTxBytes); err != nil {
		return err
	}
	if err := n.resent(tx, id); err != nil {
		return err
	}
	st, h, err := n.in.TxState(id)
	switch {
	case err != nil:
		return &Error{Kind: Unavailable, Err: err}
	case st == fractal.TxQueued:
		return queued(id)
	case st == fractal.TxCommitted:
		return executed(id, h)
	}
	return nil
}

// AwaitReceipt registers a wait for the receipt of transaction id: hand the
// transaction over, then call wait; call release when done.
func (n *Node) AwaitReceipt(id notes.Hash) (wait func(ctx context.Context, d time.Duration) Result, release func()) {
	ch := n.waiters.add(id)
	return func(ctx context.Context, d time.Duration) Result { return n.wait(ctx, ch, d) },
		func() { n.waiters.remove(id, ch) }
}

// WantsNotes reports whether a stream wants note contents with the next
// announcement: take a Snapshot before the block commits and pass it to
// Announce.
func (n *Node) WantsNotes() bool { return n.hub.wantsNotes() }

// Announce tells waiting callers and streams what a committed block did:
// s is the block (nil when none was made) and the receipts, before (may be
// nil) the snapshot taken before it committed, for the contents of the
// notes it spent.
func (n *Node) Announce(s *fractal.Sealed, before *fractal.Snapshot) *SealEvent {
	ev := &SealEvent{Height: n.Head().Height, Block: s.Block, Receipts: s.Receipts, Encrypted: s.Encrypted}
	if s.Block != nil {
		ev.Height = s.Block.Height
		n.head.Store(s.Block)
	}
	if before != nil {
		ev.Notes = n.noteContents(before, s.Receipts)
	}
	n.commits.Add(1) // the committed state changed: a resend's lookup runs again
	for _, rc := range s.Receipts {
		if rc.Status != phases.Accepted {
			n.refused.add(rc)
		}
	}
	n.waiters.deliver(ev.Height, s.Receipts)
	n.hub.publish(ev)
	return ev
}

// Certificate is what certifies the state after block height beside the
// block itself: nothing on a solo instance, whose blocks carry their
// executor's signature.
func (n *Node) Certificate(context.Context, uint64) ([]byte, error) { return nil, nil }
