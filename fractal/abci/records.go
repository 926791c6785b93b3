package abci

import (
	"fmt"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/internal/enc"
)

// Misbehavior is one validator's misbehaviour as CometBFT reports it with a
// block (its evidence, e.g. two conflicting votes, is in CometBFT's block
// store), kept in the instance's store for "fractal evidence".
type Misbehavior struct {
	Type       string    // "duplicate vote" or "light client attack"
	Validator  []byte    // the validator's address (20 bytes)
	Power      int64     // its voting power
	Height     int64     // the height of the offence
	Time       time.Time // the time of the offence's block
	TotalPower int64     // the set's voting power then
}

const misbehaviorVersion = 1

// maxAddressBytes bounds a validator address in a record.
const maxAddressBytes = 64

// EncodeMisbehavior returns the record of m: version, type, address,
// power, height, time (Unix nanoseconds) and total power.
func EncodeMisbehavior(m abcitypes.Misbehavior) []byte {
	w := enc.NewWriter(64)
	w.U8(misbehaviorVersion)
	w.U8(uint8(m.Type))
	w.Var(m.Validator.Address)
	w.U64(uint64(m.Validator.Power))
	w.U64(uint64(m.Height))
	w.U64(uint64(m.Time.UnixNano()))
	w.U64(uint64(m.TotalVotingPower))
	return w.Bytes()
}

// DecodeMisbehavior parses a record EncodeMisbehavior wrote.
func DecodeMisbehavior(raw []byte) (*Misbehavior, error) {
	r := enc.NewReader(raw)
	if v := r.U8(); r.Err() == nil && v != misbehaviorVersion {
		return nil, fmt.Errorf("abci: misbehaviour record: unknown version %d", v)
	}
	t := abcitypes.MisbehaviorType(r.U8())
	m := &Misbehavior{Validator: r.Var(maxAddressBytes, "address")}
	m.Power, m.Height = int64(r.U64()), int64(r.U64())
	m.Time = time.Unix(0, int64(r.U64())).UTC()
	m.TotalPower = int64(r.U64())
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("abci: misbehaviour record: %w", err)
	}
	switch t {
	case abcitypes.MisbehaviorType_DUPLICATE_VOTE:
		m.Type = "duplicate vote"
	case abcitypes.MisbehaviorType_LIGHT_CLIENT_ATTACK:
		m.Type = "light client attack"
	default:
		return nil, fmt.Errorf("abci: misbehaviour record: unknown type %d", t)
	}
	return m, nil
}
