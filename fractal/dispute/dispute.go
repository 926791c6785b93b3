// Package dispute settles a disagreement between two executors of one
// instance over one block: the Fluence verification game at transaction
// granularity. Both executors signed a block with the same parent and the
// same transactions but different state roots. The referee bisects over
// their per-transaction roots, one commitment from each side per round,
// down to one transaction whose pre-state both accept and whose post-state
// they dispute, then re-executes that transaction alone against a witness
// (the notes it reads and the state-tree nodes proving them under the agreed
// root) and names the executor whose claim is wrong.
//
// Formats: docs/formats/chain.md. Why this shape: docs/decisions/055-dispute-by-transaction-bisection.md.
package dispute

import (
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/phases"
)

// Party is one executor's side of a dispute.
type Party interface {
	// Manifest is the party's signed claim for the block.
	Manifest() *chain.Block
	// Commit is the party's answer in a bisection round: the state root it
	// claims after transaction i. An answer that differs from its own
	// signed manifest loses the dispute.
	Commit(i int) ([32]byte, error)
	// Witness returns the party's witness for transaction i against the
	// root before it, or nil when the party offers none.
	Witness(i int) (*chain.Witness, error)
}

// Signed is a Party that answers from its signed block and, when
// WitnessFor is set, supplies witnesses through it (an instance's
// Witness method, bound to the block's height).
type Signed struct {
	Block      *chain.Block
	WitnessFor func(i int) (*chain.Witness, error)
}

func (s *Signed) Manifest() *chain.Block { return s.Block }

func (s *Signed) Commit(i int) ([32]byte, error) { return s.Block.Roots[i], nil }

func (s *Signed) Witness(i int) (*chain.Witness, error) {
	if s.WitnessFor == nil {
		return nil, nil
	}
	return s.WitnessFor(i)
}

// Round is one bisection step: the parties agree on the root after
// transaction Lo (-1: the parent's root), disagree after Hi, and commit to
// the root after Mid.
type Round struct {
	Lo, Hi, Mid int
	A, B        [32]byte
}

// Side names a party.
type Side uint8

const (
	SideA Side = 1
	SideB Side = 2
)

func (s Side) String() string {
	if s == SideA {
		return "A"
	}
	return "B"
}

// Finding is why one party lost.
type Finding struct {
	Side   Side
	Reason string
}

// Transcript is the record of a dispute: the claims, every round, the
// transaction it came down to, the referee's re-execution and the verdict.
type Transcript struct {
	Instance       [32]byte
	Height         uint64
	Parent         [32]byte // hash of the agreed parent block
	ExecutorA      [32]byte
	ExecutorB      [32]byte
	Rounds         []Round
	Index          int      // the disputed transaction
	TxID           [32]byte //
	PreRoot        [32]byte // agreed root before it
	ClaimA, ClaimB [32]byte // roots after it, as claimed
	Decided        bool     // whether the referee computed the true root
	Root           [32]byte // the referee's root after it, when Decided
	Wrong          []Finding
	Note           string // why the referee could not decide, when it could not
}

