// Package gateway serves the fractal.v1 API on a validator of a
// validator-set instance: the same service (package fractal/node/rpc) as
// on a solo node, over a backend whose writes go to CometBFT's mempool
// (the application's CheckTx) instead of the instance's queue, whose live
// events come from the blocks the validators' consensus commits, and whose
// proofs and claims carry the certificate of the validators' commit
// (decisions 123 and 137). Reads come from the instance, as on a solo node.
package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/cometbft/cometbft/mempool"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/rpc"
	"github.com/fractalvm/fractal/fractal/node/serve"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// Node is a validator served through the API: a node.Node over the
// validator's instance (its seal loop finds nothing to seal: the instance
// refuses local writes) whose submissions go to the validator's mempool.
type Node struct {
	*node.Node
	v       *validator.Node
	started bool

	// mu guards before: a snapshot of the state after the last block
	// announced, kept while streams want note contents, for the contents
	// of the notes the next block spends.
	mu     sync.Mutex
	before *fractal.Snapshot
}

var _ rpc.Backend = (*Node)(nil)

// Opener is serve.Run's way into a validator's home: it runs the
// validator with o and serves the API beside it; other homes it leaves to
// serve (nil, nil).
func Opener(o validator.Options) serve.Opener {
	return func(home string, cfg node.Config, log *slog.Logger, m *node.Metrics) (serve.Backend, error) {
		if !validator.IsHome(home) {
			return nil, nil
		}
		n, err := Open(home, cfg, log, m, o)
		if err != nil {
			return nil, err // not a typed nil
		}
		return n, nil
	}
}

// Open opens the validator in home (validator.Open, with o) and the node
// serving it. Start it, Stop it once the API took its last call, then
// Close it (also when it never started).
func Open(home string, cfg node.Config, log *slog.Logger, m *node.Metrics, o validator.Options) (*Node, error) {
	g := &Node{}
	chained := o.OnCommit
	o.OnCommit = func(c abci.Committed) {
		g.committed(c)
		if chained != nil {
			chained(c)
		}
	}
	v, err := validator.Open(home, o)
	if err != nil {
		return nil, err
	}
	// Blocks CometBFT's handshake replayed in Open are in the store, which
	// node.New reads its head from; the ones after come through committed.
	n, err := node.New(v.Instance(), cfg, log, m)
	if err != nil {
		v.Stop()
		return nil, err
	}
	g.Node, g.v = n, v
	return g, nil
}

// Start starts the node's loops and the validator (CometBFT's P2P, RPC
// and consensus).
func (g *Node) Start() error {
	if err := g.v.Start(); err != nil {
		return err
	}
	g.Node.Start()
	g.started = true
	return nil
}

// Stop stops the node's loops (the validator goes on until Close).
func (g *Node) Stop() {
	if g.started {
		g.Node.Stop()
	}
}

// Close stops the validator and closes the instance.
func (g *Node) Close() error {
	err := g.v.Stop()
	g.mu.Lock()
	if g.before != nil {
		g.before.Close()
		g.before = nil
	}
	g.mu.Unlock()
	return err
}

// Failed receives the error that stopped the validator's part in
// consensus (validator.Node.Failed).
func (g *Node) Failed() <-chan error { return g.v.Failed() }

// committed announces a block the validators committed, from the
// application's Commit (before the node exists, during CometBFT's
// handshake, there is no one to tell).
func (g *Node) committed(c abci.Committed) {
	if g.Node == nil || c.Sealed == nil || (c.Sealed.Block == nil && len(c.Sealed.Receipts) == 0 && len(c.Unrun) == 0) {
		return
	}
	if len(c.Unrun) > 0 { // those who wait for them learn why they did not run
		s := *c.Sealed
		s.Receipts = append(slices.Clip(s.Receipts), c.Unrun...)
		c.Sealed = &s
	}
	g.ObserveSeal(c.Sealed, c.Took)
	g.mu.Lock()
	defer g.mu.Unlock()
	before := g.before
	g.before = nil
	if before == nil && g.WantsNotes() {
		// The first block since a stream wanted notes: the ones it created
		// are read now; the ones it spent are gone already.
		before = g.Instance().Snapshot()
	}
	g.Announce(c.Sealed, before)
	if before != nil {
		before.Close()
	}
	if g.WantsNotes() {
		g.before = g.Instance().Snapshot()
	}
}

