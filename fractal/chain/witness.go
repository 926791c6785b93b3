package chain

// The dispute witness: what a referee needs to re-execute one transaction
// (decision 055, docs/formats/chain.md).

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/fractal/statetree"
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
	treeNodeBytes   = 65
)

// MaxNoteBytes bounds one note's encoding inside a record, claim or
// witness.
const MaxNoteBytes = 1 << 20

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
		raw := r.Var(MaxNoteBytes, "note")
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

// WitnessResult is the outcome of re-executing one transaction against a
// witness.
type WitnessResult struct {
	Receipt *phases.Receipt
	Root    [32]byte // state root after the transaction (pre when refused)
}

// Execute re-executes tx (phases 1–3, then its effects on the state tree)
// against the state proven by w under the root pre, in a scratch store in
// memory (a kv.Map), and returns the receipt and the root after it. A read
// of a note, tree node or code that w does not hold fails with
// ErrOutsideWitness; a note whose ID the tree does not hold at its key
// counts as not held.
func (w *Witness) Execute(pre [32]byte, tx *phases.Tx) (*WitnessResult, error) {
	t := statetree.New(nil) // the scratch map holds tree nodes only
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
	root, err := t.UpdateBatch(nodes, pre, EffectChanges(out))
	if err != nil {
		if strings.Contains(err.Error(), "missing from the store") {
			err = fmt.Errorf("%w: %v", ErrOutsideWitness, err)
		}
		return nil, fmt.Errorf("fractal: re-execute %x: apply effects: %w", tx.ID(), err)
	}
	res.Root = root
	return res, nil
}

// EffectChanges is the state-tree change list of an accepted outcome, in
// the order a block applies it: inputs deleted, outputs written, then its
// exports and import (transfer.go). Sealing, replay and the referee all
// derive a transaction's root from it.
func EffectChanges(o *phases.Outcome) []statetree.Change {
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

// Hosts is the instance's set: the referee re-executes as the executors did.
func (s *witnessState) Hosts() *phases.Hosts { return Hosts }

func (s *witnessState) Program(h notes.Hash) (*vp.Program, error) {
	src, ok := s.code[h]
	if !ok {
		return nil, fmt.Errorf("%w: code %x", ErrOutsideWitness, h)
	}
	return vp.Compile(CodeName(h), src)
}
