package statetree

import "sync"

// defaultCacheEntries bounds each generation of a Tree's node cache: about
// 2×32768 nodes, some 10 MB, which holds the top 15 levels of a tree, the
// part that every update and proof passes through.
const defaultCacheEntries = 1 << 15

// nodeCache keeps recently used nodes by hash. Nodes are content-addressed
// and immutable, so an entry can never be stale. It approximates LRU with two
// generations: when the current one fills, it becomes the previous one and
// the old previous one is dropped; a hit in the previous generation moves
// the node to the current one, so nodes in constant use (the upper levels)
// survive while the rest rotates out.
type nodeCache struct {
	mu        sync.Mutex
	max       int
	cur, prev map[Hash]*node
}

func newNodeCache(max int) *nodeCache {
	return &nodeCache{max: max, cur: map[Hash]*node{}}
}

func (c *nodeCache) get(h Hash) *node {
	if c.max == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.cur[h]; ok {
		return n
	}
	n, ok := c.prev[h]
	if ok {
		c.insert(h, n)
	}
	return n
}

func (c *nodeCache) put(h Hash, n *node) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insert(h, n)
}

func (c *nodeCache) insert(h Hash, n *node) {
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[Hash]*node, c.max)
	}
	c.cur[h] = n
}
