package node

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// submission is one transaction handed to the submission loop.
type submission struct {
	tx    *phases.Tx
	id    notes.Hash
	reply chan error
}

// Submit admits tx to the mempool and returns its ID. Concurrent calls are
// admitted together, with one durable write (fractal.Instance.SubmitAll).
// A refusal is an *Error: Invalid (malformed, oversize, wrongly signed),
// Exists (queued or executed already), Exhausted (mempool full).
func (n *Node) Submit(ctx context.Context, tx *phases.Tx) (notes.Hash, error) {
	id := tx.ID()
	return id, n.submit(ctx, tx, id)
}

// submit is Submit of tx, whose ID is id.
func (n *Node) submit(ctx context.Context, tx *phases.Tx, id notes.Hash) error {
	if err := n.refuseEarly(tx, id); err != nil {
		return err
	}
	s := &submission{tx: tx, id: id, reply: make(chan error, 1)}
	if err := n.handOver(ctx, []*submission{s}); err != nil {
		return err
	}
	return <-s.reply
}

// refuseEarly is what a submission is refused for before it is handed to
// the submission loop: a gas limit over max_tx_gas, a resend that would be
// refused in lookup again.
func (n *Node) refuseEarly(tx *phases.Tx, id notes.Hash) error {
	if err := n.overGas(tx); err != nil {
		return err
	}
	return n.resent(tx, id)
}

// handOver hands group to the submission loop, which admits it together
// and in order; each submission is then answered on its reply channel. It
// fails, handing nothing over, when the node stops or ctx ends first.
func (n *Node) handOver(ctx context.Context, group []*submission) error {
	n.closing.RLock()
	if n.stopped {
		n.closing.RUnlock()
		return errStopping
	}
	select {
	case n.submits <- group:
		n.closing.RUnlock()
	case <-ctx.Done():
		n.closing.RUnlock()
		return ctx.Err()
	}
	// Once handed over, a submission is answered even while the node
	// stops (Stop waits for the submission loop), so the caller learns
	// whether it was queued.
	return nil
}

// Submitted is what became of one transaction of a batch submission.
type Submitted struct {
	ID notes.Hash
	// Err is its refusal at admission, as Submit gives it; nil when it
	// was queued.
	Err error
	// Result is where it stands after the wait (queued ones only).
	Result Result
}

// SubmitBatch admits txs as one group, in their order: each is refused or
// queued as Submit would (a duplicate within the group is already queued),
// and the group shares one durable write with whatever else is waiting,
// within the node's submit_batch. With wait > 0 it then waits for the receipts of the
// queued ones until ctx ends or wait passes, as SubmitAndWait does for
// one.
func (n *Node) SubmitBatch(ctx context.Context, txs []*phases.Tx, wait time.Duration) []Submitted {
	return n.SubmitBatchWith(ctx, txs, wait, n.submitGroup)
}

// submitGroup refuses what refuseEarly refuses and hands the rest over as
// one group; it returns each transaction's refusal.
func (n *Node) submitGroup(ctx context.Context, txs []*phases.Tx, ids []notes.Hash) []error {
	errs := make([]error, len(txs))
	group := make([]*submission, 0, len(txs))
	at := make([]int, 0, len(txs))
	for i, tx := range txs {
		if errs[i] = n.refuseEarly(tx, ids[i]); errs[i] == nil {
			group = append(group, &submission{tx: tx, id: ids[i], reply: make(chan error, 1)})
			at = append(at, i)
		}
	}
	if len(group) == 0 {
		return errs
	}
	if err := n.handOver(ctx, group); err != nil {
		for _, i := range at {
			errs[i] = err
		}
		return errs
	}
	for j, s := range group {
		errs[at[j]] = <-s.reply
	}
	return errs
}

// SubmitBatchWith is SubmitBatch with the admission of a backend other
// than the solo node's queue (a validator's mempool): submit returns the
// refusal of each of txs, whose IDs are ids; the waits are the node's.
func (n *Node) SubmitBatchWith(ctx context.Context, txs []*phases.Tx, wait time.Duration,
	submit func(ctx context.Context, txs []*phases.Tx, ids []notes.Hash) []error) []Submitted {
	out := make([]Submitted, len(txs))
	ids := make([]notes.Hash, len(txs))
	var chans []chan Result
	if wait > 0 {
		chans = make([]chan Result, len(txs))
	}
	for i, tx := range txs {
		ids[i] = tx.ID()
		out[i].ID = ids[i]
		if chans != nil { // before the submission, so that no receipt is missed
			chans[i] = n.waiters.add(ids[i])
			defer n.waiters.remove(ids[i], chans[i])
		}
	}
	errs := submit(ctx, txs, ids)
	deadline := time.Now().Add(wait)
	for i := range out {
		out[i].Err = errs[i]
		switch {
		case errs[i] != nil:
		case chans == nil:
			out[i].Result = Result{State: fractal.TxQueued}
		default:
			out[i].Result = n.wait(ctx, chans[i], time.Until(deadline))
		}
	}
	return out
}

