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

// Gas costs of CheckSuccessor, besides the gas the re-execution itself uses
// (docs/decisions/049-smartlua-on-an-instance.md). Decoding, deserializing,
// serializing and hashing the states are not metered by the sandbox, so they
// are paid by the byte (about 50 ns a byte, the sandbox's median time per
// gas: decision 090); a signature costs what crypto.verify costs a fragment.
const (
	GasCheck    = 100          // each call
	GasPerSig   = vp.VerifyGas // each listed key's XEdDSA verification
	BytesPerGas = 1            // of prev and next together
)

// ErrOutOfGas is wrapped by CheckSuccessor's error when the gas it was given
// ran out.
var ErrOutOfGas = errors.New("out of gas")

// CheckSuccessor verifies that next (an EncodeRecord value) is a valid
// successor of prev, or with prev nil a valid initial state: signatures,
// the link to prev's hash, and re-execution to the same state. prev itself
// is trusted: on an instance it was checked when its note was created.
//
// It spends at most gas and returns what it spent, with or without an
// error: GasCheck, the bytes of prev and next, GasPerSig a key and the gas
// of the re-execution, which runs under Limits capped at what is left. When
// that is not enough it spends all of gas and its error wraps ErrOutOfGas.
// The figure depends only on the arguments.
func CheckSuccessor(pool *vp.Pool, prev, next []byte, gas uint64) (*Record, uint64, error) {
	used := uint64(GasCheck) + uint64(len(prev)+len(next))/BytesPerGas
	outOfGas := func(need string) (*Record, uint64, error) {
		return nil, gas, fmt.Errorf("smartlua: %w: %s (%d gas given)", ErrOutOfGas, need, gas)
	}
	if used > gas {
		return outOfGas(fmt.Sprintf("decoding %d bytes needs %d", len(prev)+len(next), used))
	}
	rec, err := DecodeRecord(next)
	if err != nil {
		return nil, used, err
	}
	if used += GasPerSig * uint64(len(rec.Transition.Keys)); used > gas {
		return outOfGas(fmt.Sprintf("decoding and %d signatures need %d", len(rec.Transition.Keys), used))
	}
	v := NewVerifier(pool, func(h Hash) (*Record, error) { return nil, fmt.Errorf("%w: %s", ErrNotFound, h) })
	if prev == nil {
		if rec.Transition.Prev != nil {
			return nil, used, fmt.Errorf("smartlua: state %s is not an initial state", rec.Hash)
		}
	} else {
		p, err := DecodeRecord(prev)
		if err != nil {
			return nil, used, err
		}
		if rec.Transition.Prev == nil || *rec.Transition.Prev != p.Hash {
			return nil, used, fmt.Errorf("smartlua: state %s does not follow state %s", rec.Hash, p.Hash)
		}
		v.trusted[p.Hash] = p.State
	}
	left := gas - used
	ran, err := v.check(rec, left)
	var ve *vp.Error
	if errors.As(err, &ve) && ve.Kind == vp.KindGas && left < Limits().Gas {
		return outOfGas("re-execution ran out")
	}
	if err != nil {
		return nil, used + ran, err
	}
	return rec, used + ran, nil
}

// HostName is the global HostCheck is bound to in an instance's predicates.
const HostName = "smartlua_check"

// HostCheck is the host function `smartlua_check(prev, next)` that the
// smartlua application predicate calls (examples/smartlua): prev is the
// spent note's value or nil, next the created note's value; it returns the
// new state hash in lower-case hex, or raises the reason it is refused.
// CheckSuccessor gets what is left of the calling run's gas and its spending
// is charged to that run, so the predicate's Lua and its checks share one
// budget; when it runs out the run ends out of gas (pcall cannot catch it).
func HostCheck(pool *vp.Pool) vp.HostFuncCtx {
	return func(c *vp.HostCall, args []any) ([]any, error) {
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
		rec, used, err := CheckSuccessor(pool, prev, []byte(next), c.Remaining())
		if errors.Is(err, ErrOutOfGas) {
			return nil, c.OutOfGas()
		}
		if cerr := c.Charge(used); cerr != nil {
			return nil, cerr
		}
		if err != nil {
			return nil, err
		}
		return []any{rec.Hash.String()}, nil
	}
}