// Play runs the dispute between a and b over the block that follows
// parent. txAt returns the block's transaction i (checked against the
// manifests' transaction list). It returns an error, and no transcript, when
// the manifests do not make a dispute: a bad signature, different parents,
// instances, heights or transactions, or identical roots.
func Play(parent *chain.Block, a, b Party, txAt func(i int) (*phases.Tx, error)) (*Transcript, error) {
	ma, mb := a.Manifest(), b.Manifest()
	if err := checkClaims(parent, ma, mb); err != nil {
		return nil, fmt.Errorf("dispute: %w", err)
	}
	tr := &Transcript{
		Instance: ma.Instance, Height: ma.Height, Parent: ma.Prev,
		ExecutorA: ma.Executor, ExecutorB: mb.Executor,
	}
	// Invariant: agreement after lo (lo = -1 is the parent's root, which
	// both signed blocks extend), disagreement after hi.
	// When the final roots agree, the game starts from the last
	// disagreement (checkClaims ensured there is one).
	lo, hi := -1, len(ma.Roots)-1
	for ma.Roots[hi] == mb.Roots[hi] {
		hi--
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		r := Round{Lo: lo, Hi: hi, Mid: mid}
		var err error
		if r.A, err = a.Commit(mid); err != nil {
			return nil, fmt.Errorf("dispute: round %d: party A: %w", len(tr.Rounds)+1, err)
		}
		if r.B, err = b.Commit(mid); err != nil {
			return nil, fmt.Errorf("dispute: round %d: party B: %w", len(tr.Rounds)+1, err)
		}
		tr.Rounds = append(tr.Rounds, r)
		for _, p := range []struct {
			side  Side
			got   [32]byte
			claim *chain.Block
		}{{SideA, r.A, ma}, {SideB, r.B, mb}} {
			if p.got != p.claim.Roots[mid] {
				tr.Wrong = append(tr.Wrong, Finding{p.side, fmt.Sprintf("committed in round %d to a root after transaction %d that contradicts its signed manifest", len(tr.Rounds), mid)})
			}
		}
		if len(tr.Wrong) > 0 {
			tr.Index = mid
			return tr, nil
		}
		if r.A == r.B {
			lo = mid
		} else {
			hi = mid
		}
	}
	tr.Index = hi
	tr.TxID = ma.TxIDs[hi]
	tr.PreRoot = parent.StateRoot
	if lo >= 0 {
		tr.PreRoot = ma.Roots[lo]
	}
	tr.ClaimA, tr.ClaimB = ma.Roots[hi], mb.Roots[hi]
	tx, err := txAt(hi)
	if err != nil {
		return nil, fmt.Errorf("dispute: transaction %d: %w", hi, err)
	}
	if tx.ID() != tr.TxID {
		return nil, fmt.Errorf("dispute: transaction %d: given transaction %x is not the one the manifests list", hi, tx.ID())
	}
	if err := tr.referee(parent, a, b, tx); err != nil {
		return nil, err
	}
	return tr, nil
}

// checkClaims checks that two signed blocks make a dispute over the block
// after parent.
func checkClaims(parent, a, b *chain.Block) error {
	for _, blk := range []*chain.Block{parent, a, b} {
		if err := chain.VerifyBlock(blk); err != nil {
			return err
		}
	}
	// The game indexes both blocks' root and transaction lists: a signed
	// block whose lists do not match its header is no claim.
	for _, blk := range []*chain.Block{a, b} {
		if err := blk.Check(); err != nil {
			return fmt.Errorf("block %d by %x: %w", blk.Height, blk.Executor[:8], err)
		}
	}
	switch {
	case a.Instance != b.Instance || a.Instance != parent.Instance:
		return errors.New("the blocks belong to different instances")
	case a.Prev != b.Prev || a.Prev != parent.Hash():
		return errors.New("the blocks do not both extend the given parent")
	case a.Height != b.Height || a.Height != parent.Height+1:
		return errors.New("the blocks are at different heights")
	case a.TxsHash != b.TxsHash:
		return errors.New("the blocks list different transactions")
	case len(a.Roots) == 0:
		return errors.New("the blocks hold no transactions")
	}
	for i := range a.Roots {
		if a.Roots[i] != b.Roots[i] {
			return nil
		}
	}
	return errors.New("the blocks claim the same roots: nothing to dispute")
}

