// Package vp is Fractal's Lua sandbox: it compiles Lua fragments (lookup and
// calculation code, validity predicates, Smart Lua transitions) with gas
// metering woven into their syntax tree, runs them on pooled gopher-lua states
// that expose only safe, deterministic libraries, and converts values between
// Go and Lua. The same program with the same call gives the same values, log
// and gas on every machine.
package vp

import (
	"errors"
	"fmt"
)

// Limits bound one run. Gas and memory are counted by the sandbox itself
// (never read from the Go runtime), so they are the same on every machine.
type Limits struct {
	Gas       uint64 // gas budget for the run
	MaxMemory int64  // bytes, as counted by the sandbox (a model of what the run builds)
	MaxString int    // longest string a fragment may build
	MaxTable  int    // most entries in one table
	MaxDepth  int    // deepest call stack
}

// DefaultLimits returns the limits used when a caller has no better figures.
func DefaultLimits() Limits {
	return Limits{Gas: 1_000_000, MaxMemory: 16 << 20, MaxString: 1 << 20, MaxTable: 1 << 16, MaxDepth: 200}
}

// HostFunc is a Go function callable from Lua, using the Go value model.
// A returned error raises a Lua error (catchable by pcall) unless it wraps
// ErrAbort, which ends the whole run at once (pcall cannot catch it). A
// call costs 1 gas; a host function whose work costs more charges it as a
// HostFuncCtx (host.go).
type HostFunc func(args []any) ([]any, error)

// ErrAbort, wrapped by a HostFunc's error, ends the run uncatchably.
var ErrAbort = errors.New("aborted")

// Kind says why a run failed.
type Kind int

// The kinds of Error.
const (
	KindCompile Kind = iota // the source does not parse or uses a forbidden construct
	KindRuntime             // a Lua error that reached the top of the fragment
	KindGas                 // the gas budget ran out
	KindLimit               // a memory, string, table or depth cap was hit
	KindAbort               // a host function aborted the run
)

// Error is the error of Compile and Pool.Run.
type Error struct {
	Kind  Kind
	Chunk string // Program.Name
	Line  int    // 0 when unknown
	Msg   string
	Cause error // the host error for KindAbort
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Chunk, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Chunk, e.Msg)
}

func (e *Error) Unwrap() error { return e.Cause }

// Call is the input of one run.
type Call struct {
	Globals map[string]any // set in sorted name order before the run
	Limits  Limits
	Seed    uint64 // seeds math.random
}

// Result is the output of one run.
type Result struct {
	Values  []any // the chunk's return values, Go value model
	GasUsed uint64
	Memory  int64    // bytes counted against Limits.MaxMemory
	Log     []string // one entry per print call
}
