package fractal

import (
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// A blockPart is one component's part in one block. A component is a part
// of the instance that keeps state of its own under storage prefixes of its
// own (layout.go lists every prefix and its owner) and takes part in every
// block, in the shape of shielded.Block: begun for the block (from the
// committed state), it admits the block's transactions before they run,
// applies each result in block order and finishes the manifest's fields it
// owns, all in Execute and in memory; Commit then writes what it changed.
// The components: the shielded pool, cross-instance transfers, labelled
// outputs, the block reward, the per-key limit's counts (when it is on),
// and the mempool that held the block's transactions (the queue or an
// encrypted batch).
type blockPart interface {
	// admit returns one error per transaction: non-nil refuses it in
	// admission, before phases 1–3 (it does not run).
	admit(txs []*phases.Tx) []error
	// apply takes every result, accepted or refused, in block order.
	apply(r *TxResult) error
	// finish fills the manifest fields the component owns, once a
	// transaction was accepted (b is the block being made).
	finish(b *chain.Block)
	// write stores what the block changed in the component into the
	// block's write; it may also complete x's result (receipts, status).
	write(w kv.Store, x *Execution) error
}

// beginParts begins every component's part in the block p proposes,
// reading from view: the shielded pool, transfers, labels, the reward, the
// per-key counts, and p's mempool part.
func (in *Instance) beginParts(view kv.Reader, p *Proposal) ([]blockPart, error) {
	sh, err := in.shielded.Begin(view)
	if err != nil {
		return nil, err
	}
	parts := []blockPart{shieldedPart{sh}, &transfers{}, &labelsPart{}, rewardPart{}}
	if in.cfg.PerKeyLimit {
		parts = append(parts, &perKeyPart{seen: map[keys.PublicKey]bool{}})
	}
	if p.mempool != nil {
		parts = append(parts, p.mempool)
	}
	return parts, nil
}

// shieldedPart is the shielded pool's block (package shielded) as a
// blockPart: its proofs, anchors and nullifiers are checked at admission,
// and it owns the commitment root.
type shieldedPart struct{ *shielded.Block }

func (s shieldedPart) admit(txs []*phases.Tx) []error { return s.Admit(txs) }

func (s shieldedPart) apply(r *TxResult) error {
	if r.Outcome.Receipt.Status != phases.Accepted {
		return nil
	}
	return s.Apply(r.Tx)
}

func (s shieldedPart) finish(b *chain.Block) { b.CommitmentRoot = s.Root() }

func (s shieldedPart) write(w kv.Store, x *Execution) error { return s.Write(w, x.height) }
