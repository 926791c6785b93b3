package wallet

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// CompactTx is what a wallet reads of one accepted shielded transaction:
// its asset, the nullifiers it revealed, the commitments it appended and
// their ciphertexts (one per commitment, in the same order).
type CompactTx struct {
	ID          [32]byte
	Asset       string // "<application hex>/<issuer>:<symbol>"
	Nullifiers  []fr.Element
	Commitments []fr.Element
	Ciphertexts []Ciphertext
}

// CompactBlock is what a wallet reads of one block: its signed header
// (Header.TxIDs may be empty: the header's transactions hash covers them)
// and its accepted shielded transactions in block order.
type CompactBlock struct {
	Header *fractal.Block
	Txs    []CompactTx
}

// Compact returns the compact form of block b whose committed transactions
// are txs.
func Compact(b *fractal.Block, txs []*phases.Tx) (*CompactBlock, error) {
	cb := &CompactBlock{Header: b}
	for _, tx := range txs {
		if !shielded.IsShielded(tx) {
			continue
		}
		bd, err := shielded.Parse(tx)
		if err != nil {
			return nil, fmt.Errorf("committed transaction %x: %w", tx.ID(), err)
		}
		cb.Txs = append(cb.Txs, CompactTx{
			ID: tx.ID(), Asset: assetName(bd),
			Nullifiers: bd.Public.Nullifiers[:], Commitments: bd.Public.Commitments[:], Ciphertexts: bd.Ciphertexts[:],
		})
	}
	return cb, nil
}

// Source is where a wallet reads the chain: an instance it has open
// (Local) or a node it talks to (package fractal/node/client).
type Source interface {
	// Genesis returns the genesis block; its Instance names the instance.
	Genesis() (*fractal.Block, error)
	// Head returns the height of the last sealed block.
	Head() (uint64, error)
	// Blocks calls fn with the compact blocks from..to in order, and stops
	// at fn's first error, which it returns.
	Blocks(from, to uint64, fn func(*CompactBlock) error) error
}

// Local is an open instance as a wallet's source.
func Local(in *fractal.Instance) Source { return local{in} }

type local struct{ in *fractal.Instance }

func (l local) Genesis() (*fractal.Block, error) { return l.in.Block(0) }

func (l local) Head() (uint64, error) {
	b, err := l.in.Head()
	if err != nil {
		return 0, err
	}
	return b.Height, nil
}

func (l local) Blocks(from, to uint64, fn func(*CompactBlock) error) error {
	for h := from; h <= to; h++ {
		b, err := l.in.Block(h)
		if err != nil {
			return err
		}
		txs, err := l.in.Transactions(b)
		if err != nil {
			return err
		}
		cb, err := Compact(b, txs)
		if err != nil {
			return fmt.Errorf("block %d: %w", h, err)
		}
		if err := fn(cb); err != nil {
			return err
		}
	}
	return nil
}
