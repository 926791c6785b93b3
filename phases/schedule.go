package phases

import (
	"container/heap"
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// ExecuteSerial runs phases 1–3 of each transaction in block order, each
// against st plus the effects of the transactions accepted before it. It is
// the reference that ExecuteBlock must equal. The outcomes are in block
// order; the caller commits the accepted ones in that order. st is not
// changed. The error is the first host failure; then no outcome is valid.
func ExecuteSerial(st State, code Code, pool *vp.Pool, txs []*Tx) ([]*Outcome, error) {
	ov := newOverlay(st)
	outs := make([]*Outcome, len(txs))
	for i, tx := range txs {
		out, err := Execute(ov, code, pool, tx)
		if err != nil {
			return nil, err
		}
		if out.Committed() {
			ov.apply(out)
		}
		outs[i] = out
	}
	return outs, nil
}

// ExecuteBlock gives the same outcomes as ExecuteSerial, byte for byte, but
// verifies signatures in batches (VerifyAll) and runs transactions that do
// not conflict at the same time. Two transactions conflict when one's write
// constraints overlap the other's read or write constraints; a transaction's
// outcome is taken only after every earlier transaction it conflicts with
// has finished and its effects are visible: from a run started then, or from
// a speculative run started earlier whose every read still returns the same
// notes (speculate.go). Since a transaction reads and writes only inside its
// constraints, the effects of the non-conflicting ones running beside it
// cannot change its outcome.
func ExecuteBlock(st State, code Code, pool *vp.Pool, txs []*Tx) ([]*Outcome, error) {
	outs := make([]*Outcome, len(txs))
	err := ExecuteBlockFunc(st, code, pool, txs, func(i int, out *Outcome) error {
		outs[i] = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// ExecuteBlockFunc is ExecuteBlock handing each outcome to emit as soon as
// it and every earlier one are final, in block order, while later
// transactions still run: the caller can commit outcome i beside the
// execution of the rest. emit runs on the caller's goroutine and must not
// change the outcome. A host failure (the first in block order) or an error
// from emit stops it: nothing more is emitted, no further transaction
// starts, and the error is returned once the running ones have finished.
func ExecuteBlockFunc(st State, code Code, pool *vp.Pool, txs []*Tx, emit func(i int, out *Outcome) error) error {
	_, err := executeBlock(st, code, pool, txs, emit)
	return err
}

// speculationCount is how many speculative runs a block checked: kept
// (reused) and wasted (run again).
type speculationCount struct{ kept, wasted int }

// executeBlock is ExecuteBlockFunc also counting its speculative runs.
func executeBlock(st State, code Code, pool *vp.Pool, txs []*Tx, emit func(i int, out *Outcome) error) (speculationCount, error) {
	outs := admitAll(txs)
	var admitted []int
	for i, out := range outs {
		if out == nil {
			admitted = append(admitted, i)
		}
	}
	deps, _ := conflictsWork(txs, admitted, feeWrites(code, txs))
	ov := newOverlay(st)
	errs := make([]error, len(txs))
	done := make([]chan struct{}, len(txs))
	for _, i := range admitted {
		done[i] = make(chan struct{})
	}
	q := newReadyQueue(txs, admitted, deps)
	// finish makes transaction i's outcome visible to those waiting for it.
	finish := func(i int, out *Outcome, err error) {
		outs[i], errs[i] = out, err
		if err == nil && out.Committed() {
			ov.apply(out)
		}
		close(done[i])
		q.finish(i)
	}
	// GOMAXPROCS workers take the transactions whose dependencies are done,
	// lowest index first: one that waits holds no core, and a worker's
	// stack, grown by the Lua runs, serves many transactions. A worker with
	// none ready runs the lowest waiting one speculatively (speculate.go).
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, kind := q.take(); i >= 0; i, kind = q.take() {
				var s *speculation
				if kind == takeSpeculate {
					rec := &recorder{st: ov}
					out, err := execute(rec, code, pool, txs[i], true)
					if s = (&speculation{out, err, rec}); !q.speculated(i, s) {
						continue // checked when its turn comes
					}
				} else if kind == takeCheck {
					s = q.specs[i]
				}
				if s != nil && s.err == nil && s.rec.still(ov) {
					q.reused(true)
					finish(i, s.out, nil)
					continue
				}
				if s != nil {
					q.reused(false)
				}
				out, err := execute(ov, code, pool, txs[i], true)
				finish(i, out, err)
			}
		}()
	}
	var err error
	for i := range txs {
		if done[i] != nil {
			<-done[i]
		}
		if err = errs[i]; err == nil {
			err = emit(i, outs[i])
		}
		if err != nil {
			q.stop()
			break
		}
	}
	wg.Wait()
	return speculationCount{q.kept, q.wasted}, err
}

// readyQueue hands out the transactions of a block whose dependencies are
// done, lowest index first, and, while none is, the lowest one still
// waiting for a speculative run. It is safe for concurrent use.
type readyQueue struct {
	mu      sync.Mutex
	wake    sync.Cond
	ready   indexHeap // dependencies done, not yet taken
	waiting []int     // dependencies not yet done, by transaction
	after   [][]int   // the transactions that wait for each
	left    int       // not yet taken
	stopped bool
	spec    []specState
	specs   []*speculation // the finished speculative runs, by transaction
	next    int            // no transaction below it is to be run speculatively
	// Speculative runs whose reads changed are wasted work: at most
	// lookahead are run or waiting to be checked at a time, and past a
	// few wasted, speculation stops while they outnumber those kept.
	pending, lookahead int
	kept, wasted       int
}

// specState is where a transaction's speculative run stands.
type specState uint8

const (
	specNone    specState = iota
	specNever             // an import (it reads the import index), or not admitted
	specRunning           // running
	specDue               // running, and its dependencies are done: its worker checks it
	specDone              // finished, waiting for its dependencies
)

// speculation is a finished speculative run and what it read.
type speculation struct {
	out *Outcome
	err error
	rec *recorder
}

// What take hands out.
const (
	takeRun       = iota // run the transaction: its dependencies are done
	takeCheck            // its speculative run is done: check it or run it again
	takeSpeculate        // run it speculatively
)

// speculationSlack is how many more wasted than reused speculative runs
// a block may have before speculation stops.
const speculationSlack = 8

func newReadyQueue(txs []*Tx, admitted []int, deps map[int][]int) *readyQueue {
	n := len(txs)
	q := &readyQueue{waiting: make([]int, n), after: make([][]int, n), left: len(admitted),
		spec: make([]specState, n), specs: make([]*speculation, n), lookahead: 2 * runtime.GOMAXPROCS(0)}
	q.wake.L = &q.mu
	for i := range q.spec {
		q.spec[i] = specNever
	}
	for _, i := range admitted {
		if !IsImport(txs[i]) {
			q.spec[i] = specNone
		}
	}
	for late, ds := range deps {
		q.waiting[late] = len(ds)
		for _, d := range ds {
			q.after[d] = append(q.after[d], late)
		}
	}
	for _, i := range admitted {
		if q.waiting[i] == 0 {
			q.ready = append(q.ready, i) // admitted is increasing: already a heap
		}
	}
	return q
}

// take waits for work and returns a transaction and what to do with it, or
// -1 once every transaction was taken or the queue was stopped.
func (q *readyQueue) take() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.stopped {
		if len(q.ready) > 0 {
			i := heap.Pop(&q.ready).(int)
			if q.left--; q.left == 0 {
				q.wake.Broadcast() // idle workers have nothing left to wait for
			}
			switch q.spec[i] {
			case specRunning:
				q.spec[i] = specDue
				continue
			case specDone:
				return i, takeCheck
			}
			return i, takeRun
		}
		if q.left == 0 {
			break
		}
		if i := q.speculative(); i >= 0 {
			q.spec[i] = specRunning
			q.pending++
			return i, takeSpeculate
		}
		q.wake.Wait()
	}
	return -1, 0
}

// speculative returns the lowest transaction worth a speculative run, or
// -1. A transaction it passes over never becomes worth one.
func (q *readyQueue) speculative() int {
	if q.pending == q.lookahead || q.wasted > q.kept+speculationSlack {
		return -1
	}
	for ; q.next < len(q.spec); q.next++ {
		if q.spec[q.next] == specNone && q.waiting[q.next] > 0 {
			return q.next
		}
	}
	return -1
}

// speculated records transaction i's speculative run and reports whether
// its dependencies are already done, in which case the caller checks it now.
func (q *readyQueue) speculated(i int, s *speculation) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spec[i] == specDue {
		return true
	}
	q.spec[i], q.specs[i] = specDone, s
	return false
}

