package fractal

// Pipelined sealing (decision 186): a node seals block N+1 while badger
// applies block N's write. Block N is built into a write set (writeset.go)
// over the store as it was before it; once signed, the set goes to badger
// in one write that is not waited for, and the next block executes over
// the set laid over a read of the store taken before that write. Block
// N+1 is signed only once N's write is durable, and nothing of block N
// (its receipts, its signature) leaves the instance before: the guard
// records N as signed, and the memory queue lets its transactions go, when
// the write lands (landed).

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
)

// A PendingSeal is a seal whose block's write may still be in flight.
type PendingSeal struct {
	sealed *Sealed
	done   chan struct{} // closed once the write is durable, or failed
	err    error         // the write's failure, or the guard's, unprefixed; set before done is closed

	// The rest is the instance's, under its mu, while this is its
	// inflight seal.
	ws      *writeSet
	base    *badger.Txn  // a read of the store before the write; ws's reads fall back to it
	head    *chain.Block // the head once the write is in
	entries []*memEntry  // the memory queue's entries of the block's transactions
	// staleDeleted is how many of the memory queue's first stale taken
	// records the block's write deletes.
	staleDeleted int
	x            *Execution
	gate         chan struct{} // landGate when the write was sent (tests)
}

// Wait returns the seal's result once its write is durable (at once for a
// seal that wrote nothing or was not pipelined), or the write's failure:
// the block is then not stored and its transactions are queued again.
func (p *PendingSeal) Wait() (*Sealed, error) {
	<-p.done
	if p.err != nil {
		return p.sealed, fmt.Errorf("fractal: seal: %w", p.err)
	}
	return p.sealed, nil
}

// Unlanded returns what the seal did before its write is durable: for
// counting only. Nothing of it may be told to anyone before Wait returns.
func (p *PendingSeal) Unlanded() *Sealed { return p.sealed }

// Landed reports whether Wait would return at once.
func (p *PendingSeal) Landed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func landedSeal(s *Sealed) *PendingSeal {
	p := &PendingSeal{sealed: s, done: make(chan struct{})}
	close(p.done)
	return p
}

