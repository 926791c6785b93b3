// Package node runs an instance as a service: it admits submissions in
// batches (one durable write for many), seals a block every block time
// while work is queued (at once when a block's worth waits), tells waiting
// callers and event streams what each seal did, remembers recent refusals,
// and counts what it does for Prometheus.
//
// The API (package fractal/node/rpc) and the HTTP server (package
// fractal/node/serve) sit on top of it; decisions 113 and 115 say why it is
// shaped so.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Node is an open instance run as a service. Start its loops with Start,
// stop them with Stop, then Close it.
type Node struct {
	in  *fractal.Instance
	cfg Config
	log *slog.Logger
	m   *Metrics

	submits chan []*submission // groups, each admitted together and in order
	// qmu serializes writes to the queue (submissions) with the update of
	// its depth after each seal (settle), so that depth is exact between
	// them.
	qmu   sync.Mutex
	depth int // queued submissions, plain and encrypted; guarded by qmu
	queue atomic.Int64
	// flying counts the queued submissions in sealed blocks whose writes
	// have not landed (decision 186); landed counts those blocks not yet
	// announced.
	flying atomic.Int64
	landed sync.WaitGroup
	// sealing is held from a seal's SealNext until its transactions are
	// in flying, and by a recount of the depth (settle): lock order qmu,
	// sealing, then the instance's.
	sealing sync.Mutex
	kick    chan struct{} // a block's worth is queued: seal now
	dirty   atomic.Bool   // shares came in: a seal may open a batch

	waiters waiters
	refused *refusals
	// commits counts the commits announced (Announce); relookups shares
	// one resend's lookup among concurrent ones (resent).
	commits   atomic.Uint64
	relookups singleflight.Group
	hub       hub
	deploy    *bucket
	sims      chan struct{} // simulation slots
	streams   chan struct{} // stream slots

	// closing keeps submissions from being handed over once Stop began:
	// Submit hands over under its read lock, Stop sets stopped under its
	// write lock, so the submission loop answers everything handed over.
	closing sync.RWMutex
	stopped bool

	// lastEncrypted names the encrypted batch state the announcer last
	// reported (encryptedChanged); used by the announcer only.
	lastEncrypted string

	head      atomic.Pointer[chain.Block]
	sealErr   atomic.Pointer[error] // the last seal's failure, nil after a success
	stop      chan struct{}         // closed by Stop
	sealDone  chan struct{}         // closed when the seal loop returned
	batchDone chan struct{}         // closed when the submission loop returned
}

// New makes a node of an open instance; the node closes it (Close).
func New(in *fractal.Instance, cfg Config, log *slog.Logger, m *Metrics) (*Node, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	head, err := in.Head()
	if err != nil {
		return nil, err
	}
	in.SetMaxTxGas(cfg.MaxTxGas)
	// A solo node keeps its mempool in memory, logged (decision 181); a
	// validator's is CometBFT's.
	if in.Validators() == nil {
		if err := in.KeepQueueInMemory(cfg.MaxQueueBytes); err != nil {
			return nil, err
		}
	}
	depth, err := in.QueueDepth()
	if err != nil {
		return nil, fmt.Errorf("node: queue: %w", err)
	}
	n := &Node{
		in: in, cfg: cfg, log: log, m: m,
		submits: make(chan []*submission, cfg.SubmitBatch),
		depth:   depth,
		kick:    make(chan struct{}, 1),
		refused: newRefusals(cfg.RefusedReceipts),
		deploy:  newBucket(cfg.DeployBytesPerMinute, time.Minute),
		sims:    make(chan struct{}, cfg.SimulateConcurrency),
		streams: make(chan struct{}, cfg.MaxStreams),
		stop:    make(chan struct{}), sealDone: make(chan struct{}), batchDone: make(chan struct{}),
	}
	n.waiters.m = map[notes.Hash][]chan Result{}
	n.hub.subs = map[*Subscription]struct{}{}
	n.queue.Store(int64(depth))
	n.head.Store(head)
	m.observeHead(head.Height)
	m.depth = func() float64 { return float64(n.queue.Load()) }
	return n, nil
}

