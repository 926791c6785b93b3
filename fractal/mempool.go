package fractal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/fractal/queuelog"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Submit checks tx and queues it for the next block. It refuses, changing
// nothing, a transaction that is invalid, unsigned or wrongly signed, larger
// than the configured limit, already executed (a replay) or already queued,
// and one whose fee does not pass admission (Check). It returns the
// transaction ID.
func (in *Instance) Submit(tx *phases.Tx) (notes.Hash, error) {
	return tx.ID(), in.SubmitAll([]*phases.Tx{tx})[0]
}

// SubmitAll is Submit for many transactions with one durable write: it
// checks them, signatures in batches on every core (phases.VerifyAll, each
// refusal naming its signer as VerifySignatures does), queues the
// acceptable ones in the given order, and returns one error per
// transaction, nil for those queued.
func (in *Instance) SubmitAll(txs []*phases.Tx) []error {
	errs := make([]error, len(txs))
	if err := in.errValidatorSet("submit"); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	raws := make([][]byte, len(txs))
	ids := make([]notes.Hash, len(txs))
	// The memory queue keeps its own copy of each transaction, as readQueue
	// decodes one from the store.
	var copies []*phases.Tx
	if in.mem != nil {
		copies = make([]*phases.Tx, len(txs))
	}
	_ = workers.Each(context.Background(), len(txs), func(i int) error {
		ids[i] = txs[i].ID()
		raws[i], errs[i] = in.checkForm(txs[i]) // one refusal each, not the call's
		if errs[i] == nil {
			errs[i] = in.CheckTxGas(txs[i])
		}
		if errs[i] == nil && copies != nil {
			copies[i], errs[i] = phases.DecodeTx(raws[i])
		}
		return nil
	})
	var idx []int
	var sigs []*phases.Tx
	for i := range txs {
		if errs[i] == nil {
			idx, sigs = append(idx, i), append(sigs, txs[i])
		}
	}
	for k, err := range phases.VerifyAll(sigs) {
		errs[idx[k]] = err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if p := in.inflight; p != nil && p.Landed() {
		in.settle() //nolint:errcheck // reported by the seal's Wait
	}
	qc := in.queueCount()
	var logged []*memEntry
	var recs []queuelog.Entry
	// admit reads the store through r; txn is a read of it whose queue
	// and encrypted mempool are r's (queueFull counts them).
	admit := func(txn *badger.Txn, r kv.Reader) error {
		if in.mem != nil && in.mem.failed != nil {
			return in.mem.failed
		}
		seq := in.nextSeq
		for i := range txs {
			if errs[i] != nil {
				continue
			}
			if errs[i] = in.checkFresh(r, ids[i]); errs[i] != nil {
				continue
			}
			if errs[i] = in.checkFee(r, txs[i], true); errs[i] != nil {
				continue
			}
			if in.mem != nil {
				if errs[i] = in.mem.full(len(raws[i])); errs[i] != nil {
					continue
				}
			}
			if errs[i] = in.queueFull(txn, &qc); errs[i] != nil {
				continue
			}
			if in.mem != nil {
				// In memory at once, so that the call's later
				// transactions see it; the log makes it durable below.
				copies[i].MarkVerified()
				e := &memEntry{seq: seq, id: ids[i], tx: copies[i], size: int64(len(raws[i]))}
				in.mem.mu.Lock()
				in.mem.add(e)
				in.mem.mu.Unlock()
				logged, recs = append(logged, e), append(recs, queuelog.Entry{Seq: seq, Raw: raws[i]})
			} else if err := enqueue(txn, seq, ids[i], raws[i], txs[i]); err != nil {
				return err
			}
			seq++
		}
		in.nextSeq = seq // before commit: a failed commit only leaves a gap
		return nil
	}
	var err error
	switch p := in.inflight; {
	case p != nil:
		// A pipelined block's write is in flight (decision 186): the
		// store as it will be once it lands is its writes over the read
		// before it, which a plain block's write leaves the encrypted
		// mempool's count right for.
		err = admit(p.base, p.ws.over(badgerdb.KV{Txn: p.base}))
	case in.mem != nil:
		err = in.db.View(func(txn *badger.Txn) error { return admit(txn, badgerdb.KV{Txn: txn}) })
	default:
		err = in.db.Update(func(txn *badger.Txn) error { return admit(txn, badgerdb.KV{Txn: txn}) })
	}
	if err == nil && in.mem != nil {
		err = in.mem.appendLog(logged, recs)
	}
	if err == nil {
		in.settleQueue(qc)
	}
	for i := range errs {
		switch {
		case errs[i] != nil:
			errs[i] = refusal{errs[i]}
		case err != nil:
			errs[i] = err
		}
		if errs[i] != nil {
			errs[i] = fmt.Errorf("fractal: submit %x: %w", ids[i][:8], errs[i])
		}
	}
	return errs
}

// ErrRefused is what errors.Is finds in a submission that admission
// refused for the transaction itself (form, signatures, replay, fee, a full
// queue), as opposed to a store that failed.
var ErrRefused = errors.New("refused at admission")

// ErrQueued and ErrMempoolFull are what errors.Is finds in a submission
// refused because the transaction is queued already, or because the
// mempool holds max_queue submissions; one already executed is a
// *ReplayError (errors.Is finds ErrCommitted).
var (
	ErrQueued      = errors.New("transaction is already queued")
	ErrMempoolFull = errors.New("mempool full")
)

// ReplayError refuses a transaction that the block at Height executed.
type ReplayError struct{ Height uint64 }

func (e *ReplayError) Error() string {
	return fmt.Sprintf("replayed transaction: already executed in block %d", e.Height)
}

func (e *ReplayError) Is(target error) bool { return target == ErrCommitted }

// refusal wraps an admission refusal so that it is ErrRefused, its message
// unchanged.
type refusal struct{ err error }

func (r refusal) Error() string   { return r.err.Error() }
func (r refusal) Unwrap() []error { return []error{r.err, ErrRefused} }

// queueCount is the mempool size as one submitting call tracks it: n is at
// least the number of queued entries, and exactly that when exact.
type queueCount struct {
	n     int
	exact bool
}

// queueCount starts a count from the instance's bound. The bound only grows
// by submissions; seals and encrypted batches shrink the queue without
// telling it, so it is exact only while nothing else has committed since it
// was (badger's version is unchanged). While a pipelined block's write is
// in flight it is not exact: that write changes the store at any moment,
// and badger's version may not be read while it does (decision 186).
// Caller holds mu.
func (in *Instance) queueCount() queueCount {
	return queueCount{n: in.queueBound, exact: in.inflight == nil && in.db.MaxVersion() == in.queueExact}
}

// queueFull takes one place in the mempool for a submission, or returns
// the refusal when max_queue is reached. Only a bound that looks full is
// recounted from txn, so a flood against a full queue costs one count per
// store change, not one per submission.
func (in *Instance) queueFull(txn *badger.Txn, c *queueCount) error {
	if c.n >= in.cfg.MaxQueue && !c.exact {
		c.n, c.exact = in.countQueued(txn), true
	}
	if c.n >= in.cfg.MaxQueue {
		return fmt.Errorf("%w (%d queued, max_queue %d)", ErrMempoolFull, c.n, in.cfg.MaxQueue)
	}
	c.n++
	return nil
}

// settleQueue keeps a committed count as the instance's bound. Caller
// holds mu.
func (in *Instance) settleQueue(c queueCount) {
	in.queueBound = c.n
	if c.exact && in.inflight == nil {
		in.queueExact = in.db.MaxVersion()
	}
}

// countQueued counts the queued submissions, plain and encrypted (they share
// the arrival order), reading keys only; the memory queue's plain ones from
// memory.
func (in *Instance) countQueued(txn *badger.Txn) int {
	n := 0
	pres := [][]byte{{prefixQueue}, encKeyOf(encQueue)}
	if in.mem != nil {
		n, pres = in.memLive(), pres[1:]
	}
	for _, pre := range pres {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pre})
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		it.Close()
	}
	return n
}

