// Package sizedcache is a map of computed values bounded by the total size
// of what it holds, for caches of compiled code whose entries differ in size
// by orders of magnitude: a bound on the count alone would let a few large
// entries hold gigabytes.
package sizedcache

import "sync"

// Cache holds values by key while their sizes add up to at most max bytes.
// When an entry would not fit it forgets everything: it is a cache, never a
// source of truth. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu   sync.Mutex
	max  int64
	size int64
	m    map[K]entry[V]
}

type entry[V any] struct {
	v    V
	size int64
}

// New returns an empty cache bounded at max bytes.
func New[K comparable, V any](max int64) *Cache[K, V] {
	return &Cache[K, V]{max: max, m: map[K]entry[V]{}}
}

// Get returns the value kept for k, if any.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e.v, ok
}

// Put keeps v of the given size for k; a value larger than the bound is not
// kept.
func (c *Cache[K, V]) Put(k K, v V, size int64) {
	if size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		c.size -= old.size
	}
	if c.size+size > c.max {
		clear(c.m)
		c.size = 0
	}
	c.m[k] = entry[V]{v, size}
	c.size += size
}

// Size is the total size of the values kept.
func (c *Cache[K, V]) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
