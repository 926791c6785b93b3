package wallet

import (
	"errors"
	"fmt"
	"maps"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// SyncReport sums up one sync.
type SyncReport struct {
	From, To uint64 // blocks scanned, inclusive; From > To when none were new
	Found    int    // notes found
	Spent    int    // own notes seen spent
}

// saveEvery is how many blocks a sync scans between saves, so an
// interrupted sync resumes near where it stopped.
const saveEvery = 256

// Chain is what a wallet reads from an instance to sync: its ID, its
// blocks and their transactions. An open *fractal.Instance is one; a node's
// client can be another. Sync checks what it is given (signatures, links,
// the commitment root), so the source need not be trusted.
type Chain interface {
	ID() [32]byte
	Head() (*chain.Block, error)
	Block(height uint64) (*chain.Block, error)
	// Transactions returns b's transactions in block order.
	Transactions(b *chain.Block) ([]*phases.Tx, error)
}

// Sync scans the instance's blocks after the last one the wallet saw, in
// order: it checks each block's signature and link, appends every shielded
// output's commitment to the wallet's tree (tracking the witnesses of the
// notes it can decrypt), marks its notes whose nullifiers appear as spent,
// and checks its tree's root against the block's commitment root. A block
// is applied whole or not at all: on an error the state is the one after
// the previous block. It saves the state every saveEvery blocks and at the
// end. progress, when not nil, is called after each block.
func (w *Wallet) Sync(in Chain, progress func(done, total uint64)) (*SyncReport, error) {
	st := w.State
	if st.Next == 0 {
		g, err := in.Block(0)
		if err != nil {
			return nil, fmt.Errorf("wallet: sync: %w", err)
		}
		st.Instance, st.Next, st.Last = in.ID(), 1, g.Hash()
	}
	if st.Instance != in.ID() {
		return nil, fmt.Errorf("wallet: sync: the wallet follows instance %x, not %x", st.Instance[:8], in.ID())
	}
	head, err := in.Head()
	if err != nil {
		return nil, fmt.Errorf("wallet: sync: %w", err)
	}
	rep := &SyncReport{From: st.Next, To: head.Height}
	nfs := w.nullifiers()
	for h := st.Next; h <= head.Height; h++ {
		if err := w.scan(in, h, nfs, rep); err != nil {
			return rep, fmt.Errorf("wallet: sync: block %d: %w", h, err)
		}
		if (h-rep.From+1)%saveEvery == 0 {
			if err := w.Save(); err != nil {
				return rep, err
			}
		}
		if progress != nil {
			progress(h-rep.From+1, head.Height-rep.From+1)
		}
	}
	return rep, w.Save()
}

// scan reads, checks and applies block h.
func (w *Wallet) scan(in Chain, h uint64, nfs map[fr.Element]int, rep *SyncReport) error {
	b, err := in.Block(h)
	if err != nil {
		return err
	}
	if err := chain.VerifyBlock(b); err != nil {
		return err
	}
	if b.Height != h {
		return fmt.Errorf("block given for height %d says height %d", h, b.Height)
	}
	if b.Prev != w.State.Last {
		return errors.New("does not follow the last block this wallet saw (the instance's chain changed)")
	}
	txs, err := in.Transactions(b)
	if err != nil {
		return err
	}
	if len(txs) != len(b.TxIDs) {
		return fmt.Errorf("%d transactions given for a block of %d", len(txs), len(b.TxIDs))
	}
	for i, tx := range txs {
		if tx.ID() != b.TxIDs[i] {
			return fmt.Errorf("transaction %d given is not the one the block lists", i)
		}
	}
	return w.apply(b, txs, nfs, rep)
}

// apply applies block b with its transactions txs to a copy of the state
// and replaces the state with the copy only when the whole block applied,
// so an error part-way (a malformed transaction, a full tree, a root that
// disagrees) leaves no half-applied block for a later save to record. nfs
// maps the nullifier of every owned note to its index (see nullifiers); the
// block's new notes join it only with the block.
//
// A decrypted note whose nullifier the wallet already knows (the same note
// sent twice: two outputs with one commitment, or a ciphertext replayed to
// the wallet) is not counted again: its commitment is appended untracked,
// since only one copy can ever be spent.
func (w *Wallet) apply(b *chain.Block, txs []*phases.Tx, nfs map[fr.Element]int, rep *SyncReport) error {
	var bundles []*shielded.Bundle
	for _, tx := range txs {
		if !shielded.IsShielded(tx) {
			continue
		}
		bd, err := shielded.Parse(tx)
		if err != nil {
			return fmt.Errorf("committed transaction %x: %w", tx.ID(), err)
		}
		bundles = append(bundles, bd)
	}
	st := w.State
	if len(bundles) > 0 {
		var err error
		if st, err = w.State.clone(); err != nil {
			return err
		}
	}
	added := map[fr.Element]int{}
	owned := func(nf fr.Element) (int, bool) {
		if i, ok := nfs[nf]; ok {
			return i, true
		}
		i, ok := added[nf]
		return i, ok
	}
	var found, spent int
	for _, bd := range bundles {
		for _, nf := range bd.Public.Nullifiers {
			if i, ok := owned(nf); ok && !st.Notes[i].Spent {
				st.Notes[i].Spent = true
				st.Tree.Forget(st.Notes[i].Position)
				spent++
			}
		}
		for j, cm := range bd.Public.Commitments {
			n, err := w.Keys.Decrypt(bd.Ciphertexts[j], cm)
			mine := err == nil && n.Value > 0
			var nf fr.Element
			if mine {
				nf = noteNullifier(w.Keys, n)
				_, known := owned(nf)
				mine = !known
			}
			pos, err := st.Tree.Append(cm, mine)
			if err != nil {
				return err
			}
			if mine {
				added[nf] = len(st.Notes)
				st.Notes = append(st.Notes, Owned{Note: n, Position: pos, Height: b.Height, Name: assetName(bd)})
				found++
			}
		}
	}
	if root := st.Tree.Root(); root.Bytes() != b.CommitmentRoot {
		return errors.New("the wallet's commitment tree disagrees with the block's commitment root")
	}
	st.Next, st.Last = b.Height+1, b.Hash()
	w.State = st
	maps.Copy(nfs, added)
	rep.Found += found
	rep.Spent += spent
	return nil
}
