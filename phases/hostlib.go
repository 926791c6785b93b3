package phases

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fractalvm/fractal/vp"
)

// Host functions are Go functions that a transaction's Lua code may call
// besides the globals the phases give it. phases defines none itself: the
// instance registers them (Code.Hosts), so phases depends on no package
// that implements one, and every run of a transaction (sealing, verify's
// replay, a dispute's referee) gets them from the same registry
// (docs/decisions/104-host-function-registry.md).

// Stage names the code a host function is given to.
type Stage uint8

const (
	StageLookup      Stage = 1 << iota // the lookup code
	StageCalculation                   // the calculation code
	StagePredicate                     // every validity predicate
)

func (s Stage) String() string {
	var names []string
	for _, n := range []struct {
		s    Stage
		name string
	}{{StageLookup, "lookup"}, {StageCalculation, "calculation"}, {StagePredicate, "predicate"}} {
		if s&n.s != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, "+")
}

// HostFunc is one host function: the global it is bound to, the stages whose
// code sees it, and how to make it for one stage of a transaction.
type HostFunc struct {
	Name   string
	Stages Stage
	// New makes the function for one stage of one transaction: its lookup,
	// its calculation, or all its predicates, which share one. What the
	// function returns and charges must depend only on run and its
	// arguments, so that every executor computes the same receipt; it
	// charges its work to the gas of the run that calls it through
	// vp.HostCall (decision 044).
	New func(run HostRun) vp.HostFuncCtx
}

// HostRun is what a host function may use of the run that calls it.
type HostRun struct {
	Stage Stage
	Tx    *Tx // the transaction; not to be changed
	// State is the live state as the transaction sees it. A host function
	// may read only keys inside Tx.Read: the scheduler runs transactions
	// whose constraints do not conflict side by side, and their outcomes
	// must not depend on which ran first.
	State State
	Pool  *vp.Pool // for a host function that runs Lua itself
}

// Hosts is a fixed set of host functions, in name order. It is safe for
// concurrent use.
type Hosts struct {
	fns []HostFunc
}

// reservedGlobals are the names the phases give Lua code themselves
// (execute.go, transfer.go); a host function may not take one.
var reservedGlobals = []string{
	"application", "exports", "extradata", "get", "imported", "index",
	"inputs", "note", "outputs", "role", "scan", "signers", "txid",
}

// NewHosts returns the set of fns. It refuses a name that is not a Lua
// identifier, that the phases or the sandbox already use (a library such as
// string, a builtin such as print), or that repeats; a function with no
// stage or nothing to make it.
func NewHosts(fns ...HostFunc) (*Hosts, error) {
	h := &Hosts{fns: slices.Clone(fns)}
	slices.SortFunc(h.fns, func(a, b HostFunc) int { return strings.Compare(a.Name, b.Name) })
	pool := vp.NewPool()
	for i, f := range h.fns {
		switch {
		case !isIdentifier(f.Name):
			return nil, fmt.Errorf("phases: host function %q: not a Lua name", f.Name)
		case slices.Contains(reservedGlobals, f.Name):
			return nil, fmt.Errorf("phases: host function %s: a global the phases set", f.Name)
		case i > 0 && h.fns[i-1].Name == f.Name:
			return nil, fmt.Errorf("phases: host function %s: registered twice", f.Name)
		case f.Stages == 0 || f.Stages&^(StageLookup|StageCalculation|StagePredicate) != 0:
			return nil, fmt.Errorf("phases: host function %s: stages %#x", f.Name, uint8(f.Stages))
		case f.New == nil:
			return nil, fmt.Errorf("phases: host function %s: no New", f.Name)
		}
		if err := sandboxFree(pool, f.Name); err != nil {
			return nil, fmt.Errorf("phases: host function %s: %w", f.Name, err)
		}
	}
	return h, nil
}

// MustHosts is NewHosts for a set fixed in the program: it panics on a set
// NewHosts refuses.
func MustHosts(fns ...HostFunc) *Hosts {
	h, err := NewHosts(fns...)
	if err != nil {
		panic(err)
	}
	return h
}

// Names returns the names of the functions given to stage s, sorted.
func (h *Hosts) Names(s Stage) []string {
	var names []string
	for _, f := range h.list() {
		if f.Stages&s != 0 {
			names = append(names, f.Name)
		}
	}
	return names
}

// add binds in g the functions given to run's stage.
func (h *Hosts) add(g map[string]any, run HostRun) {
	for _, f := range h.list() {
		if f.Stages&run.Stage != 0 {
			g[f.Name] = f.New(run)
		}
	}
}

func (h *Hosts) list() []HostFunc {
	if h == nil {
		return nil
	}
	return h.fns
}

// Abort is what a host function returns to end the run uncatchably (pcall
// cannot catch it) and refuse the transaction with the reason, as a read
// outside the read constraints does.
func Abort(format string, args ...any) error { return abort(format, args...) }

// HostFailure is what a host function returns when the host itself failed
// (the state or the store, not the transaction): the run stops
// uncatchably and Execute returns err instead of a receipt.
func HostFailure(err error) error { return fmt.Errorf("%w: %w", vp.ErrAbort, hostError{err}) }

// host binds in g the instance's host functions for stage s.
func (x *execution) host(g map[string]any, s Stage) {
	x.code.Hosts().add(g, HostRun{Stage: s, Tx: x.tx, State: x.st, Pool: x.pool})
}

// luaKeywords are Lua 5.1's reserved words.
var luaKeywords = []string{
	"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if",
	"in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

func isIdentifier(s string) bool {
	if s == "" || slices.Contains(luaKeywords, s) {
		return false
	}
	for i, r := range s {
		if r != '_' && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z') && (i == 0 || !('0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

// sandboxFree checks that the sandbox gives Lua code no global called name
// (isIdentifier(name) holds, so it can be written into the fragment).
func sandboxFree(pool *vp.Pool, name string) error {
	prog, err := vp.Compile("host", []byte("return "+name+" == nil"))
	if err != nil {
		return err
	}
	res, err := pool.Run(prog, vp.Call{Limits: vp.DefaultLimits()})
	if err != nil {
		return err
	}
	if len(res.Values) != 1 || res.Values[0] != true {
		return errors.New("a global of the sandbox")
	}
	return nil
}
