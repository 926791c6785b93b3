package fractal

import (
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/fractal/chain"
)

// importCertified checks a certified manifest file from another copy of
// this validator-set instance (decision 138): every block must be of this
// instance and certified by its certificate against the instance's
// validator set (the set its trust entry names: the header's validators,
// more than two thirds of their power signing, its app hash the block's),
// or the whole file is refused with the first block's reason. Each block
// is then compared with this chain: one it holds is known, one above its
// head is ahead (consensus brings it), one that differs from this chain's
// block at its height is a fork signed by the validators, refused with its
// height. Nothing is stored: the validators' commits, not imported files,
// are what a validator's chain answers to.
func (in *Instance) importCertified(blocks []*chain.Block, certs [][]byte) (*ImportResult, error) {
	if certs == nil {
		return nil, errors.New("fractal: manifest import: the file holds signed blocks; this validator-set instance's blocks are certified by its validators' commits (a certified manifest file, fractal manifest export on a validator's home)")
	}
	for i, b := range blocks {
		if b.Instance != in.id {
			return nil, fmt.Errorf("fractal: manifest import: block %d of the file: height %d: belongs to instance %x, not this one", i, b.Height, b.Instance[:8])
		}
		if err := in.validators.Certify(b, certs[i]); err != nil {
			return nil, fmt.Errorf("fractal: manifest import: block %d of the file: height %d: %w", i, b.Height, err)
		}
	}
	head, err := in.Head()
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	for _, b := range blocks {
		if b.Height > head.Height {
			res.Ahead++
			continue
		}
		ours, err := in.Block(b.Height)
		if err != nil {
			return nil, err
		}
		if h, theirs := ours.Hash(), b.Hash(); h != theirs {
			return nil, fmt.Errorf("fractal: manifest import: block %d is certified as %x but this chain's block %d is %x: the validators signed two histories (more than a third of their power signed both)", b.Height, theirs, b.Height, h)
		}
		res.Known++
	}
	return res, nil
}
