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
	"github.com/fractalvm/fractal/keys"
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

// Witness encodings: version 1 (notes, nodes, code) was made before the
// chain had rules and labels; version 2 adds the genesis descriptor and
// the label records follow read. Both decode; only a version 2 witness
// can be re-executed, since only it proves the instance's rules.
const (
	witnessV1 = 1
	witnessV2 = 2
)

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
// instance's store: the instance's genesis descriptor (its rules: the fee
// token and the block reward), the notes it reads, the state-tree nodes
// that prove every key it reads present or absent against the root before
// it (and let the referee apply its effects; statetree.Tree.Witness) and
// every label record follow reads present or absent against the parent
// block's root, the Lua source of every predicate it runs, and the label
// records follow read.
type Witness struct {
	Genesis []byte // the genesis descriptor; nil in a version 1 witness
	Notes   []*notes.Note
	Nodes   [][]byte
	Code    [][]byte
	Labels  [][]byte // label records (EncodeLabels)
}

// Encode returns the canonical encoding: version 2, the genesis
// descriptor, then counted lists of note encodings, 65-byte tree nodes,
// code sources and label records; a witness without a genesis descriptor
// and label records is version 1, without them.
func (w *Witness) Encode() []byte {
	e := enc.NewWriter(1024)
	v2 := w.Genesis != nil || len(w.Labels) > 0
	if v2 {
		e.U8(witnessV2)
		e.Var(w.Genesis)
	} else {
		e.U8(witnessV1)
	}
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
	if v2 {
		e.U32(uint32(len(w.Labels)))
		for _, l := range w.Labels {
			e.Var(l)
		}
	}
	return e.Bytes()
}

// Limits on a witness's genesis descriptor and label records.
const (
	maxGenesisBytes  = 1024
	maxWitnessLabels = 1024
	maxLabelRecord   = phases.MaxOutputs * (8 + phases.MaxLabel + maxKeyText)
)

