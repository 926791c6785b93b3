// Package poseidon is Fractal's SNARK-friendly hash on the BN254 scalar field:
// the Poseidon2 2-to-1 compression function (width 2, 6 full and 50 partial
// rounds, gnark-crypto's default parameters) and a domain-tagged
// Merkle–Damgård chain over it. Every function exists twice, natively on
// fr.Element and as a gnark gadget on frontend.Variable, and the two compute
// the same values (see the agreement test).
package poseidon

import (
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	p2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// Tag is a domain-separation constant: the big-endian integer value of a short
// ASCII label. Each use of the hash starts its chain from a different tag, so a
// value made for one purpose cannot be passed off as a value of another
// without a preimage of the tag or a collision of Compress.
type Tag fr.Element

// NewTag returns the tag for label, which must be at most 31 bytes so that
// it is below the field modulus.
func NewTag(label string) Tag {
	if len(label) > 31 {
		panic("poseidon: tag label longer than 31 bytes") // programming error, labels are constants
	}
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes([]byte(label)))
	return Tag(e)
}

// Element returns the tag as a field element.
func (t Tag) Element() fr.Element { return fr.Element(t) }

var perm = p2.NewDefaultPermutation()

// Compress is the Poseidon2 2-to-1 compression: the right lane of the
// permutation of (left, right), plus right (feed-forward). It equals
// gnark-crypto's Permutation.Compress and gnark's std gadget Compress.
func Compress(left, right fr.Element) fr.Element {
	x := [2]fr.Element{left, right}
	if err := perm.Permutation(x[:]); err != nil {
		panic(err) // cannot happen: the buffer has the permutation's width
	}
	var out fr.Element
	out.Add(&x[1], &right)
	return out
}

// Hash is the tagged chain s = tag; s = Compress(s, x) for each x in order.
// It costs one Compress per input; the number of inputs is fixed by each use,
// so chains of different purposes never share a prefix.
func Hash(tag Tag, xs ...fr.Element) fr.Element {
	s := tag.Element()
	for _, x := range xs {
		s = Compress(s, x)
	}
	return s
}
