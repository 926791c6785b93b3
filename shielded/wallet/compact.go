package wallet

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// CompactTx is what a wallet reads of one accepted shielded transaction:
// its asset, the nullifiers it revealed, the commitments it appended and
// their ciphertexts (one sealed note per commitment, in the same order).
type CompactTx struct {
	ID          [32]byte
	Asset       string // "<application hex>/<issuer>:<symbol>"
	Nullifiers  []fr.Element
	Commitments []fr.Element
	Ciphertexts shielded.Ciphertexts
}

// CompactBlock is what a wallet reads of one block: its signed header
// (Header.TxIDs may be empty: the header's transactions hash covers them)
// and its accepted shielded transactions in block order.
type CompactBlock struct {
	Header *chain.Block
	Txs    []CompactTx
}

// Compact returns the compact form of block b whose committed transactions
// are txs.
func Compact(b *chain.Block, txs []*phases.Tx) (*CompactBlock, error) {
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
			Nullifiers: bd.Public.Nullifiers[:], Commitments: bd.Public.Commitments[:], Ciphertexts: bd.Ciphertexts,
		})
	}
	return cb, nil
}
