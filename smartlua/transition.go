// Package smartlua implements Smart Lua: Lua states named by hash, changed
// by signed transitions that anyone can re-execute and check, kept in a
// chain store in a folder.
//
// A transition is (version, optional previous state hash, Lua fragment,
// public keys). Its fragment runs on the previous state as deserialized (or
// on a fresh global table for an initial state) with `signers` holding the
// keys; the new state hash is SHA-256 over the canonical encoding of the
// transition and the serialized state, and each listed key signs that hash
// with XEdDSA. See docs/formats/smartlua.md.
package smartlua

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/vp"
)

// Version is the one transition version this package makes and accepts.
const Version = 1

// Bounds on what a decoder accepts.
const (
	MaxKeys     = 64
	maxState    = 64 << 20
	hashDomain  = "fractal/smartlua/state/v1"
	maxFragment = vp.MaxSource
)

// Hash names a state.
type Hash [32]byte

// String is the lower-case hex form used on the command line and in files.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads the lower-case hex form of a state hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) || hex.EncodeToString(b) != s {
		return h, fmt.Errorf("smartlua: %q is not a state hash (64 lower-case hex digits)", s)
	}
	copy(h[:], b)
	return h, nil
}

// Transition is one step's parameters.
type Transition struct {
	Version  uint8
	Prev     *Hash // nil for an initial state
	Fragment []byte
	Keys     []keys.PublicKey // in the order the fragment sees them in `signers`
}

// Encode returns the canonical encoding:
//
//	u8 version, bool hasPrev, [32 prev], var fragment, u32 n, n × 32 key
func (t *Transition) Encode() []byte {
	w := enc.NewWriter(48 + len(t.Fragment) + 32*len(t.Keys))
	w.U8(t.Version)
	w.Bool(t.Prev != nil)
	if t.Prev != nil {
		w.Fixed(t.Prev[:])
	}
	w.Var(t.Fragment)
	w.U32(uint32(len(t.Keys)))
	for _, k := range t.Keys {
		w.Fixed(k[:])
	}
	return w.Bytes()
}

// check refuses parameters no valid transition has.
func (t *Transition) check() error {
	if t.Version != Version {
		return fmt.Errorf("version %d, want %d", t.Version, Version)
	}
	if len(t.Fragment) > maxFragment {
		return fmt.Errorf("fragment is %d bytes, more than %d", len(t.Fragment), maxFragment)
	}
	if len(t.Keys) > MaxKeys {
		return fmt.Errorf("%d keys, more than %d", len(t.Keys), MaxKeys)
	}
	seen := map[keys.PublicKey]bool{}
	for _, k := range t.Keys {
		if seen[k] {
			return fmt.Errorf("key %s listed twice", k)
		}
		seen[k] = true
	}
	return nil
}

// DecodeTransition reads a canonical transition encoding.
func DecodeTransition(b []byte) (*Transition, error) {
	r := enc.NewReader(b)
	t := &Transition{Version: r.U8()}
	if r.Bool() {
		var h Hash
		r.Into(h[:])
		t.Prev = &h
	}
	t.Fragment = r.Var(maxFragment, "fragment")
	n := r.Count(MaxKeys, "keys")
	for i := 0; i < n && r.Err() == nil; i++ {
		var k keys.PublicKey
		r.Into(k[:])
		t.Keys = append(t.Keys, k)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("smartlua: decode transition: %w", err)
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("smartlua: decode transition: %w", err)
	}
	return t, nil
}

// StateHash is SHA-256 over the canonical encoding of
// (domain, transition, serialized state).
func StateHash(t *Transition, state []byte) Hash {
	w := enc.NewWriter(len(hashDomain) + len(state) + len(t.Fragment) + 128)
	w.String(hashDomain)
	w.Var(t.Encode())
	w.Var(state)
	return sha256.Sum256(w.Bytes())
}

// Record is a state with what made it: everything the store keeps.
type Record struct {
	Hash       Hash
	Transition *Transition
	State      []byte
	Sigs       [][]byte // Sigs[i] is Transition.Keys[i]'s signature of Hash
}

// EncodeSigs is the canonical signature list: u32 n, n × var signature.
func EncodeSigs(sigs [][]byte) []byte {
	w := enc.NewWriter(4 + len(sigs)*(4+keys.SignatureSize))
	w.U32(uint32(len(sigs)))
	for _, s := range sigs {
		w.Var(s)
	}
	return w.Bytes()
}

// DecodeSigs reads EncodeSigs' output.
func DecodeSigs(b []byte) ([][]byte, error) {
	r := enc.NewReader(b)
	n := r.Count(MaxKeys, "signatures")
	sigs := make([][]byte, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		sigs = append(sigs, r.Var(keys.SignatureSize, "signature"))
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("smartlua: decode signatures: %w", err)
	}
	return sigs, nil
}

// Limits bound every Smart Lua step. They are part of the protocol: a
// verifier must run with the same figures as the maker.
func Limits() vp.Limits { return vp.DefaultLimits() }

// call is the sandbox input of a step: `signers` as an array of standard
// base64 public keys, and at most gas of Limits' gas.
func call(t *Transition, gas uint64) vp.Call {
	s := make([]any, len(t.Keys))
	for i, k := range t.Keys {
		s[i] = k.String()
	}
	lim := Limits()
	lim.Gas = min(lim.Gas, gas)
	return vp.Call{Globals: map[string]any{"signers": s}, Limits: lim}
}

// Outcome is what running a transition produced.
type Outcome struct {
	Hash   Hash
	State  []byte
	Result vp.Result
}

// Execute runs t on prev (nil for an initial state; the serialized previous
// state otherwise) and names the resulting state. It signs nothing.
func Execute(pool *vp.Pool, t *Transition, prev []byte) (*Outcome, error) {
	return execute(pool, t, prev, Limits().Gas)
}

// execute is Execute with the step's gas capped at gas. Gas is never part of
// what a step computes (running out is uncatchable), so a step that finishes
// under a lower cap gives the same state as under Limits.
func execute(pool *vp.Pool, t *Transition, prev []byte, gas uint64) (*Outcome, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("smartlua: %w", err)
	}
	if (t.Prev == nil) != (prev == nil) {
		return nil, errors.New("smartlua: previous state given for an initial transition, or missing for a later one")
	}
	res, st, err := pool.RunState(t.Fragment, prev, call(t, gas))
	if err != nil {
		return &Outcome{Result: res}, fmt.Errorf("smartlua: fragment: %w", err)
	}
	if len(st) > maxState {
		return nil, fmt.Errorf("smartlua: state is %d bytes, more than %d", len(st), maxState)
	}
	return &Outcome{Hash: StateHash(t, st), State: st, Result: res}, nil
}