// admit checks what needs no store: validity, size and signatures. It
// returns the canonical encoding.
func (in *Instance) admit(tx *phases.Tx) ([]byte, error) {
	raw, err := in.checkForm(tx)
	if err != nil {
		return nil, err
	}
	return raw, tx.VerifySignatures()
}

// checkForm is admit without the signatures: validity, gas (max_block_gas,
// a rule of the chain; max_tx_gas is admission's alone, CheckTxGas) and size.
func (in *Instance) checkForm(tx *phases.Tx) ([]byte, error) {
	if err := tx.Validate(); err != nil {
		return nil, err
	}
	if phases.IsReward(tx) {
		return nil, errors.New("a reward transaction is made by the block's producer, never submitted (decision 143)")
	}
	if tx.GasLimit > in.cfg.MaxBlockGas {
		return nil, overGasCap("gas limit %d exceeds the block gas limit (max_block_gas %d)", tx.GasLimit, in.cfg.MaxBlockGas)
	}
	raw := tx.Encode()
	if len(raw) > in.cfg.MaxTxBytes {
		return nil, fmt.Errorf("transaction is %d bytes, limit %d", len(raw), in.cfg.MaxTxBytes)
	}
	return raw, nil
}

// checkFresh refuses a transaction ID that was executed or is queued: in
// the store, or in the memory queue, which holds the store's queue too.
// The memory queue is asked first: a transaction of a pipelined block
// whose write is in flight is still queued there, and r (that write over
// the store) would tell that the block executed it before the block is
// durable (decision 186).
func (in *Instance) checkFresh(r kv.Reader, id notes.Hash) error {
	if in.mem != nil {
		if err := in.checkQueued(id); err != nil {
			return err
		}
	}
	if err := checkExecuted(r, id); err != nil {
		return err
	}
	if in.mem != nil {
		return nil
	}
	if _, ok, err := r.Get(hashKey(prefixPending, id)); err != nil {
		return err
	} else if ok {
		return ErrQueued
	}
	return nil
}

