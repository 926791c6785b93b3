package fractal

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/vp"
)

// Witness builds the witness of transaction index of the block at height:
// it replays the chain into a temporary store up to that transaction and
// records what the transaction reads. The instance's store keeps only live
// notes, so the state before an old transaction exists only in a replay.
func (in *Instance) Witness(height uint64, index int) (*chain.Witness, error) {
	w, err := in.witness(height, index)
	if err != nil {
		return nil, fmt.Errorf("fractal: witness of block %d transaction %d: %w", height, index, err)
	}
	return w, nil
}

func (in *Instance) witness(height uint64, index int) (*chain.Witness, error) {
	ctx := context.Background()
	rp, err := in.newReplay()
	if err != nil {
		return nil, err
	}
	defer rp.close()
	src := in.db.NewTransaction(false)
	defer src.Discard()
	head, err := headHeight(src)
	if err != nil {
		return nil, err
	}
	if height == 0 || height > head {
		return nil, fmt.Errorf("no block with transactions at height %d", height)
	}
	parent, err := in.blockAt(src, 0)
	if err != nil {
		return nil, err
	}
	var b *chain.Block
	var txs []*phases.Tx
	for h := uint64(1); h <= height; h++ {
		if b, err = in.blockAt(src, h); err != nil {
			return nil, err
		}
		if txs, err = storedTxs(src, b); err != nil {
			return nil, err
		}
		if h < height {
			if _, err := rp.block(ctx, parent, b, txs, nil); err != nil {
				return nil, err
			}
			parent = b
		}
	}
	if index < 0 || index >= len(txs) {
		return nil, fmt.Errorf("block has %d transactions", len(txs))
	}
	// The state before the transaction: the block's earlier ones applied,
	// uncommitted, in txn.
	txn := rp.db.NewTransaction(true)
	defer txn.Discard()
	x, err := rp.execute(ctx, txn, parent, b, txs[:index], nil)
	if err != nil {
		return nil, err
	}
	pre := x.tree.Root()
	view := badgerdb.KV{Txn: txn}
	rec := &recorder{st: snapshot{view}, code: in, seen: map[string]bool{}, progs: map[notes.Hash]bool{}}
	out, err := phases.Execute(rec, rec, in.pool, txs[index])
	if err != nil {
		return nil, err
	}
	if rec.scanned {
		return nil, chain.ErrScanWitness
	}
	// The paths of every key the effects change, beyond the notes read
	// (exports and imports live in the tree under keys of their own).
	treeKeys := rec.keys
	if out.Receipt.Status == phases.Accepted {
		for _, c := range chain.EffectChanges(out) {
			treeKeys = append(treeKeys, c.Key)
		}
	}
	w := &chain.Witness{Notes: rec.notes}
	if w.Nodes, err = tree.Witness(view, pre, treeKeys); err != nil {
		return nil, err
	}
	for h := range rec.progs {
		src, err := in.Code(h)
		if err != nil {
			return nil, err
		}
		w.Code = append(w.Code, src)
	}
	slices.SortFunc(w.Code, bytes.Compare)
	return w, nil
}

// recorder is a phases.State and phases.Code that records what one
// transaction reads.
type recorder struct {
	st      phases.State
	code    phases.Code
	mu      sync.Mutex
	keys    []statetree.Hash
	notes   []*notes.Note
	seen    map[string]bool
	progs   map[notes.Hash]bool
	scanned bool
}

func (r *recorder) Get(k notes.StateKey) (*notes.Note, error) {
	n, err := r.st.Get(k)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sk := k.String(); !r.seen[sk] {
		r.seen[sk] = true
		r.keys = append(r.keys, chain.TreeKey(k))
		if n != nil {
			r.notes = append(r.notes, n)
		}
	}
	return n, nil
}

func (r *recorder) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	r.mu.Lock()
	r.scanned = true
	r.mu.Unlock()
	return r.st.Scan(p, fn)
}

func (r *recorder) Hosts() *phases.Hosts { return r.code.Hosts() }

func (r *recorder) Program(h notes.Hash) (*vp.Program, error) {
	r.mu.Lock()
	r.progs[h] = true
	r.mu.Unlock()
	return r.code.Program(h)
}
