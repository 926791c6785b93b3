package statetree

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/enc"
)

// proofVersion is the first byte of an encoded proof.
const proofVersion = 1

// Proof shows that a key holds a value, or holds none, in the tree named by
// a root. It is the key's path from the root: the sibling hash at each level,
// and what the path ends in (a leaf, or an empty subtree). The key and the
// root are not part of the proof; the verifier brings them.
type Proof struct {
	// Siblings[i] is the hash of the subtree beside the path at depth i+1
	// (the child of the depth-i node on the side the key does not take);
	// EmptyRoot for an empty one.
	Siblings []Hash
	// Leaf is the leaf where the path ends, nil if it ends in an empty
	// subtree. Its key is the proved key (inclusion) or another key sharing
	// the first len(Siblings) bits (non-inclusion).
	Leaf *Leaf
}

// Prove returns the proof for key in the tree named root: an inclusion proof
// if the key is present, a non-inclusion proof otherwise.
func (t *Tree) Prove(r kv.Reader, root Hash, key Hash) (*Proof, error) {
	p := &Proof{}
	leaf, err := t.walk(r, root, key, &p.Siblings)
	if err != nil {
		return nil, err
	}
	p.Leaf = leaf
	return p, nil
}

// Encode returns the proof's canonical bytes (docs/formats/statetree.md).
func (p *Proof) Encode() []byte {
	n := len(p.Siblings)
	bitmap := make([]byte, (n+7)/8)
	for i, s := range p.Siblings {
		if s != EmptyRoot {
			bitmap[i/8] |= 0x80 >> (i % 8)
		}
	}
	w := enc.NewWriter(1 + 4 + len(bitmap) + 32*n + 1 + 64)
	w.U8(proofVersion)
	w.U32(uint32(n))
	w.Fixed(bitmap)
	for _, s := range p.Siblings {
		if s != EmptyRoot {
			w.Fixed(s[:])
		}
	}
	w.Bool(p.Leaf != nil)
	if p.Leaf != nil {
		w.Fixed(p.Leaf.Key[:])
		w.Fixed(p.Leaf.Value[:])
	}
	return w.Bytes()
}

// DecodeProof parses an encoded proof, refusing any encoding other than the
// canonical one, so one proof has exactly one encoding.
func DecodeProof(b []byte) (*Proof, error) {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != proofVersion {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	n := r.Count(KeyBits, "siblings")
	bitmap := r.Fixed((n + 7) / 8)
	p := &Proof{}
	if r.Err() == nil {
		if n%8 != 0 && bitmap[n/8]<<(n%8) != 0 {
			r.Fail(errors.New("bitmap padding bits are not zero"))
		}
		p.Siblings = make([]Hash, n)
	}
	for i := range p.Siblings {
		if bitmap[i/8]&(0x80>>(i%8)) == 0 {
			continue
		}
		r.Into(p.Siblings[i][:])
		if r.Err() == nil && p.Siblings[i] == EmptyRoot {
			r.Fail(fmt.Errorf("sibling %d is written out but empty", i))
		}
	}
	if r.Bool() {
		p.Leaf = &Leaf{}
		r.Into(p.Leaf.Key[:])
		r.Into(p.Leaf.Value[:])
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("statetree: decode proof: %w", err)
	}
	return p, nil
}

// ProvenValue checks p against root for key and returns what it proves: the
// key's value, or nil when it proves the key absent.
func ProvenValue(root Hash, key Hash, p *Proof) (*Hash, error) {
	if p == nil {
		return nil, errors.New("statetree: no proof")
	}
	d := len(p.Siblings)
	if d > KeyBits {
		return nil, fmt.Errorf("statetree: proof has %d levels, more than %d", d, KeyBits)
	}
	h := EmptyRoot
	var value *Hash
	if p.Leaf != nil {
		if p.Leaf.Key == key {
			v := p.Leaf.Value
			value = &v
		} else if commonPrefix(&p.Leaf.Key, &key) < d {
			return nil, fmt.Errorf("statetree: proof ends in the leaf of key %x, which is off key %x's path", p.Leaf.Key, key)
		}
		h = leafHash(p.Leaf.Key, p.Leaf.Value)
	}
	for i := d - 1; i >= 0; i-- {
		if bit(&key, i) == 0 {
			h = internalHash(h, p.Siblings[i])
		} else {
			h = internalHash(p.Siblings[i], h)
		}
	}
	if h != root {
		return nil, fmt.Errorf("statetree: proof for key %x leads to root %x, not %x", key, h, root)
	}
	return value, nil
}

// VerifyProof checks that p shows key holding *value in the tree named root,
// or, when value is nil, that p shows key absent from it.
func VerifyProof(root Hash, key Hash, value *Hash, p *Proof) error {
	got, err := ProvenValue(root, key, p)
	if err != nil {
		return err
	}
	switch {
	case value == nil && got != nil:
		return fmt.Errorf("statetree: proof shows key %x present with value %x, not absent", key, *got)
	case value != nil && got == nil:
		return fmt.Errorf("statetree: proof shows key %x absent, not holding %x", key, *value)
	case value != nil && !bytes.Equal(value[:], got[:]):
		return fmt.Errorf("statetree: proof shows key %x holding %x, not %x", key, *got, *value)
	}
	return nil
}