// QueueDepth is the number of transactions in the validator's mempool.
func (g *Node) QueueDepth() int { return g.v.Comet().Mempool().Size() }

// Submit hands tx to the validator's mempool. It refuses first what a solo
// node refuses, with the same kind and reason (malformed, oversize,
// queued, executed, wrongly signed); then the application's CheckTx
// decides (its refusal is a failed precondition with its reason: an input
// gone, a spent nullifier, an unknown claim).
func (g *Node) Submit(ctx context.Context, tx *phases.Tx) (notes.Hash, error) {
	id := tx.ID()
	if err := g.Precheck(tx); err != nil {
		return id, err
	}
	if err := phases.VerifyAll([]*phases.Tx{tx})[0]; err != nil { // worded as the solo node's SubmitAll words it
		return id, &node.Error{Kind: node.Invalid, Err: fmt.Errorf("submit %x: %w", id[:8], err)}
	}
	return id, g.checkTx(ctx, tx.Encode(), "transaction", id, node.Precondition)
}

// checkTx hands raw, the transaction or payload (what) id, to the
// mempool; refused names the kind of a refusal by the application.
func (g *Node) checkTx(ctx context.Context, raw []byte, what string, id notes.Hash, refused node.Kind) error {
	r, err := g.v.Submit(ctx, raw)
	var full mempool.ErrMempoolIsFull
	var large mempool.ErrTxTooLarge
	switch {
	case errors.Is(err, mempool.ErrTxInCache):
		return &node.Error{Kind: node.Exists, Err: fmt.Errorf("%s %x is already queued", what, id[:8])}
	case errors.As(err, &full):
		return &node.Error{Kind: node.Exhausted, Err: fmt.Errorf("mempool full (%d queued, max %d)", full.NumTxs, full.MaxTxs)}
	case errors.As(err, &large):
		return &node.Error{Kind: node.Invalid, Err: fmt.Errorf("transaction is %d bytes, limit %d", large.Actual, large.Max)}
	case err != nil:
		return &node.Error{Kind: node.Unavailable, Err: err}
	case r.Code != abci.CodeOK:
		return &node.Error{Kind: refused, Err: errors.New(r.Log)}
	}
	return nil
}

// SubmitAndWait submits tx and, when the mempool took it, waits for its
// receipt from the block that commits it, until ctx ends or wait passes.
func (g *Node) SubmitAndWait(ctx context.Context, tx *phases.Tx, wait time.Duration) (notes.Hash, node.Result, error) {
	await, release := g.AwaitReceipt(tx.ID())
	defer release()
	id, err := g.Submit(ctx, tx)
	if err != nil {
		return id, node.Result{}, err
	}
	return id, await(ctx, wait), nil
}

// SubmitBatch hands txs to the validator's mempool one after the other,
// in order, each as Submit does (a duplicate within txs is already
// queued), and with wait > 0 waits for their receipts as SubmitAndWait
// does. CometBFT's mempool takes transactions one CheckTx at a time: there
// is no group write to share.
func (g *Node) SubmitBatch(ctx context.Context, txs []*phases.Tx, wait time.Duration) []node.Submitted {
	return g.SubmitBatchWith(ctx, txs, wait, func(ctx context.Context, txs []*phases.Tx, _ []notes.Hash) []error {
		errs := make([]error, len(txs))
		for i, tx := range txs {
			_, errs[i] = g.Submit(ctx, tx)
		}
		return errs
	})
}

