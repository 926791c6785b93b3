package statetree

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/fractalvm/fractal/fractal/kv"
)

// MaxWitnessNodes bounds the nodes PutWitness accepts: enough for the paths
// of a few thousand keys, far below what could exhaust memory.
const MaxWitnessNodes = 1 << 20

// Witness returns the stored encodings of the nodes that reading keys in
// the tree named root, and then changing them, needs: every node on each
// key's path and the node beside the path at every level (a deletion may
// lift that node up). The result is sorted and free of duplicates, so one
// set of keys has one witness. A verifier who holds only root loads the
// witness into an empty store with PutWitness and can then Get, Prove and
// UpdateBatch those keys from root exactly as the full tree would; a read
// that strays off the witnessed paths fails with a missing-node error.
func (t *Tree) Witness(r kv.Reader, root Hash, keys []Hash) ([][]byte, error) {
	seen := map[Hash]bool{}
	var out [][]byte
	add := func(h Hash) (*node, error) {
		n, err := t.load(r, h)
		if err != nil {
			return nil, err
		}
		if !seen[h] {
			seen[h] = true
			raw := n.encode()
			out = append(out, raw[:])
		}
		return n, nil
	}
	for _, key := range keys {
		h := root
		for depth := 0; h != EmptyRoot; depth++ {
			n, err := add(h)
			if err != nil {
				return nil, err
			}
			if n.kind == kindLeaf {
				break
			}
			if depth == KeyBits {
				return nil, fmt.Errorf("statetree: internal node %x below the last key bit", h)
			}
			next, other := n.a, n.b
			if bit(&key, depth) == 1 {
				next, other = n.b, n.a
			}
			if other != EmptyRoot {
				if _, err := add(other); err != nil {
					return nil, err
				}
			}
			h = next
		}
	}
	slices.SortFunc(out, func(a, b []byte) int { return slices.Compare(a, b) })
	return out, nil
}

// PutWitness stores witness nodes into w under t's prefix. Each node is
// stored under the hash of its bytes, so a node that does not belong to the
// tree can only add unreachable entries, never change what root names; a
// malformed node is refused and nothing is written.
func (t *Tree) PutWitness(w kv.Writer, nodes [][]byte) error {
	if len(nodes) > MaxWitnessNodes {
		return fmt.Errorf("statetree: witness has %d nodes, limit %d", len(nodes), MaxWitnessNodes)
	}
	for i, b := range nodes {
		if _, err := decodeNode(b, sha256.Sum256(b)); err != nil {
			return fmt.Errorf("statetree: witness node %d: %w", i, err)
		}
	}
	for _, b := range nodes {
		h := sha256.Sum256(b)
		if err := w.Set(t.storeKey(h), b); err != nil {
			return fmt.Errorf("statetree: witness: %w", err)
		}
	}
	return nil
}
