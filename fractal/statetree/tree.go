package statetree

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/cache"
)

// Tree reads and writes tree nodes under one key prefix of a key-value
// store (package kv). It holds no root: every call names the root it works
// on, so any past root can be read, proved or updated. A Tree is safe for
// concurrent use; the stores passed to it follow their own rules.
type Tree struct {
	prefix []byte
	cache  *cache.Cache[Hash, *node] // nodes are named by their hash: never stale
}

// cachedNodes bounds a Tree's node cache, 131,072 nodes a generation
// (internal/cache; about 23 MB each): one generation holds the top 17
// levels of a tree, the part that every update and proof passes through,
// so a tree of up to about 65,000 keys updates without reading the store
// (decision 172).
const cachedNodes = 1 << 18

// New returns a Tree storing its nodes under prefix (copied). Callers give
// each tree a prefix that no other data in the database starts with.
func New(prefix []byte) *Tree {
	return &Tree{prefix: bytes.Clone(prefix), cache: cache.New[Hash, *node](cachedNodes)}
}

// Change sets Key to *Value, or deletes Key when Value is nil.
type Change struct {
	Key   Hash
	Value *Hash
}

// Leaf is one stored (key, value) pair.
type Leaf struct {
	Key, Value Hash
}

// storeKey is the store key of the node named h.
func (t *Tree) storeKey(h Hash) []byte {
	k := make([]byte, 0, len(t.prefix)+len(h))
	return append(append(k, t.prefix...), h[:]...)
}

// load reads the node named h (never EmptyRoot) through the cache.
func (t *Tree) load(r kv.Reader, h Hash) (*node, error) {
	if n, ok := t.cache.Get(h); ok {
		return n, nil
	}
	b, ok, err := r.Get(t.storeKey(h))
	if err != nil {
		return nil, fmt.Errorf("statetree: read node %x: %w", h, err)
	}
	if !ok {
		return nil, fmt.Errorf("statetree: node %x is missing from the store", h)
	}
	n, err := decodeNode(b, h)
	if err != nil {
		return nil, fmt.Errorf("statetree: %w", err)
	}
	t.cache.Put(h, n)
	return n, nil
}

// walk follows key's path down from root. It returns the leaf where the path
// ends (nil when it ends in an empty subtree) and, when sib is not nil,
// appends the sibling hashes met on the way, root side first.
func (t *Tree) walk(r kv.Reader, root, key Hash, sib *[]Hash) (*Leaf, error) {
	h := root
	for depth := 0; ; depth++ {
		if h == EmptyRoot {
			return nil, nil
		}
		n, err := t.load(r, h)
		if err != nil {
			return nil, err
		}
		if n.kind == kindLeaf {
			return &Leaf{Key: n.a, Value: n.b}, nil
		}
		if depth == KeyBits {
			return nil, fmt.Errorf("statetree: internal node %x below the last key bit", h)
		}
		next, other := n.a, n.b
		if bit(&key, depth) == 1 {
			next, other = n.b, n.a
		}
		if sib != nil {
			*sib = append(*sib, other)
		}
		h = next
	}
}

// Get returns the value stored for key in the tree named root.
func (t *Tree) Get(r kv.Reader, root Hash, key Hash) (value Hash, ok bool, err error) {
	leaf, err := t.walk(r, root, key, nil)
	if err != nil || leaf == nil || leaf.Key != key {
		return Hash{}, false, err
	}
	return leaf.Value, true, nil
}

// Update applies one change to the tree named root and returns the new root.
// A nil value deletes the key; deleting an absent key is an error. See
// UpdateBatch for what is written and how errors leave the transaction.
func (t *Tree) Update(s kv.Store, root Hash, key Hash, value *Hash) (Hash, error) {
	return t.UpdateBatch(s, root, []Change{{Key: key, Value: value}})
}

// UpdateBatch applies changes in order to the tree named root and returns the
// new root, the same root that applying them one by one with Update gives.
// It writes into s only the new nodes of the resulting tree (one per level
// along each changed path, shared paths once), and reads see s's earlier
// uncommitted writes, so a caller may chain roots inside one transaction.
// It is a Batch of one Apply (Begin, Apply, Commit).
//
// On a refused change (deleting a key that is absent at that point of the
// sequence; the lowest-numbered such change is reported) nothing is written.
// If the store refuses a write (a block's write past its bound, decision
// 167), the error wraps the store's and some of the new nodes may already
// be in s; they are unreachable and harmless, and the caller can commit s
// and retry the same UpdateBatch from the same root in a new transaction.
func (t *Tree) UpdateBatch(s kv.Store, root Hash, changes []Change) (Hash, error) {
	newRoot, _, err := t.updateBatch(s, root, changes)
	return newRoot, err
}

// updateBatch is UpdateBatch, also returning how many nodes it wrote.
func (t *Tree) updateBatch(s kv.Store, root Hash, changes []Change) (Hash, int, error) {
	b := t.Begin(s, root)
	newRoot, err := b.Apply(changes)
	if err != nil {
		return root, 0, err
	}
	written, err := b.Commit(s)
	if err != nil {
		return root, 0, err
	}
	return newRoot, written, nil
}

// keyChanges is the sequence of changes to one key, in the caller's order.
type keyChanges struct {
	key    Hash
	values []*Hash
	index  []int // position of each change in the caller's slice
}