// Deploy hands src to the mempool as a deploy transaction and waits,
// within the node's receipt wait, until a committed block stored it: code
// reaches every validator through a block (decision 121).
func (g *Node) Deploy(src []byte) (notes.Hash, error) {
	h := notes.Hash(sha256.Sum256(src))
	if len(src) > chain.MaxCodeBytes {
		return h, &node.Error{Kind: node.Invalid, Err: fmt.Errorf("code is %d bytes, limit %d", len(src), chain.MaxCodeBytes)}
	}
	if _, err := g.Instance().Code(h); err == nil {
		return h, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(g.Config().MaxReceiptWait))
	defer cancel()
	err := g.checkTx(ctx, fractal.DeployTx(src), "transaction", h, node.Invalid)
	var ne *node.Error
	if errors.As(err, &ne) && ne.Kind == node.Exists { // handed in before, not yet committed
		err = nil
	}
	if err != nil {
		return h, err
	}
	// A block that only deploys makes no Fractal block and no event: the
	// store is looked at instead, a few times a consensus block.
	tick := time.NewTicker(deployPoll)
	defer tick.Stop()
	for {
		if _, err := g.Instance().Code(h); err == nil {
			return h, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return h, &node.Error{Kind: node.Unavailable, Err: fmt.Errorf("the deploy was admitted but not committed within %s: look for the code later", time.Duration(g.Config().MaxReceiptWait))}
		}
	}
}

// deployPoll is how often Deploy looks for the code it handed in.
const deployPoll = 50 * time.Millisecond

// SubmitEncrypted hands an encrypted transaction carrying payload (sealed
// to the validators' threshold key, fetched with GetThresholdKey) to the
// validator's mempool: a block fixes it into its batch and the next opens
// it with the validators' shares (decision 161). Without a threshold key
// it is a failed precondition; a payload that does not decode is invalid;
// one opened already exists, as on a solo node; the application's CheckTx
// refusal (another key or instance, a batch holding it already) is a
// failed precondition with its reason.
func (g *Node) SubmitEncrypted(payload []byte) ([32]byte, error) {
	id := sha256.Sum256(payload)
	if _, err := g.Instance().ThresholdKey(); errors.Is(err, fractal.ErrNoThresholdKey) {
		return id, &node.Error{Kind: node.Precondition, Err: errors.New("this validator set has no threshold key: its encrypted mempool is closed (fractal devnet --encrypted makes one)")}
	} else if err != nil {
		return id, err
	}
	if _, err := tfhe.DecodePayload(payload); err != nil {
		return id, &node.Error{Kind: node.Invalid, Err: fmt.Errorf("payload %x: %w", id[:8], err)}
	}
	if o, err := g.Instance().Outcome(id); err == nil { // the mempool's cache would only say "queued"
		return id, &node.Error{Kind: node.Exists, Err: fmt.Errorf("payload %x was in encrypted batch %d, which closed (fractal tfhe outcome tells how)", id[:8], o.Batch)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(g.Config().MaxReceiptWait))
	defer cancel()
	return id, g.checkTx(ctx, fractal.EncryptedTx(payload), "payload", id, node.Precondition)
}

// SubmitShares answers unimplemented: on a validator set the shares ride
// in the validators' vote extensions.
func (g *Node) SubmitShares([]byte) (*fractal.EncryptedStatus, error) {
	return nil, connect.NewError(connect.CodeUnimplemented,
		errors.New("the API takes no shares on a validator set: the validators' shares ride in their vote extensions (decision 161)"))
}

// Certificate returns the certificate of the validators' commit for the
// block at height (validator.Node.Certificate); not found in time, it is
// unavailable.
func (g *Node) Certificate(ctx context.Context, height uint64) ([]byte, error) {
	cert, err := g.v.Certificate(ctx, height)
	if err != nil {
		return nil, &node.Error{Kind: node.Unavailable, Err: fmt.Errorf("certificate of block %d: %w", height, err)}
	}
	return cert, nil
}
