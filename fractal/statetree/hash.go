// Package statetree is Fractal's authenticated state map: a sparse Merkle
// tree (SHA-256) over 256-bit keys with 32-byte values, its nodes stored in a
// key-value store (package kv: badger in an instance, a map for a witness),
// with inclusion and non-inclusion proofs that anyone can check offline.
//
// A subtree holding no key is empty and hashes to the zero hash; a subtree
// holding one key is that key's leaf (the leaf sits at the shortest unique
// prefix of its key, so depth grows with log2 of the number of keys, not 256);
// a subtree holding two or more keys is an internal node over its two halves.
// The shape therefore depends only on the set of (key, value) pairs, never on
// the order in which they were written. Nodes are stored content-addressed
// (store key = prefix || node hash) and never overwritten or deleted, so every
// committed root stays readable and provable. A Batch computes a chain of roots
// in memory and commits only the last one's nodes; the roots between are
// recomputed by applying the same changes again.
//
// The format is specified in docs/formats/statetree.md.
package statetree

import (
	"crypto/sha256"
	"fmt"
	"math/bits"

	"github.com/fractalvm/fractal/internal/enc"
)

// Hash is a SHA-256 digest, a key, or a value.
type Hash = [32]byte

// EmptyRoot is the root of the tree with no keys, and the hash of every empty
// subtree: 32 zero bytes. No node hashes to it (that would be a SHA-256
// preimage of zero), so it cannot be confused with a stored node.
var EmptyRoot Hash

// Node kinds; the kind byte is also the domain-separation tag hashed in front
// of the node's body, so a leaf can never pass for an internal node.
const (
	kindLeaf     byte = 0x00
	kindInternal byte = 0x01
)

// nodeSize is the length of an encoded node: kind, then two 32-byte fields.
const nodeSize = 1 + 32 + 32

// KeyBits is the key length in bits and the greatest possible depth.
const KeyBits = 256

// node is a stored node. For a leaf a and b are the key and the value; for an
// internal node they are the hashes of the left (bit 0) and right (bit 1)
// children, either of which may be EmptyRoot.
type node struct {
	kind byte
	a, b Hash
}

// encode returns the node's canonical bytes, kind ‖ a ‖ b, which are also
// its hash preimage. A fixed-size array: hashing a node allocates nothing.
func (n *node) encode() [nodeSize]byte {
	var b [nodeSize]byte
	b[0] = n.kind
	copy(b[1:33], n.a[:])
	copy(b[33:], n.b[:])
	return b
}

func (n *node) hash() Hash {
	b := n.encode()
	return sha256.Sum256(b[:])
}

// decodeNode parses stored node bytes and checks that they hash to want, so a
// corrupted store is reported instead of silently giving wrong answers.
func decodeNode(b []byte, want Hash) (*node, error) {
	r := enc.NewReader(b)
	n := &node{kind: r.U8()}
	r.Into(n.a[:])
	r.Into(n.b[:])
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("node %x: %w", want, err)
	}
	if n.kind != kindLeaf && n.kind != kindInternal {
		return nil, fmt.Errorf("node %x: unknown kind %d", want, n.kind)
	}
	if sha256.Sum256(b) != want {
		return nil, fmt.Errorf("node %x: stored bytes do not hash to the node's name", want)
	}
	return n, nil
}

// leafHash is the hash of the leaf holding key → value.
func leafHash(key, value Hash) Hash {
	n := node{kind: kindLeaf, a: key, b: value}
	return n.hash()
}

// internalHash is the hash of the internal node over left and right.
func internalHash(left, right Hash) Hash {
	n := node{kind: kindInternal, a: left, b: right}
	return n.hash()
}

// bit returns bit i of key, most significant bit of key[0] first; 0 goes left.
func bit(key *Hash, i int) byte { return (key[i/8] >> (7 - uint(i%8))) & 1 }

// commonPrefix returns the number of leading bits a and b share.
func commonPrefix(a, b *Hash) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return KeyBits
}
