package wire

import (
	"fmt"
	"slices"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/shielded"
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
		c := &tx.Ciphertexts
		for i := range c.Sealed {
			if c.Version == shielded.BundleV1 {
				m.Ciphertexts = append(m.Ciphertexts, slices.Concat(c.EPKs[i][:], c.Sealed[i][:]))
			} else {
				m.Ciphertexts = append(m.Ciphertexts, c.Sealed[i][:])
			}
		}
		if c.Version == shielded.BundleV2 {
			m.EphemeralKey, m.ViewTags = c.EPKs[0][:], c.Tags
		}
		out.Transactions = append(out.Transactions, m)
	}
	return out
}

// ToCompactBlock reads a compact block back: the manifest decoded (its
// signature is the wallet's to check), every element canonical, every
// ciphertext of its version's size, one per commitment.
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
		if tx.Ciphertexts, err = ciphertexts(t); err != nil {
			return nil, fmt.Errorf("compact block %d, transaction %d: %w", m.Height, i, err)
		}
		cb.Txs = append(cb.Txs, tx)
	}
	return cb, nil
}

// ciphertexts reads a compact transaction's ciphertexts: version 2 when it
// carries an ephemeral key (then a view tag and a sealed note per output),
// else version 1 (each output's ephemeral key and sealed note).
func ciphertexts(t *v1.CompactShieldedTransaction) (shielded.Ciphertexts, error) {
	c := shielded.Ciphertexts{Version: shielded.BundleV1, Sealed: make([][shielded.SealedSize]byte, len(t.Ciphertexts))}
	prefix := 32 // version 1: each ciphertext starts with its ephemeral key
	if len(t.EphemeralKey) > 0 || len(t.ViewTags) > 0 {
		if len(t.EphemeralKey) != 32 {
			return c, fmt.Errorf("an ephemeral key of %d bytes, want 32", len(t.EphemeralKey))
		}
		c.Version, c.EPKs, c.Tags, prefix = shielded.BundleV2, [][32]byte{[32]byte(t.EphemeralKey)}, t.ViewTags, 0
	}
	for i, ct := range t.Ciphertexts {
		if len(ct) != prefix+shielded.SealedSize {
			return c, fmt.Errorf("a version-%d ciphertext of %d bytes, want %d", c.Version, len(ct), prefix+shielded.SealedSize)
		}
		if prefix > 0 {
			c.EPKs = append(c.EPKs, [32]byte(ct[:prefix]))
		}
		c.Sealed[i] = [shielded.SealedSize]byte(ct[prefix:])
	}
	return c, c.Check(len(t.Commitments))
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
