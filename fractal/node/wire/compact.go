package wire

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// maxCompactOutputs bounds the nullifiers, commitments and ciphertexts of
// one compact transaction a client accepts (a shielded transaction has two
// of each).
const maxCompactOutputs = 16

// CompactBlock is what a wallet reads of one block.
func CompactBlock(cb *wallet.CompactBlock) *v1.CompactBlock {
	out := &v1.CompactBlock{Height: cb.Header.Height, Manifest: cb.Header.EncodeManifest()}
	for _, tx := range cb.Txs {
		m := &v1.CompactShieldedTransaction{TxId: Hex(tx.ID), Asset: tx.Asset}
		for _, e := range tx.Nullifiers {
			b := e.Bytes()
			m.Nullifiers = append(m.Nullifiers, b[:])
		}
		for _, e := range tx.Commitments {
			b := e.Bytes()
			m.Commitments = append(m.Commitments, b[:])
		}
		for i := range tx.Ciphertexts {
			m.Ciphertexts = append(m.Ciphertexts, tx.Ciphertexts[i][:])
		}
		out.Transactions = append(out.Transactions, m)
	}
	return out
}

// ToCompactBlock reads a compact block back: the manifest decoded (its
// signature is the wallet's to check), every element canonical, every
// ciphertext of its size, one per commitment.
func ToCompactBlock(m *v1.CompactBlock) (*wallet.CompactBlock, error) {
	h, err := chain.DecodeManifest(m.GetManifest())
	if err != nil {
		return nil, err
	}
	if h.Height != m.Height {
		return nil, fmt.Errorf("compact block %d carries the manifest of block %d", m.Height, h.Height)
	}
	cb := &wallet.CompactBlock{Header: h}
	for i, t := range m.Transactions {
		tx := wallet.CompactTx{Asset: t.Asset}
		if tx.ID, err = ParseHash(t.TxId); err != nil {
			return nil, fmt.Errorf("compact block %d, transaction %d: %w", m.Height, i, err)
		}
		if len(t.Nullifiers) > maxCompactOutputs || len(t.Commitments) > maxCompactOutputs || len(t.Ciphertexts) != len(t.Commitments) {
			return nil, fmt.Errorf("compact block %d, transaction %d: %d nullifiers, %d commitments, %d ciphertexts", m.Height, i, len(t.Nullifiers), len(t.Commitments), len(t.Ciphertexts))
		}
		if tx.Nullifiers, err = elements(t.Nullifiers); err == nil {
			tx.Commitments, err = elements(t.Commitments)
		}
		if err != nil {
			return nil, fmt.Errorf("compact block %d, transaction %d: %w", m.Height, i, err)
		}
		for _, c := range t.Ciphertexts {
			var ct wallet.Ciphertext
			if len(c) != len(ct) {
				return nil, fmt.Errorf("compact block %d, transaction %d: a ciphertext of %d bytes, want %d", m.Height, i, len(c), len(ct))
			}
			copy(ct[:], c)
			tx.Ciphertexts = append(tx.Ciphertexts, ct)
		}
		cb.Txs = append(cb.Txs, tx)
	}
	return cb, nil
}

// elements reads canonical 32-byte big-endian field elements.
func elements(raw [][]byte) ([]fr.Element, error) {
	out := make([]fr.Element, len(raw))
	for i, b := range raw {
		if len(b) != fr.Bytes {
			return nil, fmt.Errorf("a field element of %d bytes", len(b))
		}
		if err := out[i].SetBytesCanonical(b); err != nil {
			return nil, fmt.Errorf("a field element out of range")
		}
	}
	return out, nil
}
