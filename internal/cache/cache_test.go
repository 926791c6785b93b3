package cache

import (
	"sync"
	"testing"
)

// TestBound: however many entries go in, at most max are held, split over
// the two generations.
func TestBound(t *testing.T) {
	c := New[int, int](64)
	for i := range 10_000 {
		c.Put(i, i)
		if len(c.cur) > 32 || len(c.prev) > 32 || c.Len() > 64 {
			t.Fatalf("after %d puts: %d current, %d previous, %d held; want at most 32, 32, 64", i+1, len(c.cur), len(c.prev), c.Len())
		}
	}
	// The last generation's worth of entries is still there, the first not.
	for i := 10_000 - 32; i < 10_000; i++ {
		if v, ok := c.Get(i); !ok || v != i {
			t.Fatalf("recent entry %d: %d, %v", i, v, ok)
		}
	}
	if _, ok := c.Get(0); ok {
		t.Fatal("the first entry survived 10,000 others")
	}
}

// TestHotEntrySurvivesFlood: an entry used once per generation stays while
// a flood of one-off entries passes through (what a cache that forgets
// everything when full cannot do), and one not used is forgotten.
func TestHotEntrySurvivesFlood(t *testing.T) {
	c := New[string, int](16)
	c.Put("hot", 1)
	c.Put("cold", 2)
	for i := range 1000 {
		c.Put(string(rune('a'+i%26))+string(rune(i)), i)
		if i%8 == 0 {
			if v, ok := c.Get("hot"); !ok || v != 1 {
				t.Fatalf("hot entry lost after %d one-off entries", i+1)
			}
		}
	}
	if _, ok := c.Get("cold"); ok {
		t.Fatal("an entry never used again survived 1,000 others")
	}
}

// TestOverwrite: putting a key again replaces its value and takes no
// second place.
func TestOverwrite(t *testing.T) {
	c := New[int, string](4)
	c.Put(1, "a")
	c.Put(1, "b")
	c.Put(2, "c")
	if v, _ := c.Get(1); v != "b" || c.Len() != 2 || c.prev != nil {
		t.Fatalf("value %q, %d held, previous generation %v", v, c.Len(), c.prev)
	}
}

// TestTooSmallHoldsNothing: a bound below 2 caches nothing.
func TestTooSmallHoldsNothing(t *testing.T) {
	for _, max := range []int{-1, 0, 1} {
		c := New[int, int](max)
		c.Put(1, 1)
		if _, ok := c.Get(1); ok || c.Len() != 0 {
			t.Fatalf("max %d: held an entry", max)
		}
	}
}

// TestConcurrent: many goroutines putting and getting (run with -race).
func TestConcurrent(t *testing.T) {
	c := New[int, int](100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := (g*7919 + i) % 300
				if v, ok := c.Get(k); ok && v != k*k {
					t.Errorf("key %d holds %d", k, v)
					return
				}
				c.Put(k, k*k)
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 100 {
		t.Fatalf("%d held, max 100", n)
	}
}

// TestSized: a generation is full by the sizes of its entries; an entry
// larger than a generation is not kept; replacing an entry counts its new
// size only.
func TestSized(t *testing.T) {
	c := NewSized[string, int64](200, func(v int64) int64 { return v })
	c.Put("a", 60)
	c.Put("b", 40) // current generation: 100 of 100
	if c.prev != nil || c.curSize != 100 {
		t.Fatalf("after a, b: previous %v, current size %d", c.prev, c.curSize)
	}
	c.Put("b", 30) // replaced: 90
	if c.curSize != 90 || c.prev != nil {
		t.Fatalf("b replaced: current size %d, previous %v", c.curSize, c.prev)
	}
	c.Put("c", 20) // 110 > 100: a new generation
	if len(c.prev) != 2 || len(c.cur) != 1 || c.curSize != 20 {
		t.Fatalf("after c: %d previous, %d current, size %d", len(c.prev), len(c.cur), c.curSize)
	}
	c.Put("huge", 101)
	if _, ok := c.Get("huge"); ok {
		t.Fatal("an entry larger than a generation was kept")
	}
	if v, ok := c.Get("a"); !ok || v != 60 {
		t.Fatalf("a from the previous generation: %d, %v", v, ok)
	}
}