// DecodeWitness parses an encoded witness, of version 1 or 2.
func DecodeWitness(data []byte) (*Witness, error) {
	r := enc.NewReader(data)
	v := r.U8()
	if r.Err() == nil && v != witnessV1 && v != witnessV2 {
		return nil, fmt.Errorf("fractal: witness: unknown version %d", v)
	}
	w := &Witness{}
	if v == witnessV2 {
		if w.Genesis = r.Var(maxGenesisBytes, "genesis"); r.Err() == nil && len(w.Genesis) == 0 {
			return nil, fmt.Errorf("fractal: witness: version 2 without a genesis descriptor")
		}
	}
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
	if v == witnessV2 {
		for i, n := 0, r.Count(maxWitnessLabels, "label records"); i < n && r.Err() == nil; i++ {
			w.Labels = append(w.Labels, r.Var(maxLabelRecord, "label record"))
		}
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
// as claim, the block after parent, says it ran, against the state proven
// by w under the root pre, in a scratch store in memory (a kv.Map), and
// returns the receipt and the root after it. The rules come from w's
// genesis descriptor, which must hash to claim's instance ID; the fee goes
// to claim's executor; follow reads label records proven under parent's
// root. A read of a note, tree node, label record or code that w does not
// hold fails with ErrOutsideWitness; a note whose ID the tree does not
// hold at its key counts as not held.
func (w *Witness) Execute(parent, claim *Block, pre [32]byte, tx *phases.Tx) (*WitnessResult, error) {
	t := statetree.New(nil) // the scratch map holds tree nodes only
	nodes := kv.Map{}
	if err := t.PutWitness(nodes, w.Nodes); err != nil {
		return nil, fmt.Errorf("fractal: %w: %w", ErrBadWitness, err)
	}
	if w.Genesis == nil {
		return nil, fmt.Errorf("fractal: %w: a version 1 witness holds no genesis descriptor, so it does not prove the instance's rules", ErrBadWitness)
	}
	g, err := DecodeGenesis(w.Genesis)
	if err != nil {
		return nil, fmt.Errorf("fractal: %w: %w", ErrBadWitness, err)
	}
	if g.ID() != claim.Instance {
		return nil, fmt.Errorf("fractal: %w: its genesis descriptor is not instance %x's", ErrBadWitness, claim.Instance[:8])
	}
	ws := &witnessState{
		BlockContext: BlockContext{Rules: g.Rules, ProducerKey: claim.Executor, Height: claim.Height},
		t:            t, nodes: nodes, root: pre, parentRoot: parent.StateRoot,
		byID: map[[32]byte]*notes.Note{}, code: map[notes.Hash][]byte{}, labels: map[[32]byte][]byte{},
	}
	for _, n := range w.Notes {
		ws.byID[n.ID()] = n
	}
	for _, src := range w.Code {
		ws.code[sha256.Sum256(src)] = src
	}
	for _, l := range w.Labels {
		ws.labels[LabelValue(l)] = l
	}
	out, err := phases.Execute(ws, ws, vp.NewPool(), tx)
	if err != nil {
		return nil, fmt.Errorf("fractal: re-execute %x: %w", tx.ID(), err)
	}
	res := &WitnessResult{Receipt: &out.Receipt, Root: pre}
	if !out.Committed() {
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

// EffectChanges is the state-tree change list of a committed outcome, in
// the order a block applies it: its notes deleted and written
// (phases.Outcome.Effects: an accepted one's inputs and outputs, then,
// accepted or refused, its fee's note, change and payment), then an
// accepted one's exports and import (transfer.go) and its label record
// (labels.go). Sealing, replay and the referee all
// derive a transaction's root from it.
func EffectChanges(o *phases.Outcome) []statetree.Change {
	changes := make([]statetree.Change, 0, len(o.Spent)+len(o.Created)+3)
	o.Effects(func(n *notes.Note, created bool) {
		c := statetree.Change{Key: TreeKey(n.StateKey())}
		if created {
			id := n.ID()
			c.Value = &id
		}
		changes = append(changes, c)
	})
	return append(append(changes, transferChanges(o)...), labelChanges(o)...)
}

// BlockContext is what a block's execution takes from the chain's rules
// beyond the phases: it implements phases.Fees (the fee token, and the
// producer the block's fees go to) and phases.Rewards (the note the
// block's reward transaction mints). The instance's Code and a witness's
// state embed it.
type BlockContext struct {
	Rules       Rules
	ProducerKey keys.PublicKey
	Height      uint64
}

// FeeToken implements phases.Fees.
func (b BlockContext) FeeToken() *phases.FeeToken { return b.Rules.Fee }

// Producer implements phases.Fees.
func (b BlockContext) Producer() keys.PublicKey { return b.ProducerKey }

// RewardNote implements phases.Rewards.
func (b BlockContext) RewardNote(tx *phases.Tx) (*notes.Note, error) {
	if b.Rules.Reward == nil {
		return nil, errors.New("this instance gives no block rewards")
	}
	return b.Rules.Reward.RewardNote(tx, b.ProducerKey, b.Height)
}

// witnessState answers phases' reads from a witness only.
type witnessState struct {
	BlockContext
	t          *statetree.Tree
	nodes      kv.Map
	mu         sync.Mutex // a kv.Map is not safe for concurrent use
	root       [32]byte
	parentRoot [32]byte // follow reads label records proven under it
	byID       map[[32]byte]*notes.Note
	code       map[notes.Hash][]byte
	labels     map[[32]byte][]byte // label records by LabelValue
}

// Labels implements phases.LabelIndex: the label record the tree holds
// for txid under the parent block's root, which follow reads (a record of
// the block's own transactions is not there yet).
func (s *witnessState) Labels(txid notes.Hash) ([]phases.Labelled, error) {
	s.mu.Lock()
	v, ok, err := s.t.Get(s.nodes, s.parentRoot, LabelKey(txid))
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: the label record of %x: %v", ErrOutsideWitness, txid[:8], err)
	}
	if !ok {
		return nil, nil
	}
	rec := s.labels[v]
	if rec == nil {
		return nil, fmt.Errorf("%w: the label record of %x", ErrOutsideWitness, txid[:8])
	}
	return DecodeLabels(rec)
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