// overGas refuses, as a failed precondition, a transaction whose gas
// limit is over max_tx_gas: the instance's own check and message, which
// every other entry (a home's tx submit and simulate, a validator's CheckTx)
// gives too.
func (n *Node) overGas(tx *phases.Tx) error {
	if err := n.in.CheckTxGas(tx); err != nil {
		return &Error{Kind: Precondition, Err: err}
	}
	return nil
}

// resent refuses, as a failed precondition, a transaction that a recent
// block refused in lookup (its receipt is among the refusals the node
// remembers) while its lookup still refuses against the committed state:
// queued again, it would only be refused again. Nothing else pays for this
// check: a transaction the node does not remember refused reads no store
// here (decision 154). One whose inputs exist now is admitted.
//
// The lookup runs at most once per remembered transaction and commit
// (decision 176): resends between two commits get the answer of the first,
// and concurrent ones share its run, so a flood of resends costs no more
// lookups than the blocks that would have refused them.
func (n *Node) resent(tx *phases.Tx, id notes.Hash) error {
	if rc, ok := n.refused.get(id); !ok || rc.Phase != phases.PhaseLookup {
		return nil
	}
	at := n.commits.Load()
	v, err, _ := n.relookups.Do(string(binary.BigEndian.AppendUint64(id[:], at)), func() (any, error) {
		if reason, ok := n.refused.lookedUp(id, at); ok {
			return reason, nil
		}
		n.m.resendLookups.Inc()
		reason, err := n.in.LookupRefusal(tx)
		if err == nil {
			n.refused.setLookedUp(id, at, reason)
		}
		return reason, err
	})
	switch {
	case err != nil:
		return &Error{Kind: Unavailable, Err: err}
	case v.(string) != "":
		return refuse(Precondition, "transaction %x was refused in lookup in a recent block and would be again: %s", id[:8], v.(string))
	}
	return nil
}

// SubmitAndWait submits tx and, when it was queued, waits for its receipt
// until ctx ends or wait passes, whichever comes first.
func (n *Node) SubmitAndWait(ctx context.Context, tx *phases.Tx, wait time.Duration) (notes.Hash, Result, error) {
	id := tx.ID()
	ch := n.waiters.add(id)
	defer n.waiters.remove(id, ch)
	if err := n.submit(ctx, tx, id); err != nil {
		return id, Result{}, err
	}
	return id, n.wait(ctx, ch, wait), nil
}

// wait waits on ch for a seal's answer; one already there is taken
// whatever the time left.
func (n *Node) wait(ctx context.Context, ch chan Result, wait time.Duration) Result {
	select {
	case r := <-ch:
		return r
	default:
	}
	t := time.NewTimer(min(wait, time.Duration(n.cfg.MaxReceiptWait)))
	defer t.Stop()
	select {
	case r := <-ch:
		return r
	case <-t.C:
	case <-ctx.Done():
	case <-n.stop:
	}
	return Result{State: fractal.TxQueued}
}

