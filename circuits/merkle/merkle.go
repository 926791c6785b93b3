// Package merkle is the shielded pool's append-only commitment tree: depth 32
// over the Poseidon2 Compress, kept natively as a frontier (one node per
// level) with authentication paths ("witnesses") for the leaves a wallet
// tracks, and checked in-circuit by the path gadget in gadget.go.
//
// Domain separation: a leaf is a note commitment, the last state of a
// Hash(TagNote; ...) chain of fixed length; an internal node is
// Compress(left, right) of two values of the level below; an empty leaf is
// the constant EmptyLeaf. Leaves and nodes collide only through a Compress
// collision or a preimage of a tag, and paths always have exactly Depth
// steps, so a node cannot be presented as a leaf.
package merkle

import (
	"errors"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/poseidon"
	"github.com/fractalvm/fractal/internal/enc"
)

// Depth is the number of levels between a leaf and the root.
const Depth = 32

// Capacity is the number of leaves the tree holds.
const Capacity = uint64(1) << Depth

// EmptyLeaf fills positions not yet appended.
var EmptyLeaf = poseidon.NewTag("fractal.shielded.empty.v1").Element()

// empty[i] is the root of an all-empty subtree of height i.
var empty = func() [Depth + 1]fr.Element {
	var e [Depth + 1]fr.Element
	e[0] = EmptyLeaf
	for i := 1; i <= Depth; i++ {
		e[i] = poseidon.Compress(e[i-1], e[i-1])
	}
	return e
}()

// EmptyRoot is the root of the tree with no leaves.
func EmptyRoot() fr.Element { return empty[Depth] }

// ErrFull reports an append to a tree holding Capacity leaves.
var ErrFull = errors.New("merkle: tree full")

// Path is the authentication path of one leaf: its position and the sibling
// at each level, leaf level first.
type Path struct {
	Position uint64
	Siblings [Depth]fr.Element
}

// Root returns the root that leaf and the path lead to.
func (p Path) Root(leaf fr.Element) fr.Element {
	cur := leaf
	for i := 0; i < Depth; i++ {
		if p.Position>>i&1 == 1 {
			cur = poseidon.Compress(p.Siblings[i], cur)
		} else {
			cur = poseidon.Compress(cur, p.Siblings[i])
		}
	}
	return cur
}

// Tree is the append-only tree. The zero value is not ready: use New.
// It keeps the frontier (the last left node of each level), the current root,
// and the witnesses of tracked leaves, which every Append keeps current.
type Tree struct {
	size     uint64
	last     fr.Element // the last leaf appended
	frontier [Depth]fr.Element
	root     fr.Element
	tracked  []*Path // ascending positions
}

// New returns an empty tree.
func New() *Tree { return &Tree{root: EmptyRoot()} }

// Size returns the number of leaves appended.
func (t *Tree) Size() uint64 { return t.size }

// Root returns the current root.
func (t *Tree) Root() fr.Element { return t.root }

// Append adds leaf at position Size() and returns that position. If track is
// set, the tree keeps the leaf's witness current from now on (see Witness).
// Cost: Depth compressions, plus O(1) per tracked leaf.
func (t *Tree) Append(leaf fr.Element, track bool) (uint64, error) {
	if t.size == Capacity {
		return 0, ErrFull
	}
	pos := t.size
	var w *Path
	if track {
		w = &Path{Position: pos}
	}
	// Walk up from the leaf: ancestors[i] is the height-i subtree holding pos,
	// right-padded with empty subtrees.
	cur := leaf
	for i := 0; i < Depth; i++ {
		if pos>>i&1 == 1 {
			if w != nil {
				w.Siblings[i] = t.frontier[i]
			}
			t.updateWitnesses(pos, i, cur)
			cur = poseidon.Compress(t.frontier[i], cur)
		} else {
			if w != nil {
				w.Siblings[i] = empty[i]
			}
			t.updateWitnesses(pos, i, cur)
			t.frontier[i] = cur
			cur = poseidon.Compress(cur, empty[i])
		}
	}
	t.root = cur
	t.last = leaf
	t.size++
	if w != nil {
		t.tracked = append(t.tracked, w)
	}
	return pos, nil
}

// AppendBatch appends leaves at positions Size(), Size()+1, … and leaves
// the tree exactly as that many Append calls would: same root, frontier and
// witnesses, leaf j tracked when track (if not nil) says so. It returns the
// first leaf's position. It computes each new node once, level by level:
// about len(leaves) + Depth compressions instead of Depth per leaf. A batch
// that does not fit is refused whole with ErrFull.
func (t *Tree) AppendBatch(leaves []fr.Element, track func(j int) bool) (uint64, error) {
	first, n := t.size, uint64(len(leaves))
	if n == 0 {
		return first, nil
	}
	if n > Capacity-t.size {
		return 0, ErrFull
	}
	last := first + n - 1
	var fresh []*Path
	for j := range leaves {
		if track != nil && track(j) {
			fresh = append(fresh, &Path{Position: first + uint64(j)})
		}
	}
	// level holds the nodes of height i at indices lo, lo+1, …: every node
	// of that height that holds a new leaf.
	level, lo := leaves, first
	for i := 0; i < Depth; i++ {
		hi := lo + uint64(len(level)) - 1
		// node is the value of the height-i node at index k. Left of the
		// new nodes only lo-1 is ever asked for (when lo is odd): a
		// complete subtree, which the frontier holds; right of them all is
		// still empty.
		node := func(k uint64) fr.Element {
			switch {
			case k < lo:
				return t.frontier[i]
			case k > hi:
				return empty[i]
			}
			return level[k-lo]
		}
		for _, w := range t.tracked {
			if sib := w.Position>>i ^ 1; sib >= lo && sib <= hi {
				w.Siblings[i] = level[sib-lo]
			}
		}
		for _, w := range fresh {
			w.Siblings[i] = node(w.Position>>i ^ 1)
		}
		up := make([]fr.Element, hi>>1-lo>>1+1)
		for p := lo >> 1; p <= hi>>1; p++ {
			up[p-lo>>1] = poseidon.Compress(node(2*p), node(2*p+1))
		}
		// The frontier keeps the left node of the last leaf's pair at this
		// height (the last leaf's own node when it is a left child).
		if k := last >> i; k&1 == 0 {
			t.frontier[i] = level[k-lo]
		} else if k-1 >= lo {
			t.frontier[i] = level[k-1-lo]
		}
		level, lo = up, lo>>1
	}
	t.root = level[0]
	t.last = leaves[n-1]
	t.size += n
	t.tracked = append(t.tracked, fresh...)
	return first, nil
}