// Instance returns the instance, for reading.
func (n *Node) Instance() *fractal.Instance { return n.in }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Head returns the last sealed block.
func (n *Node) Head() *chain.Block { return n.head.Load() }

// QueueDepth returns the number of queued submissions, plain and encrypted.
func (n *Node) QueueDepth() int { return int(n.queue.Load()) }

// Ready reports whether the node is running and its last seal (if any)
// succeeded; the error says why not.
func (n *Node) Ready() error {
	select {
	case <-n.stop:
		return errors.New("stopping")
	default:
	}
	if p := n.sealErr.Load(); p != nil {
		return fmt.Errorf("the last seal failed: %w", *p)
	}
	return nil
}

// Start runs the submission and seal loops until Stop.
func (n *Node) Start() {
	go n.batchLoop()
	go n.sealLoop()
}

// Stop ends the seal loop once the block in progress (if any) is sealed,
// and the submission loop once the submissions already handed to it are
// admitted; waiting callers get their answer. Call it once, after the API
// stopped taking calls.
func (n *Node) Stop() {
	n.closing.Lock()
	n.stopped = true
	close(n.stop)
	n.closing.Unlock()
	<-n.sealDone
	<-n.batchDone
}

// Close closes the instance. Call it after Stop.
func (n *Node) Close() error { return n.in.Close() }

// Kind classifies a refusal for the API's error codes.
type Kind uint8

const (
	Invalid      Kind = iota + 1 // malformed or over a limit
	NotFound                     // unknown ID or height
	Exists                       // already queued or executed
	Exhausted                    // a full mempool, a busy node, a stream too far behind
	Precondition                 // the state does not allow it (no threshold key, no waiting batch)
	Unavailable                  // the node is stopping
)

// Error is a refusal of the node with its kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func refuse(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// errStopping answers calls that come in while the node stops.
var errStopping = &Error{Kind: Unavailable, Err: errors.New("the node is stopping")}

// Result is where a transaction stands after a wait.
type Result struct {
	State   fractal.TxState // TxQueued, TxCommitted, or TxUnknown for refused
	Refused bool
	Height  uint64          // the committing block (committed)
	Receipt *phases.Receipt // committed or refused
}

// Deploy stores Lua source in the code registry, within the node-wide
// deploy budget (DeployBytesPerMinute).
func (n *Node) Deploy(src []byte) (notes.Hash, error) {
	if len(src) > chain.MaxCodeBytes {
		return notes.Hash{}, refuse(Invalid, "code is %d bytes, limit %d", len(src), chain.MaxCodeBytes)
	}
	if !n.deploy.take(int64(len(src))) {
		return notes.Hash{}, refuse(Exhausted, "the node's deploy budget (%d bytes a minute) is spent; try again later", n.cfg.DeployBytesPerMinute)
	}
	h, err := n.in.Deploy(src)
	if err != nil {
		return h, &Error{Kind: Invalid, Err: err}
	}
	return h, nil
}

// Simulate runs tx through admission and phases 1–3 against the head
// state, committing nothing, within the node's simulation limits.
func (n *Node) Simulate(ctx context.Context, tx *phases.Tx, allowUnsigned bool) (*phases.Receipt, uint64, error) {
	if err := n.overGas(tx); err != nil { // as a submission is refused
		return nil, 0, err
	}
	if tx.GasLimit > n.cfg.SimulateGasLimit {
		return nil, 0, &Error{Kind: Precondition, Err: &fractal.GasCapError{
			Reason: fmt.Sprintf("gas limit %d exceeds the node's simulation limit (simulate_gas_limit %d)", tx.GasLimit, n.cfg.SimulateGasLimit)}}
	}
	release, err := n.acquireSimulation()
	if err != nil {
		return nil, 0, err
	}
	defer release()
	rc, h, err := n.in.Simulate(ctx, tx, allowUnsigned)
	if err != nil {
		return nil, 0, simulationError(err)
	}
	return rc, h, nil
}