// batchLoop admits submissions in batches: whatever groups are waiting
// when the previous batch is done, in the order they were handed over, up
// to SubmitBatch submissions a write.
func (n *Node) batchLoop() {
	defer close(n.batchDone)
	for {
		var batch []*submission
		select {
		case batch = <-n.submits:
		case <-n.stop:
			// Answer what was handed over before the stop.
			for {
				select {
				case g := <-n.submits:
					n.admitAll(g)
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < n.cfg.SubmitBatch {
			select {
			case g := <-n.submits:
				batch = append(batch, g...)
			default:
				break drain
			}
		}
		n.admitAll(batch)
	}
}

// admitAll admits subs in order, SubmitBatch at a time.
func (n *Node) admitAll(subs []*submission) {
	for len(subs) > 0 {
		k := min(len(subs), n.cfg.SubmitBatch)
		n.admit(subs[:k])
		subs = subs[k:]
	}
}

// admit admits one batch. What needs no store is checked here first, so
// that each refusal gets its kind: the form and size, a duplicate in the
// batch, a full mempool (from the depth the node keeps). SubmitAll then
// checks the signatures and, inside its one write, what the store knows: a
// transaction queued or executed already, its fee, the queue's bound;
// refusal names the kind of what it refused. The happy path reads nothing
// from the store outside that write.
func (n *Node) admit(batch []*submission) {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	maxTx := n.in.Config().MaxTxBytes
	seen := make(map[notes.Hash]bool, len(batch))
	var txs []*phases.Tx
	var subs []*submission
	room := n.in.Config().MaxQueue - n.depth
	for _, s := range batch {
		var err error
		switch {
		case seen[s.id]:
			err = queued(s.id)
		default:
			err = precheck(s.tx, maxTx)
		}
		if err == nil && len(txs) >= room {
			err = refuse(Exhausted, "mempool full (%d queued, max_queue %d)", n.depth+len(txs), n.in.Config().MaxQueue)
		}
		if err != nil {
			n.m.submissions.WithLabelValues("refused").Inc()
			s.reply <- err
			continue
		}
		seen[s.id] = true
		txs, subs = append(txs, s.tx), append(subs, s)
	}
	if len(txs) == 0 {
		return
	}
	errs := n.in.SubmitAll(txs)
	queued := 0
	for i, err := range errs {
		if err != nil {
			n.m.submissions.WithLabelValues("refused").Inc()
			subs[i].reply <- n.refusal(subs[i], err)
			continue
		}
		queued++
		n.m.submissions.WithLabelValues("accepted").Inc()
		subs[i].reply <- nil
	}
	n.depth += queued
	n.queue.Store(int64(n.depth))
	if n.depth >= n.in.Config().MaxBlockTxs {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// queued and executed are the refusals of a transaction queued or executed
// already.
func queued(id notes.Hash) *Error { return refuse(Exists, "transaction %x is already queued", id[:8]) }

func executed(id notes.Hash, height uint64) *Error {
	return refuse(Exists, "transaction %x was already executed in block %d", id[:8], height)
}

// precheck refuses, as Invalid, a transaction that is malformed or
// oversize.
func precheck(tx *phases.Tx, maxTx int) error {
	if err := tx.Validate(); err != nil {
		return &Error{Kind: Invalid, Err: err}
	}
	if size := len(tx.Encode()); size > maxTx {
		return refuse(Invalid, "transaction is %d bytes, limit %d", size, maxTx)
	}
	return nil
}

// refusal gives the kind of SubmitAll's refusal err of s: Exists for a
// transaction queued or executed already, Exhausted for a full mempool,
// Invalid for a signature (checked again alone, only on this path),
// Precondition for another refusal of the transaction (its fee),
// Unavailable for a store that failed.
func (n *Node) refusal(s *submission, err error) *Error {
	var replay *fractal.ReplayError
	switch {
	case errors.Is(err, fractal.ErrQueued):
		return queued(s.id)
	case errors.As(err, &replay):
		return executed(s.id, replay.Height)
	case errors.Is(err, fractal.ErrMempoolFull):
		return &Error{Kind: Exhausted, Err: err}
	case s.tx.VerifySignatures() != nil:
		return &Error{Kind: Invalid, Err: err}
	case errors.Is(err, fractal.ErrRefused): // its fee, a reward, a gas limit over the block's
		return &Error{Kind: Precondition, Err: err}
	}
	n.log.Error("submission failed", "tx", hex.EncodeToString(s.id[:]), "err", err)
	return &Error{Kind: Unavailable, Err: err} // the store failed, not the transaction
}

// waiters are the callers waiting for a transaction's receipt.
type waiters struct {
	mu sync.Mutex
	m  map[notes.Hash][]chan Result
}

func (w *waiters) add(id notes.Hash) chan Result {
	ch := make(chan Result, 1)
	w.mu.Lock()
	w.m[id] = append(w.m[id], ch)
	w.mu.Unlock()
	return ch
}

func (w *waiters) remove(id notes.Hash, ch chan Result) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.m[id]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(w.m, id)
	} else {
		w.m[id] = list
	}
}

// deliver answers the waiters of every receipt of a seal.
func (w *waiters) deliver(height uint64, receipts []*phases.Receipt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.m) == 0 {
		return
	}
	for _, rc := range receipts {
		list := w.m[rc.TxID]
		if len(list) == 0 {
			continue
		}
		r := Result{State: fractal.TxCommitted, Height: height, Receipt: rc}
		if rc.Status != phases.Accepted {
			r = Result{Refused: true, Receipt: rc}
		}
		for _, ch := range list {
			select {
			case ch <- r:
			default:
			}
		}
	}
}