// Clone returns a deep copy of the tree: appending to one leaves the other
// as it was.
func (t *Tree) Clone() *Tree {
	c := *t
	c.tracked = make([]*Path, len(t.tracked))
	for i, p := range t.tracked {
		cp := *p
		c.tracked[i] = &cp
	}
	return &c
}

// updateWitnesses sets, in every tracked witness whose sibling at height i is
// the subtree now holding pos, that sibling to node (the subtree's new value).
func (t *Tree) updateWitnesses(pos uint64, i int, node fr.Element) {
	for _, w := range t.tracked {
		if w.Position>>i^1 == pos>>i {
			w.Siblings[i] = node
		}
	}
}

// Witness returns the current authentication path of a tracked leaf.
func (t *Tree) Witness(pos uint64) (Path, error) {
	for _, w := range t.tracked {
		if w.Position == pos {
			return *w, nil
		}
	}
	return Path{}, fmt.Errorf("merkle: position %d not tracked", pos)
}

// Forget stops tracking pos (for example once the note is spent).
func (t *Tree) Forget(pos uint64) {
	for i, w := range t.tracked {
		if w.Position == pos {
			t.tracked = append(t.tracked[:i], t.tracked[i+1:]...)
			return
		}
	}
}

// Encoding of a tree: version byte, size (u64), the last leaf, the frontier
// (Depth elements), the number of tracked witnesses (u32) and each witness as
// position (u64) and Depth siblings. The root is recomputed, not stored.
const treeVersion = 1

// maxTracked bounds the witness count a decoder accepts.
const maxTracked = 1 << 20

// MarshalBinary encodes the tree.
func (t *Tree) MarshalBinary() ([]byte, error) {
	w := enc.NewWriter(1 + 8 + 32 + Depth*32 + 4 + len(t.tracked)*(8+Depth*32))
	w.U8(treeVersion)
	w.U64(t.size)
	lb := t.last.Bytes()
	w.Fixed(lb[:])
	for i := range t.frontier {
		b := t.frontier[i].Bytes()
		w.Fixed(b[:])
	}
	w.U32(uint32(len(t.tracked)))
	for _, p := range t.tracked {
		w.U64(p.Position)
		for i := range p.Siblings {
			b := p.Siblings[i].Bytes()
			w.Fixed(b[:])
		}
	}
	return w.Bytes(), nil
}

// UnmarshalBinary decodes MarshalBinary's output and recomputes the root. It
// refuses another version, non-canonical elements, a size over Capacity,
// witnesses out of order or not below size, truncation and trailing bytes.
func (t *Tree) UnmarshalBinary(b []byte) error {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != treeVersion {
		return fmt.Errorf("merkle: decode: unknown version %d", v)
	}
	out := Tree{size: r.U64()}
	if r.Err() == nil && out.size > Capacity {
		r.Fail(fmt.Errorf("size %d over capacity", out.size))
	}
	out.last = readElement(r)
	for i := range out.frontier {
		out.frontier[i] = readElement(r)
	}
	n := r.Count(maxTracked, "witnesses")
	for k := 0; k < n && r.Err() == nil; k++ {
		p := &Path{Position: r.U64()}
		if r.Err() == nil && (p.Position >= out.size || (k > 0 && p.Position <= out.tracked[k-1].Position)) {
			r.Fail(fmt.Errorf("witness position %d out of order or not below size", p.Position))
		}
		for i := range p.Siblings {
			p.Siblings[i] = readElement(r)
		}
		out.tracked = append(out.tracked, p)
	}
	if err := r.Finish(); err != nil {
		return fmt.Errorf("merkle: decode: %w", err)
	}
	out.root = out.rootFromFrontier()
	*t = out
	return nil
}

// rootFromFrontier recomputes the root from the last leaf's path: its left
// siblings are complete subtrees held in the frontier, its right siblings are
// empty.
func (t *Tree) rootFromFrontier() fr.Element {
	if t.size == 0 {
		return EmptyRoot()
	}
	return t.lastPath().Root(t.last)
}

// lastPath is the current authentication path of the last leaf.
func (t *Tree) lastPath() Path {
	p := Path{Position: t.size - 1}
	for i := 0; i < Depth; i++ {
		if p.Position>>i&1 == 1 {
			p.Siblings[i] = t.frontier[i]
		} else {
			p.Siblings[i] = empty[i]
		}
	}
	return p
}

func readElement(r *enc.Reader) fr.Element {
	b := r.Fixed(fr.Bytes)
	var e fr.Element
	if r.Err() != nil {
		return e
	}
	if err := e.SetBytesCanonical(b); err != nil {
		r.Fail(errors.New("field element not canonical"))
	}
	return e
}
