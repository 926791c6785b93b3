package phases

import (
	"bytes"
	"fmt"

	"github.com/fractalvm/fractal/notes"
)

// Block rewards (docs/decisions/143-block-rewards.md). A block may carry
// one reward transaction: no code, extradata RewardMagic. Instead of
// phases 1–3 the host checks it (Rewards.RewardNote: it must be signed by
// the block's producer, for this block) and its one output is the reward
// note the host mints, owned by the producer; no predicate runs for it, as
// for the notes a fee moves. Applications take reward notes as payment
// (examples/reward).

// RewardMagic is the whole extradata of a reward transaction.
const RewardMagic = "fractal reward v1\x00"

// IsReward reports whether tx is a reward transaction.
func IsReward(tx *Tx) bool {
	return len(tx.Lookup) == 0 && len(tx.Calculation) == 0 && bytes.Equal(tx.Extradata, []byte(RewardMagic))
}

// Rewards is implemented by a Code whose host mints block rewards.
// RewardNote returns the note the reward transaction tx mints in the block
// being run, or the reason it may not mint.
type Rewards interface {
	RewardNote(tx *Tx) (*notes.Note, error)
}

// rewardMint replaces phases 1–3 of a reward transaction: the host names
// the note, which must lie within the write constraints on a free key.
func (x *execution) rewardMint() (*Outcome, error) {
	r, ok := x.code.(Rewards)
	if !ok {
		return x.refuse(PhaseAdmission, Predicate{}, "reward: this instance gives no block rewards"), nil
	}
	n, err := r.RewardNote(x.tx)
	if err != nil {
		return x.refuse(PhaseAdmission, Predicate{}, "reward: "+err.Error()), nil
	}
	key := n.StateKey()
	if !x.tx.Write.Match(key) {
		return x.refuse(PhaseCalculation, Predicate{}, fmt.Sprintf("reward: output at %s is outside the write constraints", key)), nil
	}
	live, err := x.st.Get(key)
	if err != nil {
		return nil, err
	}
	if live != nil {
		return x.refuse(PhaseCalculation, Predicate{}, fmt.Sprintf("reward: output at %s: a live note is already there", key)), nil
	}
	x.outputs = []notes.Note{*n}
	x.rc.Outputs = []NoteRef{refOf(n)}
	return nil, nil
}
