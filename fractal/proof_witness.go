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
	"github.com/fractalvm/fractal/keys"
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
	// Label records are read as of the block's start: the replay store
	// holds the parent's state committed, the block's earlier
	// transactions only in txn.
	parentView := rp.db.NewTransaction(false)
	defer parentView.Discard()
	code := blockCode{in, chain.BlockContext{Rules: in.rules, ProducerKey: keys.PublicKey(b.Executor), Height: b.Height}}
	rec := &recorder{st: snapshot{view}, labels: snapshot{badgerdb.KV{Txn: parentView}}, code: code, seen: map[string]bool{}, progs: map[notes.Hash]bool{}}
	out, err := phases.Execute(rec, rec, in.pool, txs[index])
	if err != nil {
		return nil, err
	}
	if rec.scanned {
		return nil, chain.ErrScanWitness
	}
	// The paths of every key the effects change, beyond the notes read
	// (exports, imports and label records live in the tree under keys of
	// their own).
	treeKeys := rec.keys
	if out.Committed() {
		for _, c := range chain.EffectChanges(out) {
			treeKeys = append(treeKeys, c.Key)
		}
	}
	w := &chain.Witness{Notes: rec.notes, Labels: rec.records}
	if w.Genesis, err = getValue(src, metaGenesis); err != nil {
		return nil, err
	}
	if w.Nodes, err = tree.Witness(view, pre, treeKeys); err != nil {
		return nil, err
	}
	if len(rec.labelKeys) > 0 {
		nodes, err := tree.Witness(badgerdb.KV{Txn: parentView}, parent.StateRoot, rec.labelKeys)
		if err != nil {
			return nil, err
		}
		w.Nodes = appendNew(w.Nodes, nodes)
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

// appendNew appends to list the nodes of more it does not hold yet.
func appendNew(list, more [][]byte) [][]byte {
	have := make(map[string]bool, len(list))
	for _, n := range list {
		have[string(n)] = true
	}
	for _, n := range more {
		if !have[string(n)] {
			have[string(n)] = true
			list = append(list, n)
		}
	}
	return list
}

// recorder is a phases.State (with the label index) and a phases.Code
// (with the fees and rewards of its block) that records what one
// transaction reads.
type recorder struct {
	st        phases.State
	labels    phases.LabelIndex // as of the block's start
	code      blockCode
	mu        sync.Mutex
	keys      []statetree.Hash
	notes     []*notes.Note
	seen      map[string]bool
	progs     map[notes.Hash]bool
	scanned   bool
	labelKeys []statetree.Hash // tree keys of the label records follow asked for
	records   [][]byte         // the label records found
}

// Labels implements phases.LabelIndex, recording the record's tree key and
// the record.
func (r *recorder) Labels(txid notes.Hash) ([]phases.Labelled, error) {
	ls, err := r.labels.Labels(txid)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := chain.LabelKey(txid); !slices.Contains(r.labelKeys, k) {
		r.labelKeys = append(r.labelKeys, k)
		if ls != nil {
			r.records = append(r.records, chain.EncodeLabels(ls))
		}
	}
	return ls, nil
}

func (r *recorder) FeeToken() *phases.FeeToken { return r.code.FeeToken() }

func (r *recorder) Producer() keys.PublicKey { return r.code.Producer() }

func (r *recorder) RewardNote(tx *phases.Tx) (*notes.Note, error) { return r.code.RewardNote(tx) }

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
