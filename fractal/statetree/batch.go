package statetree

import (
	"fmt"

	"github.com/fractalvm/fractal/fractal/kv"
)

// Batch computes a chain of roots over a stored tree in memory and writes
// only what the last one needs. Each Apply starts from the root the previous
// one returned and keeps its new nodes in an in-memory overlay; Commit then
// writes into the transaction only the overlay nodes reachable from the
// final root. Nodes of intermediate roots that later changes superseded are
// never written, so an intermediate root can be recomputed (by applying the
// same changes again from a stored root) but not read back from the store.
// Apply writes nothing, so roots can be computed over a read-only view.
//
// A Batch belongs to one goroutine.
type Batch struct {
	t     *Tree
	r     kv.Reader
	root  Hash
	nodes map[Hash]*node // made by Apply and not yet written
	slab  []node         // where keep puts new nodes
	u     updater        // the last Apply's
}

// keep returns n in memory that lives as long as the nodes that refer to
// it: nodes are made in slabs, not one allocation each (a transfer makes
// about 40).
func (b *Batch) keep(n node) *node {
	if len(b.slab) == cap(b.slab) {
		b.slab = make([]node, 0, nodeSlab)
	}
	b.slab = append(b.slab, n)
	return &b.slab[len(b.slab)-1]
}

// nodeSlab is how many nodes keep allocates at once.
const nodeSlab = 256

// Begin starts a Batch on the tree named root, reading stored nodes
// through r.
func (t *Tree) Begin(r kv.Reader, root Hash) *Batch {
	return &Batch{t: t, r: r, root: root, nodes: map[Hash]*node{}}
}

// Root returns the root after the last accepted Apply.
func (b *Batch) Root() Hash { return b.root }

// Apply applies changes in order to the batch's current root and returns
// the new root, the same root Tree.UpdateBatch gives from that root. On a
// refused change (deleting a key that is absent at that point; the
// lowest-numbered such change is reported) the batch's root and overlay
// stay as they were. Nothing is written until Commit.
func (b *Batch) Apply(changes []Change) (Hash, error) {
	if len(changes) == 0 {
		return b.root, nil
	}
	u := &b.u
	*u = updater{b: b, made: u.made[:0], superseded: u.superseded[:0]} // the lists' room is reused
	newRoot, err := u.apply(b.root, 0, groupChanges(changes))
	if err == nil {
		err = u.refused
	}
	if err != nil {
		for _, h := range u.made {
			delete(b.nodes, h)
		}
		return b.root, err
	}
	// A superseded internal node is not in the new root (updater.apply),
	// and a later Apply that makes it again puts it back: the overlay keeps
	// the current root's nodes and the leaves made since Begin, so it does
	// not grow with every intermediate root.
	for _, h := range u.superseded {
		delete(b.nodes, h)
	}
	b.root = newRoot
	return newRoot, nil
}

// Commit writes into w the overlay nodes reachable from the current root
// (the stored tree, which w must extend, holds every other node it
// reaches) and returns how many it wrote. The batch stays usable: later
// Applies go on from the same root. If w refuses a write (a block's
// write past its bound, decision 167), the error wraps w's; the nodes already set are
// harmless, as for UpdateBatch, and the batch must not be used again.
func (b *Batch) Commit(w kv.Writer) (int, error) {
	written := 0
	// One allocation holds every key and value a store may keep until its
	// transaction ends; the overlay's size bounds what is written.
	slab := make([]byte, 0, len(b.nodes)*(len(b.t.prefix)+len(Hash{})+nodeSize))
	// Depth-first from the root; a child that is not in the overlay was
	// read from the store (or is empty), and so is everything below it.
	stack := []Hash{b.root}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n, ok := b.nodes[h]
		if !ok {
			continue
		}
		delete(b.nodes, h) // a subtree shared twice is written once
		raw := n.encode()
		k := len(slab)
		slab = append(append(slab, b.t.prefix...), h[:]...)
		v := len(slab)
		slab = append(slab, raw[:]...)
		if err := w.Set(slab[k:v:v], slab[v:len(slab):len(slab)]); err != nil {
			return written, fmt.Errorf("statetree: write node %x: %w", h, err)
		}
		b.t.cache.Put(h, n)
		written++
		if n.kind == kindInternal {
			stack = append(stack, n.b, n.a)
		}
	}
	clear(b.nodes) // superseded: unreachable from the root
	return written, nil
}

// load reads the node named h (never EmptyRoot) from the overlay or the
// store.
func (b *Batch) load(h Hash) (*node, error) {
	if n, ok := b.nodes[h]; ok {
		return n, nil
	}
	return b.t.load(b.r, h)
}