// referee re-executes the disputed transaction against each party's
// witness and records the verdict. The block's fees and reward go to its
// producer, the executor its manifest names, so each claim is judged
// against a re-execution with its own executor as producer; when both
// claims name one executor this is one re-execution, whose root any
// sufficient witness gives. A party's witness that does not hold what the
// transaction reads for its own claim loses it the dispute; one that falls
// short only for the other claim's producer proves nothing.
func (tr *Transcript) referee(parent *chain.Block, a, b Party, tx *phases.Tx) error {
	claims := [2]*chain.Block{a.Manifest(), b.Manifest()}
	parties := [2]Party{a, b}
	sides := [2]Side{SideA, SideB}
	var witnesses [2]*chain.Witness
	var undecided string
	for i, p := range parties {
		w, err := p.Witness(tr.Index)
		switch {
		case errors.Is(err, chain.ErrScanWitness):
			undecided = err.Error() // no party can do better: not a fault
		case err != nil:
			tr.Wrong = append(tr.Wrong, Finding{sides[i], "supplied no usable witness: " + err.Error()})
		default:
			witnesses[i] = w
		}
	}
	var roots [2]*[32]byte // the re-executed root for each claim's producer
	for c, claim := range claims {
		if c == 1 && claim.Executor == claims[0].Executor {
			roots[1] = roots[0]
			break
		}
		for i, w := range witnesses {
			if w == nil || tr.lost(sides[i]) {
				continue
			}
			res, err := w.Execute(parent, claim, tr.PreRoot, tx)
			own := i == c
			switch {
			case errors.Is(err, chain.ErrOutsideWitness) && own:
				tr.Wrong = append(tr.Wrong, Finding{sides[i], "its witness does not hold what the transaction reads: " + err.Error()})
				continue
			case errors.Is(err, chain.ErrBadWitness) && own:
				tr.Wrong = append(tr.Wrong, Finding{sides[i], "its witness is malformed: " + err.Error()})
				continue
			case errors.Is(err, chain.ErrScanWitness):
				undecided = err.Error()
				continue
			case errors.Is(err, chain.ErrOutsideWitness), errors.Is(err, chain.ErrBadWitness):
				continue // it falls short for the other claim's producer only
			case err != nil:
				return fmt.Errorf("dispute: referee: %w", err)
			}
			if roots[c] != nil && *roots[c] != res.Root {
				return fmt.Errorf("dispute: referee: two sufficient witnesses gave roots %x and %x", roots[c][:8], res.Root[:8])
			}
			roots[c] = &res.Root
		}
	}
	for c, r := range roots {
		if r != nil && !tr.Decided {
			tr.Decided, tr.Root = true, *r
			if c == 1 && claims[0].Executor != claims[1].Executor {
				tr.Note = "the claims name different producers; the root is for B's"
			}
		}
	}
	if !tr.Decided {
		tr.Note = "no sufficient witness: the true root after the transaction is unknown"
		if undecided != "" {
			tr.Note = undecided
		}
		return nil
	}
	if claims[0].Executor != claims[1].Executor && roots[0] != nil && roots[1] != nil && *roots[0] != *roots[1] {
		tr.Note = fmt.Sprintf("the claims name different producers, who get the block's fees and reward: the root is for A's; for B's it is %x", roots[1][:8])
	}
	for c, claim := range [2][32]byte{tr.ClaimA, tr.ClaimB} {
		if roots[c] != nil && claim != *roots[c] && !tr.lost(sides[c]) {
			tr.Wrong = append(tr.Wrong, Finding{sides[c], fmt.Sprintf("claims root %x after transaction %d; re-execution gives %x", claim[:8], tr.Index, roots[c][:8])})
		}
	}
	return nil
}

func (tr *Transcript) lost(s Side) bool {
	for _, f := range tr.Wrong {
		if f.Side == s {
			return true
		}
	}
	return false
}

// Loser returns the executor key of the single party found wrong, and
// false when neither or both were.
func (tr *Transcript) Loser() ([32]byte, bool) {
	if len(tr.Wrong) != 1 {
		return [32]byte{}, false
	}
	if tr.Wrong[0].Side == SideA {
		return tr.ExecutorA, true
	}
	return tr.ExecutorB, true
}

const transcriptVersion = 1

// Encode returns the transcript's canonical encoding (docs/formats/chain.md).
func (tr *Transcript) Encode() []byte {
	w := enc.NewWriter(512 + 80*len(tr.Rounds))
	w.U8(transcriptVersion)
	w.Fixed(tr.Instance[:])
	w.U64(tr.Height)
	w.Fixed(tr.Parent[:])
	w.Fixed(tr.ExecutorA[:])
	w.Fixed(tr.ExecutorB[:])
	w.U32(uint32(len(tr.Rounds)))
	for _, r := range tr.Rounds {
		// Lo is -1 for the parent's root; indices are stored plus one.
		w.U32(uint32(r.Lo + 1))
		w.U32(uint32(r.Hi + 1))
		w.U32(uint32(r.Mid + 1))
		w.Fixed(r.A[:])
		w.Fixed(r.B[:])
	}
	w.U32(uint32(tr.Index))
	w.Fixed(tr.TxID[:])
	w.Fixed(tr.PreRoot[:])
	w.Fixed(tr.ClaimA[:])
	w.Fixed(tr.ClaimB[:])
	w.Bool(tr.Decided)
	w.Fixed(tr.Root[:])
	w.U32(uint32(len(tr.Wrong)))
	for _, f := range tr.Wrong {
		w.U8(uint8(f.Side))
		w.String(f.Reason)
	}
	w.String(tr.Note)
	return w.Bytes()
}