// reused counts a checked speculative run as kept or wasted.
func (q *readyQueue) reused(kept bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending--
	if kept {
		q.kept++
	} else {
		q.wasted++
	}
}

// finish records that transaction i is done: those waiting only for it
// become ready.
func (q *readyQueue) finish(i int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.specs[i] = nil
	for _, j := range q.after[i] {
		if q.waiting[j]--; q.waiting[j] == 0 {
			heap.Push(&q.ready, j)
			q.wake.Signal()
		}
	}
}

// stop makes take return -1 from now on.
func (q *readyQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	q.wake.Broadcast()
}

// indexHeap is a min-heap of transaction indexes.
type indexHeap []int

func (h indexHeap) Len() int           { return len(h) }
func (h indexHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h indexHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *indexHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *indexHeap) Pop() any {
	old := *h
	i := old[len(old)-1]
	*h = old[:len(old)-1]
	return i
}

// admitAll is admit for a block: it returns, for each transaction, its
// refused outcome or nil when it may run, checking the signatures of the
// transactions not marked verified with VerifyAll.
func admitAll(txs []*Tx) []*Outcome {
	errs := make([]error, len(txs))
	check := make([]bool, len(txs))
	_ = workers.Each(context.Background(), len(txs), func(i int) error {
		errs[i] = txs[i].validate()
		check[i] = errs[i] == nil && !txs[i].markedVerified()
		return nil
	})
	var idx []int
	var unverified []*Tx
	for i := range txs {
		if check[i] {
			idx, unverified = append(idx, i), append(unverified, txs[i])
		}
	}
	for k, err := range VerifyAll(unverified) {
		errs[idx[k]] = err
	}
	outs := make([]*Outcome, len(txs))
	for i, tx := range txs {
		outs[i] = admission(tx, errs[i])
	}
	return outs
}

