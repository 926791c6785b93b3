package rpc

import (
	"context"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// A Backend is what the service serves from: a solo node (*node.Node),
// which orders and seals blocks itself, or a validator of a validator-set
// instance (package fractal/validator/gateway), whose blocks come from its
// network's consensus. Reads go to the instance; writes, waits and live
// events go through the backend (decision 137).
type Backend interface {
	// Instance is the instance, for reading.
	Instance() *fractal.Instance
	Config() node.Config
	// Head is the last block the backend announced.
	Head() *chain.Block
	QueueDepth() int
	Submit(ctx context.Context, tx *phases.Tx) (notes.Hash, error)
	SubmitAndWait(ctx context.Context, tx *phases.Tx, wait time.Duration) (notes.Hash, node.Result, error)
	// SubmitBatch admits txs together and in order, each as Submit would,
	// and with wait > 0 waits for their receipts as SubmitAndWait does.
	SubmitBatch(ctx context.Context, txs []*phases.Tx, wait time.Duration) []node.Submitted
	Refused(id notes.Hash) (*phases.Receipt, bool)
	Simulate(ctx context.Context, tx *phases.Tx, allowUnsigned bool) (*phases.Receipt, uint64, error)
	EstimateGas(ctx context.Context, tx *phases.Tx) (*fractal.GasEstimate, error)
	Deploy(src []byte) (notes.Hash, error)
	SubmitEncrypted(raw []byte) ([32]byte, error)
	SubmitShares(raw []byte) (*fractal.EncryptedStatus, error)
	AcquireStream() (release func(), err error)
	Subscribe(wantNotes bool) *node.Subscription
	Unsubscribe(*node.Subscription)
	// Certificate returns what certifies the state after the instance's
	// block at height beside the block itself: nil for a signed block, the
	// certificate of the validators' commit on a validator set (it may wait
	// for the next consensus block, within ctx).
	Certificate(ctx context.Context, height uint64) ([]byte, error)
	// Ready says whether the backend serves: nil, or why not.
	Ready() error
}

var _ Backend = (*node.Node)(nil)
