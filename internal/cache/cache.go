// Package cache is the module's one bounded in-memory cache: compiled
// programs and chunks by source hash, state-tree nodes by hash. Its entries
// are derived from their keys (content-addressed), so a cache can only be
// fast or slow, never wrong, and what it forgets is recomputed.
//
// The policy is two generations, an approximation of least-recently-used
// that needs no list: new entries go into the current generation; when it
// is full it becomes the previous one and the old previous one is dropped;
// a hit in the previous generation moves the entry back into the current
// one. An entry used at least once per generation stays however many
// one-off entries pass through (a flood of distinct code from transactions
// cannot push out the code every wallet sends, nor one-off nodes the top of
// the state tree), and a hit in the current generation is one map lookup.
//
// A generation is full by the total size of its entries: each entry counts
// 1, or what the cache's size function says (compiled code differs in size
// by orders of magnitude, so a bound on the count alone would let a few
// large entries hold gigabytes). Decision 105.
package cache

import "sync"

// Cache is a bounded map, safe for concurrent use. The zero value holds
// nothing; make one with New or NewSized.
type Cache[K comparable, V any] struct {
	mu        sync.Mutex
	gen       int64         // size a generation holds; 0: caches nothing
	size      func(V) int64 // an entry's size; nil: 1
	cur, prev map[K]V
	curSize   int64
}

// New returns a cache that holds at most max entries, max/2 per
// generation. A max below 2 gives a cache that holds nothing.
func New[K comparable, V any](max int) *Cache[K, V] {
	return NewSized[K, V](int64(max), nil)
}

// NewSized returns a cache whose entries' sizes, as size gives them, add
// up to at most max, max/2 per generation; an entry larger than max/2 is
// not kept.
func NewSized[K comparable, V any](max int64, size func(V) int64) *Cache[K, V] {
	c := &Cache[K, V]{gen: max / 2, size: size}
	if c.gen > 0 {
		c.cur = make(map[K]V)
	}
	return c
}

// Get returns the value cached under k, and whether there was one.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	if c.gen == 0 {
		var zero V
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.prev[k]
	if ok {
		c.insert(k, v)
	}
	return v, ok
}

// Put caches v under k.
func (c *Cache[K, V]) Put(k K, v V) {
	if c.gen == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insert(k, v)
}

// Len is the number of entries held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.cur)
	for k := range c.prev {
		if _, dup := c.cur[k]; !dup {
			n++
		}
	}
	return n
}

func (c *Cache[K, V]) sizeOf(v V) int64 {
	if c.size == nil {
		return 1
	}
	return c.size(v)
}

func (c *Cache[K, V]) insert(k K, v V) {
	n := c.sizeOf(v)
	if n > c.gen {
		return
	}
	if old, ok := c.cur[k]; ok {
		c.curSize -= c.sizeOf(old)
	} else if c.curSize+n > c.gen {
		c.prev, c.cur, c.curSize = c.cur, make(map[K]V, len(c.cur)), 0 // sized as the last one: no growing
	}
	c.cur[k] = v
	c.curSize += n
}
