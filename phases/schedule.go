package phases

import (
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

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
		if out.Receipt.Status == Accepted {
			ov.apply(out)
		}
		outs[i] = out
	}
	return outs, nil
}

// ExecuteBlock gives the same outcomes as ExecuteSerial, byte for byte, but
// verifies signatures in parallel and runs transactions that do not conflict
// at the same time. Two transactions conflict when one's write constraints
// overlap the other's read or write constraints; a transaction starts only
// after every earlier transaction it conflicts with has finished and its
// effects are visible. Since a transaction reads and writes only inside its
// constraints, the effects of the non-conflicting ones running beside it
// cannot change its outcome.
func ExecuteBlock(st State, code Code, pool *vp.Pool, txs []*Tx) ([]*Outcome, error) {
	outs := make([]*Outcome, len(txs))
	parallel(len(txs), func(i int) { outs[i] = admit(txs[i]) })
	var admitted []int
	for i, out := range outs {
		if out == nil {
			admitted = append(admitted, i)
		}
	}
	deps := conflicts(txs, admitted)
	ov := newOverlay(st)
	errs := make([]error, len(txs))
	done := make([]chan struct{}, len(txs))
	for _, i := range admitted {
		done[i] = make(chan struct{})
	}
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
			outs[i], errs[i] = execute(ov, code, pool, txs[i], true)
			if errs[i] == nil && outs[i].Receipt.Status == Accepted {
				ov.apply(outs[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// parallel calls f(0) … f(n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers(n, runtime.GOMAXPROCS(0), func(next func() (int, bool)) {
		for i, ok := next(); ok; i, ok = next() {
			f(i)
		}
	})
}

// workers runs work on min(w, n) goroutines and waits for them; the calls
// of next share out 0 … n-1, each index once, then report false.
func workers(n, w int, work func(next func() (int, bool))) {
	var counter atomic.Int64
	next := func() (int, bool) {
		i := int(counter.Add(1) - 1)
		return i, i < n
	}
	var wg sync.WaitGroup
	for w = min(w, n); w > 0; w-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(next)
		}()
	}
	wg.Wait()
}

// conflicts returns, for each transaction in idx, the earlier ones in idx it
// conflicts with. Every state key a pattern matches has a text form that
// starts with the pattern's Prefix(), so two patterns can overlap only when
// one prefix starts the other; with the patterns sorted by prefix, each one
// is compared only with those whose prefix extends its own.
func conflicts(txs []*Tx, idx []int) map[int][]int {
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
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].prefix < entries[b].prefix })
	deps := make(map[int][]int)
	for a := range entries {
		e := &entries[a]
		for b := a + 1; b < len(entries) && strings.HasPrefix(entries[b].prefix, e.prefix); b++ {
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
	return deps
}
