package phases

import (
	"context"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

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
// constraints overlap the other's read or write constraints; a transaction
// starts only after every earlier transaction it conflicts with has finished
// and its effects are visible. Since a transaction reads and writes only
// inside its constraints, the effects of the non-conflicting ones running
// beside it cannot change its outcome.
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
	var stop atomic.Bool
	// Not a workers pool: a transaction takes one of the GOMAXPROCS slots
	// only once its dependencies are done, so one that waits does not hold
	// a core a later, independent transaction could use.
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, i := range admitted {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, j := range deps[i] {
				<-done[j]
			}
			slots <- struct{}{}
			defer func() { <-slots }()
			if stop.Load() {
				return
			}
			outs[i], errs[i] = execute(ov, code, pool, txs[i], true)
			if errs[i] == nil && outs[i].Committed() {
				ov.apply(outs[i])
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
			stop.Store(true)
			break
		}
	}
	wg.Wait()
	return err
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
	var entries []entry
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
	sort.Slice(entries, func(a, b int) bool { return entries[a].prefix < entries[b].prefix })
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