// lastSeq returns one more than the last queued sequence, or 0 for an
// empty queue. No counter is stored, so a queue that empties leaves no
// trace; Open reads it once and the instance counts on in memory (a reverse
// seek over many deleted queue keys is slow).
func lastSeq(txn *badger.Txn) (uint64, error) {
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{prefixQueue}})
	defer it.Close()
	it.Seek([]byte{prefixQueue, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if !it.Valid() {
		return 0, nil
	}
	k := it.Item().Key()
	if len(k) != 9 {
		return 0, fmt.Errorf("queue key %x is malformed", k)
	}
	return binary.BigEndian.Uint64(k[1:]) + 1, nil
}

// queued is one transaction taken from the queue.
type queued struct {
	seq uint64
	tx  *phases.Tx
	mem *memEntry // its memory queue entry; nil when the queue is the store's
}

// readQueue returns up to max queued transactions in arrival order. The
// entries are read in order and decoded on every core; an undecodable entry
// fails the read with the first such entry's error, as a serial decode did
// (workers.Each returns the lowest failing index's).
func readQueue(txn *badger.Txn, max int) ([]queued, error) {
	var out []queued
	var raws [][]byte
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte{prefixQueue}})
	defer it.Close()
	for it.Rewind(); it.Valid() && len(out) < max; it.Next() {
		k := it.Item().Key()
		if len(k) != 9 {
			return nil, fmt.Errorf("queue key %x is malformed", k)
		}
		raw, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		out = append(out, queued{seq: binary.BigEndian.Uint64(k[1:])})
		raws = append(raws, raw)
	}
	err := workers.Each(context.Background(), len(out), func(i int) error {
		tx, err := phases.DecodeTx(raws[i])
		if err != nil {
			return fmt.Errorf("queue entry %d: %w", out[i].seq, err)
		}
		// Only SubmitAll writes the queue, after verifying the signatures
		// (docs/decisions/042-throughput.md): phases need not verify them again.
		tx.MarkVerified()
		out[i].tx = tx
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// queuePart is the queue's part in a block Propose took from it: every
// transaction taken leaves the queue when the block commits, accepted or
// refused.
type queuePart struct {
	taken []queued // the block's transactions from the queue, with their sequences
	mem   *memPart // nil when the queue is the store's
}

func (q *queuePart) admit(txs []*phases.Tx) []error { return make([]error, len(txs)) }

func (q *queuePart) apply(r *TxResult) error {
	if q.mem != nil && !r.Outcome.Committed() {
		q.mem.refused[r.Tx.ID()] = true
	}
	return nil
}

func (q *queuePart) finish(*chain.Block) {}

func (q *queuePart) write(w kv.Store, _ *Execution) error {
	for _, e := range q.taken {
		if e.mem != nil && !e.mem.store {
			continue // logged, never in the store
		}
		if err := dequeue(w, e.seq, e.tx); err != nil {
			return err
		}
	}
	if q.mem != nil {
		return q.mem.write(w, q.taken)
	}
	return nil
}

// committed takes the block's transactions out of the memory queue.
func (q *queuePart) committed() {
	if q.mem == nil {
		return
	}
	q.mem.mem.committed(q.entries(), q.mem.refused, len(q.mem.stale))
}

// entries returns the memory queue's entries of the block's transactions.
func (q *queuePart) entries() []*memEntry {
	taken := make([]*memEntry, len(q.taken))
	for i, e := range q.taken {
		taken[i] = e.mem
	}
	return taken
}

// Queued returns the IDs of the queued transactions in arrival order.
func (in *Instance) Queued() ([]notes.Hash, error) {
	var ids []notes.Hash
	if in.mem != nil {
		in.mem.mu.RLock()
		defer in.mem.mu.RUnlock()
		for _, e := range in.mem.read(MaxQueueRead) {
			ids = append(ids, e.mem.id)
		}
		return ids, nil
	}
	err := in.db.View(func(txn *badger.Txn) error {
		q, err := readQueue(txn, MaxQueueRead)
		for _, e := range q {
			ids = append(ids, e.tx.ID())
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: queue: %w", err)
	}
	return ids, nil
}

// MaxQueueRead bounds how many queued transactions Queued lists.
const MaxQueueRead = 1 << 16
