package chain

// The chain rules an instance is made with and the genesis descriptor its
// ID hashes (docs/formats/instance.md, decision 141).

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Rules are the rules of an instance's chain beyond the phases, fixed when
// the instance is made: every block's execution depends on them, so
// changing them would make the chain's own replay disagree with it. They
// are part of the genesis descriptor, and so of the instance ID.
type Rules struct {
	Fee    *phases.FeeToken // the fee token; nil for none (transactions pay no fee)
	Reward *Reward          // the block reward; nil for none
}

// Reward is a block reward: the note a block's reward transaction mints to
// its producer, of Application and Owner (a predicate that lets the key's
// owner spend, as examples/sig), at key "<producer>:reward:<height>",
// holding Amount in decimal.
type Reward struct {
	Application notes.Hash
	Owner       notes.Hash
	Amount      uint64 // 1 ..= phases.MaxFeeAmount
}

// Check refuses rules whose fee token or reward is malformed.
func (r Rules) Check() error {
	if r.Fee != nil {
		if err := r.Fee.Validate(); err != nil {
			return err
		}
	}
	if r.Reward != nil && (r.Reward.Amount < 1 || r.Reward.Amount > phases.MaxFeeAmount) {
		return fmt.Errorf("reward amount %d outside 1..%d", r.Reward.Amount, uint64(phases.MaxFeeAmount))
	}
	return nil
}

// RewardKey is the state key of the reward minted to producer at height.
func (r *Reward) RewardKey(producer keys.PublicKey, height uint64) notes.StateKey {
	return notes.StateKey{Application: r.Application, Owner: r.Owner, Key: []byte(producer.String() + ":reward:" + strconv.FormatUint(height, 10))}
}

// RewardTx is the unsigned reward transaction of the block at height made
// by producer: no code, extradata phases.RewardMagic, the height as its
// nonce, the producer its one signer, the reward's key its one write
// constraint, gas limit 1 (it runs no Lua).
func (r *Reward) RewardTx(producer keys.PublicKey, height uint64) *phases.Tx {
	return &phases.Tx{
		Nonce: height, GasLimit: 1,
		Write:     notes.ConstraintSet{notes.ExactPattern(r.RewardKey(producer, height))},
		Extradata: []byte(phases.RewardMagic),
		Signers:   []keys.PublicKey{producer},
	}
}

// RewardNote is the note the reward transaction tx mints in the block at
// height made by producer, or why it may not mint: it must be exactly that
// block's RewardTx (signatures aside).
func (r *Reward) RewardNote(tx *phases.Tx, producer keys.PublicKey, height uint64) (*notes.Note, error) {
	want := r.RewardTx(producer, height)
	switch {
	case len(tx.Signers) != 1 || tx.Signers[0] != producer:
		return nil, fmt.Errorf("a reward transaction is signed by the block's producer %s alone", producer)
	case tx.Nonce != height:
		return nil, fmt.Errorf("a reward transaction for block %d, this is block %d", tx.Nonce, height)
	case tx.ID() != want.ID():
		return nil, errors.New("a reward transaction is the block's RewardTx: no fee, no read constraints, the reward's key as its one write constraint, gas limit 1")
	}
	k := r.RewardKey(producer, height)
	return &notes.Note{Application: k.Application, Owner: k.Owner, Key: k.Key, Value: []byte(strconv.FormatUint(r.Amount, 10))}, nil
}

// genesisVersion is the first byte of a genesis descriptor: 1 for an
// instance without rules (every instance made before them), 2 with.
const (
	genesisV1 = 1
	genesisV2 = 2
)

// Genesis is what an instance ID is the SHA-256 of: the executor's public
// key, a salt chosen at init, and the rules.
type Genesis struct {
	Executor keys.PublicKey
	Salt     [32]byte
	Rules    Rules
}

// Encode returns the descriptor: version 1 (executor key and salt) for an
// instance with no rules, so that the IDs of instances made before rules
// existed are unchanged, and version 2 with the rules after them.
func (g *Genesis) Encode() []byte {
	w := enc.NewWriter(256)
	if g.Rules.Fee == nil && g.Rules.Reward == nil {
		w.U8(genesisV1)
		w.Fixed(g.Executor[:])
		w.Fixed(g.Salt[:])
		return w.Bytes()
	}
	w.U8(genesisV2)
	w.Fixed(g.Executor[:])
	w.Fixed(g.Salt[:])
	w.Bool(g.Rules.Fee != nil)
	if f := g.Rules.Fee; f != nil {
		w.Fixed(f.Application[:])
		w.Fixed(f.Owner[:])
		w.String(f.Token)
	}
	w.Bool(g.Rules.Reward != nil)
	if r := g.Rules.Reward; r != nil {
		w.Fixed(r.Application[:])
		w.Fixed(r.Owner[:])
		w.U64(r.Amount)
	}
	return w.Bytes()
}

// ID is the instance ID: the SHA-256 of the descriptor.
func (g *Genesis) ID() [32]byte { return sha256.Sum256(g.Encode()) }

// DecodeGenesis parses a genesis descriptor, refusing a version 2 one
// without rules (version 1 is its encoding) and malformed rules.
func DecodeGenesis(b []byte) (*Genesis, error) {
	r := enc.NewReader(b)
	g := &Genesis{}
	v := r.U8()
	if r.Err() == nil && v != genesisV1 && v != genesisV2 {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	r.Into(g.Executor[:])
	r.Into(g.Salt[:])
	if v == genesisV2 {
		if r.Bool() {
			f := &phases.FeeToken{}
			r.Into(f.Application[:])
			r.Into(f.Owner[:])
			f.Token = r.String(128, "fee token")
			g.Rules.Fee = f
		}
		if r.Bool() {
			rw := &Reward{}
			r.Into(rw.Application[:])
			r.Into(rw.Owner[:])
			rw.Amount = r.U64()
			g.Rules.Reward = rw
		}
		if r.Err() == nil && g.Rules.Fee == nil && g.Rules.Reward == nil {
			r.Fail(errors.New("version 2 without rules (version 1 is its encoding)"))
		}
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: genesis descriptor: %w", err)
	}
	if err := g.Rules.Check(); err != nil {
		return nil, fmt.Errorf("fractal: genesis descriptor: %w", err)
	}
	return g, nil
}
