package dispute

import (
	"context"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
)

// Chain is the side of a dispute this executor holds: its signed blocks,
// their transactions and the witness of one transaction. A
// *fractal.Instance is one.
type Chain interface {
	Block(height uint64) (*chain.Block, error)
	Transactions(b *chain.Block) ([]*phases.Tx, error)
	Witness(height uint64, index int) (*chain.Witness, error)
}

// Challenge disputes another executor's signed blocks (theirs, as a
// manifest file holds them) with ours: it finds the first block of theirs
// that differs from ours at its height, and plays the game over it with
// ours as party A, answering from its own signed block and supplying
// witnesses, and the other block as party B. It refuses blocks all
// identical to ours and a height ours has not sealed; Play refuses blocks
// that do not make a dispute. ctx is checked before the game, whose
// witness replays the chain.
func Challenge(ctx context.Context, ours Chain, theirs []*chain.Block) (*Transcript, error) {
	other, mine, err := firstDifferent(ours, theirs)
	if err != nil {
		return nil, err
	}
	parent, err := ours.Block(other.Height - 1)
	if err != nil {
		return nil, err
	}
	txs, err := ours.Transactions(mine)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := &Signed{Block: mine, WitnessFor: func(i int) (*chain.Witness, error) { return ours.Witness(mine.Height, i) }}
	return Play(parent, a, &Signed{Block: other}, func(i int) (*phases.Tx, error) { return txs[i], nil })
}

// firstDifferent returns the first block of theirs (past genesis) that
// differs from ours at its height, with ours.
func firstDifferent(ours Chain, theirs []*chain.Block) (other, mine *chain.Block, err error) {
	for _, b := range theirs {
		if b.Height == 0 {
			continue
		}
		m, err := ours.Block(b.Height)
		if err != nil {
			return nil, nil, fmt.Errorf("dispute: %w", err)
		}
		if m.Hash() != b.Hash() {
			return b, m, nil
		}
	}
	return nil, nil, errors.New("dispute: every block in the file is identical to this instance's own")
}
