package fractal

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/vp"
)

// ErrOutsideWitness is what re-executing against a witness wraps when the
// transaction reads a note, a tree node or code the witness does not hold:
// the witness is not enough to decide the transaction.
var ErrOutsideWitness = errors.New("read outside the witness")

// ErrScanWitness refuses a witness for a transaction whose lookup scans:
// point proofs cannot show that a scan saw every matching note.
var ErrScanWitness = errors.New("the transaction scans, and a scan cannot be proven from point proofs")

// ErrBadWitness is what re-executing against a witness wraps when the
// witness itself is malformed (a tree node no store could hold, too many
// nodes): the fault of whoever supplied it, like a read outside it.
var ErrBadWitness = errors.New("malformed witness")

const witnessVersion = 1

// Limits on a witness's parts.
const (
	maxWitnessNotes = 4 * (phases.MaxInputs + phases.MaxOutputs)
	maxWitnessCode  = 2 * (phases.MaxInputs + phases.MaxOutputs)
	maxNoteBytes    = 1 << 20
	treeNodeBytes   = 65
)

// Witness is what a referee needs to re-execute one transaction without the
// instance's store: the notes it reads, the state-tree nodes that prove
// every key it reads present or absent against the root before it (and let
// the referee apply its effects; statetree.Tree.Witness), and the Lua source
// of every predicate it runs.
type Witness struct {
	Notes []*notes.Note
	Nodes [][]byte
	Code  [][]byte
}

// Encode returns the canonical encoding: version, then counted lists of
// note encodings, 65-byte tree nodes and code sources.
func (w *Witness) Encode() []byte {
	e := enc.NewWriter(1024)
	e.U8(witnessVersion)
	e.U32(uint32(len(w.Notes)))
	for _, n := range w.Notes {
		e.Var(n.Encode())
	}
	e.U32(uint32(len(w.Nodes)))
	for _, n := range w.Nodes {
		e.Fixed(n)
	}
	e.U32(uint32(len(w.Code)))
	for _, c := range w.Code {
		e.Var(c)
	}
	return e.Bytes()
}

// DecodeWitness parses an encoded witness.
func DecodeWitness(data []byte) (*Witness, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != witnessVersion {
		return nil, fmt.Errorf("fractal: witness: unknown version %d", v)
	}
	w := &Witness{}
	for i, n := 0, r.Count(maxWitnessNotes, "notes"); i < n && r.Err() == nil; i++ {
		raw := r.Var(maxNoteBytes, "note")
		if r.Err() != nil {
			break
		}
		note, err := notes.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("fractal: witness: note %d: %w", i, err)
		}
		w.Notes = append(w.Notes, note)
	}
	for i, n := 0, r.Count(statetree.MaxWitnessNodes, "nodes"); i < n && r.Err() == nil; i++ {
		w.Nodes = append(w.Nodes, r.Fixed(treeNodeBytes))
	}
	for i, n := 0, r.Count(maxWitnessCode, "code"); i < n && r.Err() == nil; i++ {
		w.Code = append(w.Code, r.Var(MaxCodeBytes, "code"))
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: witness: %w", err)
	}
	return w, nil
}

// Witness builds the witness of transaction index of the block at height:
// it replays the chain into a temporary store up to that transaction and
// records what the transaction reads. The instance's store keeps only live
// notes, so the state before an old transaction exists only in a replay.
func (in *Instance) Witness(height uint64, index int) (*Witness, error) {
	w, err := in.witness(height, index)
	if err != nil {
		return nil, fmt.Errorf("fractal: witness of block %d transaction %d: %w", height, index, err)
	}
	return w, nil
}