// EstimateGas finds the gas limit to sign for tx, as fractal tx submit
// --gas auto does on a home folder (fractal.Instance.EstimateGas, decision
// 145), searching no higher than the node's simulation limit. The search's
// simulations take one of the node's simulation slots together; tx's own
// gas limit and signatures do not matter.
func (n *Node) EstimateGas(ctx context.Context, tx *phases.Tx) (*fractal.GasEstimate, error) {
	release, err := n.acquireSimulation()
	if err != nil {
		return nil, err
	}
	defer release()
	est, err := n.in.EstimateGas(ctx, tx, n.cfg.SimulateGasLimit)
	if err != nil {
		return nil, simulationError(err)
	}
	return est, nil
}

// acquireSimulation takes one of the node's simulation slots, or refuses
// when all are taken; release it with the returned function.
func (n *Node) acquireSimulation() (release func(), err error) {
	select {
	case n.sims <- struct{}{}:
		return func() { <-n.sims }, nil
	default:
		return nil, refuse(Exhausted, "%d simulations are running, the node's limit; try again", cap(n.sims))
	}
}

// simulationError classes a simulation's refusal as a submission's is: a
// transaction already executed exists, a gas limit over a cap
// (max_block_gas, max_tx_gas) is a failed precondition, anything else
// admission refused is invalid.
func simulationError(err error) error {
	switch {
	case errors.Is(err, fractal.ErrCommitted):
		return &Error{Kind: Exists, Err: err}
	case errors.Is(err, fractal.ErrGasCap):
		return &Error{Kind: Precondition, Err: err}
	}
	return &Error{Kind: Invalid, Err: err}
}

// AcquireStream takes one of the node's stream slots, or refuses when all
// are taken; release it with the returned function.
func (n *Node) AcquireStream() (release func(), err error) {
	select {
	case n.streams <- struct{}{}:
		n.m.streams.Inc()
		return func() { <-n.streams; n.m.streams.Dec() }, nil
	default:
		return nil, refuse(Exhausted, "%d streams are open, the node's limit; try again later", cap(n.streams))
	}
}

// Refused returns the receipt of a recently refused transaction.
func (n *Node) Refused(id notes.Hash) (*phases.Receipt, bool) { return n.refused.get(id) }

// SubmitShares checks and stores one keyholder's shares; the next seal
// opens the batch when they make k.
func (n *Node) SubmitShares(raw []byte) (*fractal.EncryptedStatus, error) {
	st, err := n.in.SubmitShares(raw)
	if err != nil {
		if pending, perr := n.in.PendingEncrypted(); perr == nil && pending == nil {
			return nil, &Error{Kind: Precondition, Err: err}
		}
		return nil, &Error{Kind: Invalid, Err: err}
	}
	n.dirty.Store(true) // the next seal reports the batch, and opens it once k shares are in
	return st, nil
}

// SubmitEncrypted queues one encrypted transaction.
func (n *Node) SubmitEncrypted(raw []byte) ([32]byte, error) {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	if n.depth >= n.in.Config().MaxQueue {
		return [32]byte{}, refuse(Exhausted, "mempool full (%d queued, max_queue %d)", n.depth, n.in.Config().MaxQueue)
	}
	id, err := n.in.SubmitEncrypted(raw)
	if err != nil {
		return id, n.encryptedRefusal(id, err)
	}
	n.depth++
	n.queue.Store(int64(n.depth))
	n.m.submissions.WithLabelValues("accepted").Inc()
	return id, nil
}

// encryptedRefusal classifies a refused encrypted submission.
func (n *Node) encryptedRefusal(id [32]byte, err error) error {
	n.m.submissions.WithLabelValues("refused").Inc()
	if errors.Is(err, fractal.ErrNoThresholdKey) {
		return &Error{Kind: Precondition, Err: err}
	}
	if _, oerr := n.in.Outcome(id); oerr == nil {
		return &Error{Kind: Exists, Err: err}
	}
	if ids, qerr := n.in.QueuedEncrypted(); qerr == nil {
		for _, q := range ids {
			if q == id {
				return &Error{Kind: Exists, Err: err}
			}
		}
	}
	return &Error{Kind: Invalid, Err: err}
}