// verifyChunk bounds the transactions in one signature batch: large enough
// to share most of the batch's fixed cost, small enough that one bad
// signature sends few others to one-by-one verification.
const verifyChunk = 128

// VerifyAll returns, for each transaction, exactly the error of its
// VerifySignatures. Transactions that list their signers and a signature
// for each are checked together with keys.VerifyBatch, in chunks on
// GOMAXPROCS goroutines; a chunk whose batch fails, and every other
// transaction, are checked one by one so that each refusal names its signer.
func VerifyAll(txs []*Tx) []error {
	errs := make([]error, len(txs))
	n := len(txs)
	chunk := min(verifyChunk, max(1, (n+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
	_ = workers.Each(context.Background(), (n+chunk-1)/chunk, func(c int) error {
		part := txs[c*chunk : min(n, (c+1)*chunk)]
		var items []keys.BatchItem
		ids := make([]notes.Hash, len(part))
		for k, tx := range part {
			if !signedByAll(tx) {
				errs[c*chunk+k] = tx.VerifySignatures()
				continue
			}
			ids[k] = tx.ID()
			for j, pub := range tx.Signers {
				items = append(items, keys.BatchItem{Pub: pub, Msg: ids[k][:], Sig: tx.Signatures[j]})
			}
		}
		if keys.VerifyBatch(items) == nil {
			return nil
		}
		for k, tx := range part {
			if signedByAll(tx) {
				errs[c*chunk+k] = tx.VerifySignatures()
			}
		}
		return nil
	})
	return errs
}

// signedByAll reports whether tx lists signers and a non-empty signature
// for each: what VerifySignatures checks before any signature.
func signedByAll(tx *Tx) bool {
	if len(tx.Signers) == 0 || len(tx.Signatures) != len(tx.Signers) {
		return false
	}
	for _, sig := range tx.Signatures {
		if len(sig) == 0 {
			return false
		}
	}
	return true
}

// Conflict analysis compares pattern pairs whose prefixes nest; patterns
// with short prefixes (`*/...`) nest with everything, so an attacker's block
// of transactions with 256 such patterns each would cost comparisons
// quadratic in all the block's patterns (hours for a full block). Past
// conflictBaseWork + conflictWorkPerPattern × patterns comparisons the
// analysis stops and the block runs serially, which is always correct.
const (
	conflictBaseWork       = 1 << 16
	conflictWorkPerPattern = 16
)

// conflicts returns, for each transaction in idx, the earlier ones in idx it
// must wait for: those it conflicts with, or, when the analysis would cost
// more than its bound, the one just before it (serial order). Every state
// key a pattern matches has a text form that starts with the pattern's
// Prefix(), so two patterns can overlap only when one prefix starts the
// other; with the patterns sorted by prefix, each one is compared only with
// those whose prefix extends its own.
func conflicts(txs []*Tx, idx []int) map[int][]int {
	deps, _ := conflictsWork(txs, idx, nil)
	return deps
}

// conflictsWork is conflicts also reporting the comparisons it made, with
// extra[i] (when extra is not nil) counted among transaction i's write
// constraints: what its fee writes (feeWrites).
func conflictsWork(txs []*Tx, idx []int, extra [][]notes.Pattern) (map[int][]int, int) {
	type entry struct {
		tx     int
		write  bool
		prefix string
		p      notes.Pattern
	}
	n := 0
	for _, i := range idx {
		n += len(txs[i].Read) + len(txs[i].Write)
		if extra != nil {
			n += len(extra[i])
		}
	}
	entries := make([]entry, 0, n)
	for _, i := range idx {
		for _, p := range txs[i].Read {
			entries = append(entries, entry{i, false, p.Prefix(), p})
		}
		for _, p := range txs[i].Write {
			entries = append(entries, entry{i, true, p.Prefix(), p})
		}
		if extra != nil {
			for _, p := range extra[i] {
				entries = append(entries, entry{i, true, p.Prefix(), p})
			}
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.prefix, b.prefix) })
	deps := make(map[int][]int)
	work, budget := 0, conflictBaseWork+conflictWorkPerPattern*len(entries)
	for a := range entries {
		e := &entries[a]
		for b := a + 1; b < len(entries) && strings.HasPrefix(entries[b].prefix, e.prefix); b++ {
			if work++; work > budget {
				return serialOrder(idx), work
			}
			f := &entries[b]
			if e.tx == f.tx || !(e.write || f.write) || !notes.Overlap(e.p, f.p) {
				continue
			}
			early, late := min(e.tx, f.tx), max(e.tx, f.tx)
			deps[late] = append(deps[late], early)
		}
	}
	for i, d := range deps {
		slices.Sort(d)
		deps[i] = slices.Compact(d)
	}
	return deps, work
}

// serialOrder makes each transaction in idx wait for the one before it.
func serialOrder(idx []int) map[int][]int {
	deps := make(map[int][]int, len(idx))
	for k := 1; k < len(idx); k++ {
		deps[idx[k]] = []int{idx[k-1]}
	}
	return deps
}