// groupChanges sorts changes by key, keeping each key's changes in order.
// The groups' lists are windows of two slices in sorted order: three
// allocations for any number of changes (Apply runs once per transaction,
// on the seal's serial path).
func groupChanges(changes []Change) []keyChanges {
	idx := make([]int, len(changes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		return bytes.Compare(changes[i].Key[:], changes[j].Key[:])
	})
	values := make([]*Hash, len(changes))
	for j, i := range idx {
		values[j] = changes[i].Value
	}
	out := make([]keyChanges, 0, len(changes))
	for start := 0; start < len(idx); {
		key := changes[idx[start]].Key
		end := start + 1
		for end < len(idx) && changes[idx[end]].Key == key {
			end++
		}
		out = append(out, keyChanges{key: key, values: values[start:end:end], index: idx[start:end:end]})
		start = end
	}
	return out
}

// updater carries one Apply: the nodes it added to the batch's overlay (so
// a refusal can take them out again) and its first refusal.
type updater struct {
	b          *Batch
	made       []Hash
	superseded []Hash // subtrees that the new root no longer holds
	refused    error
	refusedI   int
}

func (u *updater) put(n node) Hash {
	h := n.hash()
	if _, ok := u.b.nodes[h]; !ok {
		u.b.nodes[h] = u.b.keep(n)
		u.made = append(u.made, h)
	}
	return h
}

func (u *updater) load(h Hash) (*node, error) { return u.b.load(h) }

// refuse records a refused change, keeping the one the caller made first.
func (u *updater) refuse(i int, key Hash) {
	if u.refused == nil || i < u.refusedI {
		u.refused = fmt.Errorf("statetree: change %d deletes key %x, which is absent", i, key)
		u.refusedI = i
	}
}

// apply returns the hash of the subtree that replaces h (found at depth)
// once changes, all of whose keys lie under h, are applied. An internal
// node it replaces is recorded as superseded: its hash names its keys and
// values, which sit at one place in a tree (its keys' common prefix), so
// no other place of the new tree holds it. A leaf is not: a leaf's hash
// does not say where it sits, and the new tree may hold it one level up or
// down.
func (u *updater) apply(h Hash, depth int, changes []keyChanges) (Hash, error) {
	if len(changes) == 0 {
		return h, nil
	}
	if h == EmptyRoot {
		return u.build(depth, u.merge(nil, changes))
	}
	n, err := u.load(h)
	if err != nil {
		return h, err
	}
	if n.kind == kindLeaf {
		return u.build(depth, u.merge(&Leaf{Key: n.a, Value: n.b}, changes))
	}
	if depth == KeyBits {
		return h, fmt.Errorf("statetree: internal node %x below the last key bit", h)
	}
	split, _ := slices.BinarySearchFunc(changes, byte(1), func(c keyChanges, b byte) int {
		return int(bit(&c.key, depth)) - int(b)
	})
	left, err := u.apply(n.a, depth+1, changes[:split])
	if err != nil {
		return h, err
	}
	right, err := u.apply(n.b, depth+1, changes[split:])
	if err != nil {
		return h, err
	}
	r, err := u.join(left, right)
	if err == nil && r != h {
		u.superseded = append(u.superseded, h)
	}
	return r, err
}

// join returns the subtree over two halves, lifting a lone leaf up to the
// shortest unique prefix so the shape stays canonical.
func (u *updater) join(left, right Hash) (Hash, error) {
	if left == EmptyRoot && right == EmptyRoot {
		return EmptyRoot, nil
	}
	if left == EmptyRoot || right == EmptyRoot {
		only := left
		if only == EmptyRoot {
			only = right
		}
		n, err := u.load(only)
		if err != nil {
			return EmptyRoot, err
		}
		if n.kind == kindLeaf {
			return only, nil
		}
	}
	return u.put(node{kind: kindInternal, a: left, b: right}), nil
}

// merge returns the sorted leaves of a subtree that held at most the leaf
// old, after changes; it records a refusal for deleting an absent key.
func (u *updater) merge(old *Leaf, changes []keyChanges) []Leaf {
	var out []Leaf
	oldUsed := old == nil
	for _, c := range changes {
		if !oldUsed && bytes.Compare(old.Key[:], c.key[:]) < 0 {
			out = append(out, *old)
			oldUsed = true
		}
		var cur *Hash
		if old != nil && old.Key == c.key {
			cur = &old.Value
			oldUsed = true
		}
		for j, v := range c.values {
			if v == nil && cur == nil {
				u.refuse(c.index[j], c.key)
			}
			cur = v
		}
		if cur != nil {
			out = append(out, Leaf{Key: c.key, Value: *cur})
		}
	}
	if !oldUsed {
		out = append(out, *old)
	}
	return out
}

// build stores the canonical subtree at depth holding exactly leaves
// (sorted, distinct keys sharing their first depth bits) and returns its hash.
func (u *updater) build(depth int, leaves []Leaf) (Hash, error) {
	switch len(leaves) {
	case 0:
		return EmptyRoot, nil
	case 1:
		return u.put(node{kind: kindLeaf, a: leaves[0].Key, b: leaves[0].Value}), nil
	}
	if depth == KeyBits {
		return EmptyRoot, fmt.Errorf("statetree: duplicate key %x", leaves[0].Key)
	}
	split, _ := slices.BinarySearchFunc(leaves, byte(1), func(l Leaf, b byte) int {
		return int(bit(&l.Key, depth)) - int(b)
	})
	left, err := u.build(depth+1, leaves[:split])
	if err != nil {
		return EmptyRoot, err
	}
	right, err := u.build(depth+1, leaves[split:])
	if err != nil {
		return EmptyRoot, err
	}
	return u.put(node{kind: kindInternal, a: left, b: right}), nil
}