// SealNext is Seal for a node that seals one block after another: it
// returns once the block is signed and its write handed to badger, with a
// PendingSeal whose Wait gives the result once the write is durable. The
// next SealNext executes its block over that write while it lands, and
// waits for it before signing. Only plain blocks from the memory queue are
// pipelined: with anything in the encrypted mempool, or with the queue in
// the store, SealNext waits for the write in flight and seals as Seal
// does. Every other writer of the instance waits for the write in flight
// first (settle).
func (in *Instance) SealNext(ctx context.Context) (*PendingSeal, error) {
	if err := in.errValidatorSet("seal"); err != nil {
		return nil, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return withinWriteBound(in.cfg.MaxBlockTxs, func(max int) (*PendingSeal, error) { return in.sealNext(ctx, max) })
}

func (in *Instance) sealNext(ctx context.Context, max int) (*PendingSeal, error) {
	prev := in.inflight
	if prev != nil && prev.Landed() {
		if err := in.settle(); err != nil {
			return nil, err
		}
		prev = nil
	}
	var view *badger.Txn
	var r kv.Reader
	var parent *chain.Block
	if prev == nil {
		view = in.db.NewTransaction(false)
		defer view.Discard()
		r = badgerdb.KV{Txn: view}
		var err error
		if parent, err = in.headBlock(view); err != nil {
			return nil, err
		}
	} else {
		view, r, parent = prev.base, prev.ws.over(badgerdb.KV{Txn: prev.base}), prev.head
	}
	if in.mem == nil || encryptedQueued(view) {
		if err := in.settle(); err != nil {
			return nil, err
		}
		s, err := in.seal(ctx, max)
		if err != nil {
			return nil, err
		}
		return landedSeal(s), nil
	}
	p, err := in.proposeOn(ctx, view, r, parent, max)
	if err != nil {
		return nil, err
	}
	if p.nothing() {
		return landedSeal(&Sealed{}), nil
	}
	ws := newWriteSet(r, writesPerTx*len(p.Txs))
	c := &Commit{in: in, w: &boundedWrite{Store: ws}, height: p.Parent.Height + 1}
	x, err := in.execute(ctx, r, p, c.Apply)
	if err != nil {
		return nil, err
	}
	q := p.mempool.(*queuePart) // a plain block from the memory queue: encryptedQueued is false
	x.Taken = len(q.taken)
	if err := c.WriteState(x); err != nil {
		return nil, err
	}
	next := &PendingSeal{sealed: &x.Sealed, done: make(chan struct{}), ws: ws, head: p.Parent, entries: q.entries(), staleDeleted: len(q.mem.stale), x: x}
	b := x.Block
	if b == nil {
		if err := in.settle(); err != nil {
			return nil, err
		}
		return next, in.send(next, nil)
	}
	hw := headWrites(b)
	for _, kv := range hw[:2] {
		if err := c.w.Set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	// The block before must be durable before this one is signed: the
	// guard allows one block being signed at a time, and the signature
	// extends that block.
	if err := in.settle(); err != nil {
		return nil, err
	}
	next.head = b
	err = in.signBlock(ctx, b, func() error {
		if err := c.w.Set(hw[2][0], b.Encode()); err != nil { // signed by now
			return err
		}
		return in.send(next, &guard.Block{Height: b.Height, Hash: b.Hash()})
	}, in.signBegun)
	if err != nil {
		return nil, err
	}
	return next, nil
}

// writesPerTx is about how many keys a transfer's block writes: its notes,
// replay index and receipt, and the state tree's new nodes (decision 172).
const writesPerTx = 20

// over returns the set's writes as a read over base, for the next block.
func (w *writeSet) over(base kv.Reader) *writeSet {
	return &writeSet{base: base, m: w.m, sorted: w.sorted}
}

// encryptedQueued reports whether the encrypted mempool holds a payload or
// a batch waiting for shares, as view shows it. A plain block does not
// change it, so the read before a plain block in flight answers for after
// it.
func encryptedQueued(view *badger.Txn) bool {
	if _, waiting, err := waitingBatch(view); err != nil || waiting {
		return true
	}
	_, ok, err := firstEncrypted(view)
	return err != nil || ok
}

// send hands p's write to badger without waiting for it, once the write
// before is settled: p becomes the seal in flight, its transactions are
// marked in flight in the memory queue, and landed runs when the write is
// durable or failed. signed is the block recorded as being signed, which
// the guard records as signed once the write lands.
func (in *Instance) send(p *PendingSeal, signed *guard.Block) error {
	txn := in.db.NewTransaction(true)
	if err := p.ws.flush(txn); err != nil {
		txn.Discard()
		return err
	}
	p.ws.freeze()
	// The read the next block falls back to: the store before this write,
	// which every earlier write is in (settled).
	p.base = in.db.NewTransaction(false)
	p.gate = landGate
	in.inflight = p
	in.mem.fly(p.entries, p.staleDeleted, true)
	if err := landFail; err != nil {
		txn.Discard()
		go in.landed(p, signed, err)
		return nil
	}
	txn.CommitWith(func(err error) { in.landed(p, signed, err) })
	return nil
}

// landFail, set by tests only, fails every pipelined write as badger
// would, without writing it.
var landFail error

// landed completes p once badger has applied its write (err nil) or
// failed it: the memory queue lets the block's transactions go (after a
// failure, queues them again: the guard's next check then forgets the
// block being signed, which the store does not hold), the guard records
// the block as signed, and Wait returns. It runs on badger's goroutine:
// the writers that use the guard wait for p first (settle), and the
// memory queue's readers under the instance's mu read the store through
// p's writes while it is in flight (SealNext, SubmitAll), so that they see
// its transactions committed before and after they leave the queue.
func (in *Instance) landed(p *PendingSeal, signed *guard.Block, err error) {
	defer close(p.done)
	if p.gate != nil {
		<-p.gate
	}
	if err != nil {
		in.mem.fly(p.entries, 0, false)
		p.err = fmt.Errorf("block write: %w", err)
		return
	}
	for _, part := range p.x.parts {
		if c, ok := part.(committer); ok {
			c.committed()
		}
	}
	if signed != nil {
		if err := in.guard.Done(guard.Blocks, *signed); err != nil {
			p.err = fmt.Errorf("block %d is stored: %w", signed.Height, err)
		}
	}
}

// landGate, set by tests only, holds every landing until a settle lets it
// go, so that what runs between a pipelined seal and the next settle runs
// while the write is in flight.
var landGate chan struct{}

// settle waits for the seal in flight, if any, and forgets it; it returns
// the seal's failure, as the block before's. Holding mu, the pipelined
// seal calls it before it signs; every other writer calls lock.
func (in *Instance) settle() error {
	p := in.inflight
	if p == nil {
		return nil
	}
	if p.gate != nil && !p.Landed() {
		p.gate <- struct{}{}
	}
	<-p.done
	in.inflight = nil
	p.base.Discard()
	if p.err != nil {
		return fmt.Errorf("the block before: %w", p.err)
	}
	return nil
}

// lock takes the writers' lock once the seal in flight, if any, has
// landed and settled, so that the store and the memory queue agree on
// what is committed. A failed write is the seal's to report
// (PendingSeal.Wait).
func (in *Instance) lock() {
	in.mu.Lock()
	in.settle() //nolint:errcheck // reported by Wait
}
