// Package workers runs the calls of a loop on a bounded number of
// goroutines: the one worker pool of the module, on errgroup with SetLimit.
//
// The calls are handed out in index order, and a failure stops the handing
// out, so the error returned is the one of the lowest failing index, the
// error a serial loop that stops at its first failure would return, however
// the goroutines were scheduled.
package workers

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Each calls f(i) for every i in [0, n) on at most GOMAXPROCS goroutines
// and waits for them; see Run.
func Each(ctx context.Context, n int, f func(i int) error) error {
	return Run(ctx, n, runtime.GOMAXPROCS(0), func(_, i int) error { return f(i) })
}

// Run calls f(worker, i) for every i in [0, n) on min(limit, n) goroutines,
// numbered 0 … limit-1 (a worker's calls are one after another, so f may
// keep per-worker state indexed by worker), and waits for them. One worker
// is the calling goroutine itself.
//
// Indexes are handed out in increasing order. Once a call fails, or ctx is
// done, no further index is handed out; calls already running finish. Run
// returns the error of the lowest index whose call failed, or else ctx's
// error when ctx ended the loop early, or else nil. Every index below a
// failing one has run, so the error does not depend on scheduling.
func Run(ctx context.Context, n, limit int, f func(worker, i int) error) error {
	if n <= 0 {
		return nil
	}
	limit = max(1, min(limit, n))
	if limit == 1 { // one worker: the caller's goroutine, no group to set up
		for i := range n {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := f(0, i); err != nil {
				return err
			}
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	var (
		next   atomic.Int64
		mu     sync.Mutex
		failed = n // lowest failing index
		first  error
	)
	for w := range limit {
		g.Go(func() error {
			for gctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := f(w, i); err != nil {
					mu.Lock()
					if i < failed {
						failed, first = i, err
					}
					mu.Unlock()
					return err // cancels gctx: nothing further is handed out
				}
			}
			return nil
		})
	}
	g.Wait()
	if first != nil {
		return first
	}
	if next.Load() < int64(n) {
		return ctx.Err() // stopped early, and no call failed: ctx ended it
	}
	return nil
}