func (in *Instance) witness(height uint64, index int) (*Witness, error) {
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
	var b *Block
	var txs []*phases.Tx
	for h := uint64(1); h <= height; h++ {
		if b, err = in.blockAt(src, h); err != nil {
			return nil, err
		}
		if txs, err = storedTxs(src, b); err != nil {
			return nil, err
		}
		if h < height {
			if err := rp.block(b, txs, nil); err != nil {
				return nil, err
			}
		}
	}
	if index < 0 || index >= len(txs) {
		return nil, fmt.Errorf("block has %d transactions", len(txs))
	}
	txn := rp.db.NewTransaction(true)
	defer txn.Discard()
	pre, err := rp.apply(txn, height, txs[:index], nil)
	if err != nil {
		return nil, err
	}
	rec := &recorder{st: snapshot{txn}, code: in, seen: map[string]bool{}, progs: map[notes.Hash]bool{}}
	out, err := phases.Execute(rec, rec, in.pool, txs[index])
	if err != nil {
		return nil, err
	}
	if rec.scanned {
		return nil, ErrScanWitness
	}
	// The paths of every key the effects change, beyond the notes read
	// (exports and imports live in the tree under keys of their own).
	treeKeys := rec.keys
	if out.Receipt.Status == phases.Accepted {
		for _, c := range effectChanges(out) {
			treeKeys = append(treeKeys, c.Key)
		}
	}
	w := &Witness{Notes: rec.notes}
	if w.Nodes, err = tree.Witness(badgerdb.KV{Txn: txn}, pre, treeKeys); err != nil {
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
		r.keys = append(r.keys, TreeKey(k))
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

func (r *recorder) Program(h notes.Hash) (*vp.Program, error) {
	r.mu.Lock()
	r.progs[h] = true
	r.mu.Unlock()
	return r.code.Program(h)
}

// WitnessResult is the outcome of re-executing one transaction against a
// witness.
type WitnessResult struct {
	Receipt *phases.Receipt
	Root    [32]byte // state root after the transaction (pre when refused)
}

// witnessPrefix is where a witness's tree nodes live in the referee's
// scratch map.
var witnessPrefix = []byte{prefixTree}

// Execute re-executes tx (phases 1–3, then its effects on the state tree)
// against the state proven by w under the root pre, in a scratch store in
// memory (a kv.Map), and returns the receipt and the root after it. A read of a note,
// tree node or code that w does not hold fails with ErrOutsideWitness; a
// note whose ID the tree does not hold at its key counts as not held.
func (w *Witness) Execute(pre [32]byte, tx *phases.Tx) (*WitnessResult, error) {
	t := statetree.New(witnessPrefix)
	nodes := kv.Map{}
	if err := t.PutWitness(nodes, w.Nodes); err != nil {
		return nil, fmt.Errorf("fractal: %w: %w", ErrBadWitness, err)
	}
	ws := &witnessState{t: t, nodes: nodes, root: pre, byID: map[[32]byte]*notes.Note{}, code: map[notes.Hash][]byte{}}
	for _, n := range w.Notes {
		ws.byID[n.ID()] = n
	}
	for _, src := range w.Code {
		ws.code[sha256.Sum256(src)] = src
	}
	out, err := phases.Execute(ws, ws, vp.NewPool(), tx)
	if err != nil {
		return nil, fmt.Errorf("fractal: re-execute %x: %w", tx.ID(), err)
	}
	res := &WitnessResult{Receipt: &out.Receipt, Root: pre}
	if out.Receipt.Status != phases.Accepted {
		return res, nil
	}
	root, err := t.UpdateBatch(nodes, pre, effectChanges(out))
	if err != nil {
		if strings.Contains(err.Error(), "missing from the store") {
			err = fmt.Errorf("%w: %v", ErrOutsideWitness, err)
		}
		return nil, fmt.Errorf("fractal: re-execute %x: apply effects: %w", tx.ID(), err)
	}
	res.Root = root
	return res, nil
}

// effectChanges is the state-tree change list of an accepted outcome, in
// the order sealing applies it (applyEffects): inputs deleted, outputs
// written, then its exports and import (export.go).
func effectChanges(o *phases.Outcome) []statetree.Change {
	changes := make([]statetree.Change, 0, len(o.Spent)+len(o.Created))
	for i := range o.Spent {
		changes = append(changes, statetree.Change{Key: TreeKey(o.Spent[i].StateKey())})
	}
	for i := range o.Created {
		id := o.Created[i].ID()
		changes = append(changes, statetree.Change{Key: TreeKey(o.Created[i].StateKey()), Value: &id})
	}
	return append(changes, transferChanges(o)...)
}

// witnessState answers phases' reads from a witness only.
type witnessState struct {
	t     *statetree.Tree
	nodes kv.Map
	mu    sync.Mutex // a kv.Map is not safe for concurrent use
	root  [32]byte
	byID  map[[32]byte]*notes.Note
	code  map[notes.Hash][]byte
}

func (s *witnessState) Get(k notes.StateKey) (*notes.Note, error) {
	s.mu.Lock()
	id, ok, err := s.t.Get(s.nodes, s.root, TreeKey(k))
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", ErrOutsideWitness, k, err)
	}
	if !ok {
		return nil, nil
	}
	n := s.byID[id]
	if n == nil || !n.StateKey().Equal(k) {
		return nil, fmt.Errorf("%w: the note at %s", ErrOutsideWitness, k)
	}
	return n, nil
}

func (s *witnessState) Scan(notes.Pattern, func(*notes.Note) error) error {
	return ErrScanWitness
}

func (s *witnessState) Program(h notes.Hash) (*vp.Program, error) {
	src, ok := s.code[h]
	if !ok {
		return nil, fmt.Errorf("%w: code %x", ErrOutsideWitness, h)
	}
	return vp.Compile(CodeName(h), src)
}
