package workers

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunCallsEachIndexOnceWithinLimit: every index once, never more than
// limit calls at a time, and a worker's calls one after another.
func TestRunCallsEachIndexOnceWithinLimit(t *testing.T) {
	const n, limit = 1000, 3
	var calls [n]atomic.Int32
	var busy [limit]atomic.Int32
	var running, peak atomic.Int32
	err := Run(t.Context(), n, limit, func(w, i int) error {
		if busy[w].Add(1) != 1 {
			t.Errorf("worker %d runs two calls at once", w)
		}
		for r, p := running.Add(1), peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
		}
		calls[i].Add(1)
		time.Sleep(time.Microsecond)
		running.Add(-1)
		busy[w].Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range calls {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("index %d called %d times", i, c)
		}
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d calls at once, limit %d", p, limit)
	}
}

// TestRunReturnsLowestFailingIndex: when a late index fails first in time,
// Run still returns the error of the earliest failing index, every time.
func TestRunReturnsLowestFailingIndex(t *testing.T) {
	for range 20 {
		err := Run(t.Context(), 100, 4, func(_, i int) error {
			switch i {
			case 7:
				time.Sleep(5 * time.Millisecond) // fails last in time
				return fmt.Errorf("index %d", i)
			case 9, 30:
				return fmt.Errorf("index %d", i)
			}
			return nil
		})
		if err == nil || err.Error() != "index 7" {
			t.Fatalf("err %v, want index 7", err)
		}
	}
}

// TestRunStopsAfterFailure: after a failure no further index is handed out.
func TestRunStopsAfterFailure(t *testing.T) {
	var calls atomic.Int32
	boom := errors.New("boom")
	err := Run(t.Context(), 100000, 2, func(_, i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if c := calls.Load(); c < 11 || c > 1000 {
		t.Fatalf("%d calls after index 10 failed, want 11 up to a few more", c)
	}
}

// TestRunCancelled: a done context stops the loop with its error.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	if err := Each(ctx, 10, func(int) error { called = true; return nil }); !errors.Is(err, context.Canceled) || called {
		t.Fatalf("err %v, called %v; want context.Canceled and no call", err, called)
	}

	ctx, cancel = context.WithCancel(t.Context())
	var calls atomic.Int32
	err := Run(ctx, 100000, 2, func(_, i int) error {
		if calls.Add(1) == 50 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if c := calls.Load(); c >= 100000 {
		t.Fatalf("all %d calls ran after cancel", c)
	}
	// A loop that finished is not failed by a later cancel.
	if err := Each(context.Background(), 0, func(int) error { return errors.New("no call") }); err != nil {
		t.Fatal(err)
	}
}

// TestRunOneWorker: with one worker the calls run in order on the caller's
// goroutine, stop at the first failure, and see a cancel at once.
func TestRunOneWorker(t *testing.T) {
	var order []int
	boom := errors.New("boom")
	err := Run(t.Context(), 10, 1, func(w, i int) error {
		if w != 0 {
			t.Errorf("worker %d", w)
		}
		order = append(order, i) // no lock: one goroutine
		if i == 4 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || fmt.Sprint(order) != "[0 1 2 3 4]" {
		t.Fatalf("err %v, calls %v", err, order)
	}
	ctx, cancel := context.WithCancel(t.Context())
	order = nil
	err = Run(ctx, 10, 1, func(_, i int) error {
		order = append(order, i)
		if i == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || fmt.Sprint(order) != "[0 1 2]" {
		t.Fatalf("err %v, calls %v", err, order)
	}
}
