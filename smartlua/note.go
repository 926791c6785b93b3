package smartlua

import (
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/vp"
)

// EncodeRecord is a record as one byte string, the value of a note holding
// a Smart Lua state on an instance:
//
//	var transition, var signatures, var state
//
// The hash is not stored: DecodeRecord recomputes it.
func EncodeRecord(rec *Record) []byte {
	t, s := rec.Transition.Encode(), EncodeSigs(rec.Sigs)
	w := enc.NewWriter(12 + len(t) + len(s) + len(rec.State))
	w.Var(t)
	w.Var(s)
	w.Var(rec.State)
	return w.Bytes()
}

// DecodeRecord reads EncodeRecord's output and names the state. It checks
// the encoding only; CheckSuccessor verifies.
func DecodeRecord(b []byte) (*Record, error) {
	r := enc.NewReader(b)
	tb := r.Var(maxFragment+64*MaxKeys+64, "transition")
	sb := r.Var(4+MaxKeys*68, "signatures")
	st := r.Var(maxState, "state")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("smartlua: decode record: %w", err)
	}
	t, err := DecodeTransition(tb)
	if err != nil {
		return nil, err
	}
	sigs, err := DecodeSigs(sb)
	if err != nil {
		return nil, err
	}
	return &Record{Hash: StateHash(t, st), Transition: t, State: st, Sigs: sigs}, nil
}

// CheckSuccessor verifies that next (an EncodeRecord value) is a valid
// successor of prev, or with prev nil a valid initial state: signatures,
// the link to prev's hash, and re-execution to the same state. prev itself
// is trusted: on an instance it was checked when its note was created.
func CheckSuccessor(pool *vp.Pool, prev, next []byte) (*Record, error) {
	rec, err := DecodeRecord(next)
	if err != nil {
		return nil, err
	}
	v := NewVerifier(pool, func(h Hash) (*Record, error) { return nil, fmt.Errorf("%w: %s", ErrNotFound, h) })
	if prev == nil {
		if rec.Transition.Prev != nil {
			return nil, fmt.Errorf("smartlua: state %s is not an initial state", rec.Hash)
		}
	} else {
		p, err := DecodeRecord(prev)
		if err != nil {
			return nil, err
		}
		if rec.Transition.Prev == nil || *rec.Transition.Prev != p.Hash {
			return nil, fmt.Errorf("smartlua: state %s does not follow state %s", rec.Hash, p.Hash)
		}
		v.trusted[p.Hash] = p.State
	}
	if err := v.Check(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// HostCheck is the host function `smartlua_check(prev, next)` that the
// smartlua application predicate calls (examples/smartlua): prev is the
// spent note's value or nil, next the created note's value; it returns the
// new state hash in lower-case hex, or raises the reason it is refused.
func HostCheck(pool *vp.Pool) vp.HostFunc {
	return func(args []any) ([]any, error) {
		if len(args) != 2 {
			return nil, errors.New("smartlua_check: want (prev value or nil, next value)")
		}
		next, ok := args[1].(string)
		if !ok {
			return nil, errors.New("smartlua_check: next value must be a string")
		}
		var prev []byte
		switch p := args[0].(type) {
		case nil:
		case string:
			prev = []byte(p)
		default:
			return nil, errors.New("smartlua_check: prev value must be a string or nil")
		}
		rec, err := CheckSuccessor(pool, prev, []byte(next))
		if err != nil {
			return nil, err
		}
		return []any{rec.Hash.String()}, nil
	}
}
