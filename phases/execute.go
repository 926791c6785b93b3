package phases

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"

	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// MaxScanNotes is the most notes one scan call may return; a larger scan
// aborts the lookup.
const MaxScanNotes = 1024

// State is the read-only view of live notes that the phases run against.
// The instance implements it over a storage snapshot; the scheduler wraps it
// in an overlay. It must allow concurrent calls. An error means the host
// failed (not the transaction): Execute returns it instead of a receipt.
type State interface {
	// Get returns the live note at k, or nil, nil when there is none.
	Get(k notes.StateKey) (*notes.Note, error)
	// Scan calls fn for each live note matching p in state-key (String())
	// order, and stops with fn's error.
	Scan(p notes.Pattern, fn func(*notes.Note) error) error
}

// ErrUnknownCode is what Code.Program wraps when no code has the asked hash.
var ErrUnknownCode = errors.New("unknown code")

// Code is what the instance gives Lua code to run with: the deployed
// predicates and the host functions. It must allow concurrent calls.
type Code interface {
	// Program returns the compiled predicate whose Lua source has SHA-256
	// h. For a hash it does not hold it returns an error wrapping
	// ErrUnknownCode, and the transaction is refused; a *vp.Error (stored
	// code that no longer compiles) also refuses it; any other error is a
	// host failure that Execute returns.
	Program(h notes.Hash) (*vp.Program, error)
	// Hosts returns the host functions Lua code may call (hostlib.go); nil
	// is none. Every run of a transaction must get the same set.
	Hosts() *Hosts
}

// Outcome is the result of phases 1–3 for one transaction: its receipt and,
// when accepted, the effects that phase 4 commits atomically — delete every
// Spent note, then write every Created note. A refused outcome has no
// effects of its own; accepted or refused, the fee it paid (Fee) is
// committed too (fee.go).
type Outcome struct {
	Receipt Receipt
	Spent   []notes.Note // the inputs, in lookup order
	Created []notes.Note // the outputs, in calculation order
	Exports []Export     // notes leaving for other instances (transfer.go)
	Import  *Import      // the checked claim of an import transaction
	Fee     *FeeCharge   // the fee paid, accepted or refused (fee.go); nil for none
}

// Execute runs phases 1–3 of tx against st: it checks the transaction's
// fields and signatures (not the signatures of a transaction marked by
// Tx.MarkVerified), runs the lookup code, the calculation code and every
// validity predicate, and returns the outcome. It never changes st. The error
// is nil unless the host failed (st or code returned a host error), in which
// case no outcome is given and nothing may be committed.
func Execute(st State, code Code, pool *vp.Pool, tx *Tx) (*Outcome, error) {
	if out := admit(tx); out != nil {
		return out, nil
	}
	return execute(st, code, pool, tx, false)
}

// Inputs runs phase 1 alone: the notes tx's lookup code names as its inputs
// in st, in lookup order, or the refused outcome when the lookup refuses
// (no live note where it points, a note outside the constraints, out of
// gas). It checks neither the signatures nor the fields beyond what the
// lookup needs: a consensus mempool's admission runs it once per
// transaction to learn which notes the transaction would spend, and again
// after a block when one of them is gone. An import names no inputs (its
// claim stands in for them).
func Inputs(st State, code Code, pool *vp.Pool, tx *Tx) ([]notes.Note, *Outcome, error) {
	if IsImport(tx) {
		return nil, nil, nil
	}
	x := newExecution(st, code, pool, tx, true)
	out, err := x.lookup()
	if out != nil || err != nil {
		return nil, out, err
	}
	return x.inputs, nil, nil
}

// admit returns a refused outcome when tx is malformed or not signed by all
// its signers, and nil when it may run. Signatures are not checked again
// for a transaction marked verified (Tx.MarkVerified).
func admit(tx *Tx) *Outcome {
	err := tx.validate()
	if err == nil && !tx.markedVerified() {
		err = tx.VerifySignatures()
	}
	return admission(tx, err)
}

// admission returns the outcome of a transaction refused at admission for
// err, or nil when err is nil.
func admission(tx *Tx, err error) *Outcome {
	if err == nil {
		return nil
	}
	x := &execution{tx: tx, id: tx.ID()}
	return x.refuse(PhaseAdmission, Predicate{}, err.Error())
}

// execution is the state of one transaction's run through phases 1–3.
type execution struct {
	st   State
	code Code
	pool *vp.Pool
	tx   *Tx
	id   notes.Hash
	// The globals every Lua run of the transaction sees, boxed once for the
	// maps of globals of its lookup, calculation and predicates.
	txid      any // lower-case hex of id
	signers   any // []any of the standard-base64 public keys
	extradata any // tx.Extradata
	rc        Receipt
	serial    bool // run predicates one after another (the scheduler already fills the cores)
	inputs    []notes.Note
	outputs   []notes.Note
	exports   []Export
	imp       *Import      // set by an import transaction once its claim checked
	seen      []notes.Note // outputs as the predicates see them (with exports)
	fee       *feeRun      // the fee it pays, once payable (fee.go)
}

func newExecution(st State, code Code, pool *vp.Pool, tx *Tx, serial bool) *execution {
	x := &execution{st: st, code: code, pool: pool, tx: tx, id: tx.ID(), serial: serial}
	signers := make([]any, 0, len(tx.Signers))
	for _, s := range tx.Signers {
		signers = append(signers, s.String())
	}
	x.txid, x.signers, x.extradata = hex.EncodeToString(x.id[:]), signers, tx.Extradata
	return x
}

func execute(st State, code Code, pool *vp.Pool, tx *Tx, serial bool) (*Outcome, error) {
	x := newExecution(st, code, pool, tx, serial)
	if out, err := x.payable(); out != nil || err != nil {
		return out, err
	}
	steps := []func() (*Outcome, error){x.lookup, x.feeInputs, x.calculate, x.feeOutputs, x.validate}
	switch {
	case IsImport(tx):
		steps = []func() (*Outcome, error){x.importClaim, x.validate}
	case IsReward(tx):
		steps = []func() (*Outcome, error){x.rewardMint}
	}
	for _, phase := range steps {
		if out, err := phase(); out != nil || err != nil {
			if err != nil {
				return nil, err
			}
			return x.charge(out), nil
		}
	}
	x.rc.TxID, x.rc.Status = x.id, Accepted
	if x.imp != nil { // the exported note is consumed by the import index, not spent here
		return x.charge(&Outcome{Receipt: x.rc, Created: x.outputs, Import: x.imp}), nil
	}
	return x.charge(&Outcome{Receipt: x.rc, Spent: x.inputs, Created: x.outputs, Exports: x.exports}), nil
}

// refuse ends the run with a refused receipt and no effects.
func (x *execution) refuse(phase Phase, pred Predicate, reason string) *Outcome {
	x.rc.TxID, x.rc.Status, x.rc.Phase, x.rc.Predicate = x.id, Refused, phase, pred
	x.rc.Reason = clip(reason, MaxReason)
	return &Outcome{Receipt: x.rc}
}

// remaining is the gas left of the transaction's limit.
func (x *execution) remaining() uint64 {
	if used := x.rc.Gas.Total(); used < x.tx.GasLimit {
		return x.tx.GasLimit - used
	}
	return 0
}

// seed derives a run's math.random seed from the transaction ID and the
// run's label, so every run is deterministic and runs differ.
func (x *execution) seed(label []byte) uint64 {
	var buf [32 + 96]byte
	h := sha256.Sum256(append(append(buf[:0], x.id[:]...), label...))
	return binary.BigEndian.Uint64(h[:8])
}

// run runs one Lua program, within the memory budget, and adds its print
// output to the log.
func (x *execution) run(label string, prog *vp.Program, globals map[string]any, gas uint64) (vp.Result, error) {
	lim := limitsWithGas(gas)
	defer runMemory.release(runMemory.reserve(lim.MaxMemory))
	res, err := x.pool.Run(prog, vp.Call{Globals: globals, Limits: lim, Seed: x.seed([]byte(label))})
	x.log(label, res.Log)
	return res, err
}

func (x *execution) log(label string, lines []string) {
	for _, l := range lines {
		switch {
		case len(x.rc.Log) < MaxLogLines-1:
			x.rc.Log = append(x.rc.Log, clip(label+": "+l, MaxLogLine))
		case len(x.rc.Log) == MaxLogLines-1:
			x.rc.Log = append(x.rc.Log, "(log truncated)")
		}
	}
}

// hostError marks a State or Code failure inside a host function, so it is
// returned as an error rather than blamed on the transaction.
type hostError struct{ err error }

func (e hostError) Error() string { return e.err.Error() }
func (e hostError) Unwrap() error { return e.err }

// abort ends a Lua run uncatchably.
func abort(format string, args ...any) error {
	return fmt.Errorf("%w: %s", vp.ErrAbort, fmt.Sprintf(format, args...))
}

// luaFailure turns a failed run into either a host error or a refusal
// reason.
func luaFailure(err error) (reason string, host error) {
	var he hostError
	if errors.As(err, &he) {
		return "", he.err
	}
	return err.Error(), nil
}

// lookup is phase 1: the lookup code names the input notes through a
// read-only oracle bounded by the read constraints.
func (x *execution) lookup() (*Outcome, error) {
	if len(x.tx.Lookup) == 0 {
		return nil, nil
	}
	prog, err := programs.compile("lookup", x.tx.Lookup)
	if err != nil {
		return x.refuse(PhaseLookup, Predicate{}, err.Error()), nil
	}
	globals := map[string]any{
		"get": vp.HostFuncCtx(x.get), "scan": vp.HostFuncCtx(x.scan),
		"extradata": x.extradata, "signers": x.signers, "txid": x.txid,
	}
	x.host(globals, StageLookup)
	res, err := x.run("lookup", prog, globals, x.remaining())
	x.rc.Gas.Lookup = res.GasUsed
	if err != nil {
		reason, host := luaFailure(err)
		if host != nil {
			return nil, host
		}
		return x.refuse(PhaseLookup, Predicate{}, reason), nil
	}
	list, err := resultList(res.Values, MaxInputs)
	if err != nil {
		return x.refuse(PhaseLookup, Predicate{}, "lookup code "+err.Error()), nil
	}
	seen := make(map[string]int, len(list))
	for i, v := range list {
		n, err := x.input(i+1, v, seen)
		if err != nil {
			var he hostError
			if errors.As(err, &he) {
				return nil, he.err
			}
			return x.refuse(PhaseLookup, Predicate{}, err.Error()), nil
		}
		x.inputs = append(x.inputs, *n)
		x.rc.Inputs = append(x.rc.Inputs, refOf(n))
	}
	return nil, nil
}

// input resolves the i-th value the lookup code returned: a state key or a
// note table, which must be the live note within the read and write
// constraints (spending is a write).
func (x *execution) input(i int, v any, seen map[string]int) (*notes.Note, error) {
	var key notes.StateKey
	var want *notes.Note
	if s, ok := v.(string); ok {
		k, err := notes.ParseStateKey(s)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		key = k
	} else {
		n, err := vp.NoteFromValue(v)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		want, key = &n, n.StateKey()
	}
	ks := key.String()
	switch {
	case !x.tx.Read.Match(key):
		return nil, fmt.Errorf("input %d at %s is outside the read constraints", i, ks)
	case !x.tx.Write.Match(key):
		return nil, fmt.Errorf("input %d at %s is outside the write constraints (spending is a write)", i, ks)
	}
	if j, dup := seen[ks]; dup {
		return nil, fmt.Errorf("input %d at %s repeats input %d", i, ks, j)
	}
	seen[ks] = i
	live, err := x.st.Get(key)
	if err != nil {
		return nil, hostError{err}
	}
	if live == nil {
		return nil, fmt.Errorf("input %d: no live note at %s", i, ks)
	}
	if want != nil && want.ID() != live.ID() {
		return nil, fmt.Errorf("input %d: the live note at %s differs from the one named", i, ks)
	}
	return live, nil
}

// Gas of the lookup oracle, charged on the lookup's own meter on top of the
// 1 gas every host call costs, before the work it pays for, so a lookup
// whose budget runs out stops the reading and converting (out of gas, which
// pcall cannot catch). The rates follow the sandbox's schedule: a note table
// costs about what Lua pays to build one (a table, a provenance array, two
// 64-digit hex strings), and note bytes cost what built strings cost, 1 per
// started 32 (docs/formats/transactions.md, "What the phases do").
const (
	LookupCallGas  = 10 // each get or scan: a storage read or seek
	LookupNoteGas  = 8  // each note returned, converted to a note table
	LookupByteSpan = 32 // 1 gas per started span of a returned note's key, value and provenance bytes
)

// noteGas is what returning n to the lookup costs.
func noteGas(n *notes.Note) uint64 {
	size := len(n.Key) + len(n.Value)
	for _, p := range n.Provenance {
		size += len(p)
	}
	return LookupNoteGas + uint64(size+LookupByteSpan-1)/LookupByteSpan
}

// get is the lookup oracle's get(statekey): the live note or nil.
func (x *execution) get(c *vp.HostCall, args []any) ([]any, error) {
	if err := c.Charge(LookupCallGas); err != nil {
		return nil, err
	}
	if len(args) != 1 {
		return nil, fmt.Errorf("get: want 1 argument (a state key), got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("get: the state key must be a string")
	}
	k, err := notes.ParseStateKey(s)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if !x.tx.Read.Match(k) {
		return nil, abort("get %s: outside the read constraints", s)
	}
	n, err := x.st.Get(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", vp.ErrAbort, hostError{err})
	}
	if n == nil {
		return []any{nil}, nil
	}
	if err := c.Charge(noteGas(n)); err != nil {
		return nil, err
	}
	return []any{n}, nil
}

// scan is the lookup oracle's scan(pattern): the live notes matching the
// pattern and the read constraints, in state-key order. A pattern that
// shares no key with the read constraints aborts. The store scans only the
// pattern's intersection with each read constraint, so notes outside them
// are neither returned nor read, and the result depends only on state the
// transaction declared (decision 041). Each intersection beyond the first
// is a seek of its own and costs LookupCallGas more.
func (x *execution) scan(c *vp.HostCall, args []any) ([]any, error) {
	if err := c.Charge(LookupCallGas); err != nil {
		return nil, err
	}
	if len(args) != 1 {
		return nil, fmt.Errorf("scan: want 1 argument (a pattern), got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("scan: the pattern must be a string")
	}
	p, err := notes.ParsePattern(s)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	parts := intersections(x.tx.Read, p)
	if len(parts) == 0 {
		return nil, abort("scan %s: outside the read constraints", s)
	}
	if err := c.Charge(uint64(len(parts)-1) * LookupCallGas); err != nil {
		return nil, err
	}
	found := []any{}
	errTooMany := errors.New("too many")
	var errGas error // the charge that ran out, which ends the scan
	err = scanMerged(x.st, parts, func(n *notes.Note) error {
		if len(found) == MaxScanNotes {
			return errTooMany
		}
		if errGas = c.Charge(noteGas(n)); errGas != nil {
			return errGas
		}
		found = append(found, n)
		return nil
	})
	switch {
	case errGas != nil:
		return nil, errGas
	case err == errTooMany:
		return nil, abort("scan %s: more than %d notes", s, MaxScanNotes)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", vp.ErrAbort, hostError{err})
	}
	return []any{found}, nil
}

// intersections is p's intersection with each pattern of read that it
// overlaps, in read's order.
func intersections(read notes.ConstraintSet, p notes.Pattern) []notes.Pattern {
	var parts []notes.Pattern
	for _, r := range read {
		if q, ok := notes.Intersect(p, r); ok {
			parts = append(parts, q)
		}
	}
	return parts
}

// scanMerged calls fn once for each live note matching any of ps, in
// state-key order, and stops with fn's error. Each pattern is scanned alone,
// so the store seeks to each one's own prefix, and the scans are merged as
// they go: a scan reads a note only once fn has taken every note before it.
func scanMerged(st State, ps []notes.Pattern, fn func(*notes.Note) error) error {
	if len(ps) == 1 {
		return st.Scan(ps[0], fn)
	}
	var h scanHeap
	defer func() {
		for _, s := range h {
			s.stop()
		}
	}()
	for _, p := range ps {
		s := startScan(st, p)
		if ok, err := s.advance(); err != nil {
			return err
		} else if ok {
			heap.Push(&h, s)
		}
	}
	last := "" // no state key's text is empty
	for len(h) > 0 {
		s := h[0]
		if s.key != last { // patterns may overlap: the same note once
			last = s.key
			if err := fn(s.note); err != nil {
				return err
			}
		}
		ok, err := s.advance()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}

// errStopScan ends a store scan whose consumer has stopped pulling.
var errStopScan = errors.New("scan stopped")

// scanStream is one pattern's store scan turned into a pull iterator, at
// its current note.
type scanStream struct {
	next func() (*notes.Note, bool)
	stop func()
	err  error // what the store's Scan returned, once it has
	note *notes.Note
	key  string // note's state key text
}

func startScan(st State, p notes.Pattern) *scanStream {
	s := &scanStream{}
	s.next, s.stop = iter.Pull(func(yield func(*notes.Note) bool) {
		err := st.Scan(p, func(n *notes.Note) error {
			if !yield(n) {
				return errStopScan
			}
			return nil
		})
		if !errors.Is(err, errStopScan) {
			s.err = err
		}
	})
	return s
}

// advance moves s to its next note, and reports false at its end (with the
// store's error, if it failed).
func (s *scanStream) advance() (bool, error) {
	n, ok := s.next()
	if !ok {
		s.stop()
		return false, s.err
	}
	s.note, s.key = n, n.StateKey().String()
	return true, nil
}

// scanHeap orders streams by their current note's state key.
type scanHeap []*scanStream

func (h scanHeap) Len() int           { return len(h) }
func (h scanHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h scanHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *scanHeap) Push(x any)        { *h = append(*h, x.(*scanStream)) }
func (h *scanHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}

// calculate is phase 2: the calculation code returns the output notes.
func (x *execution) calculate() (*Outcome, error) {
	if len(x.tx.Calculation) == 0 {
		return nil, nil
	}
	prog, err := programs.compile("calculation", x.tx.Calculation)
	if err != nil {
		return x.refuse(PhaseCalculation, Predicate{}, err.Error()), nil
	}
	globals := map[string]any{"inputs": x.inputs, "extradata": x.extradata, "signers": x.signers, "txid": x.txid}
	x.host(globals, StageCalculation)
	res, err := x.run("calculation", prog, globals, x.remaining())
	x.rc.Gas.Calculation = res.GasUsed
	if err != nil {
		reason, host := luaFailure(err)
		if host != nil {
			return nil, host
		}
		return x.refuse(PhaseCalculation, Predicate{}, reason), nil
	}
	values, exports := res.Values, any(nil)
	if len(values) == 2 { // outputs, exports
		values, exports = values[:1], values[1]
	}
	list, err := resultList(values, MaxOutputs)
	if err != nil {
		return x.refuse(PhaseCalculation, Predicate{}, "calculation code "+err.Error()), nil
	}
	spent := make(map[string]bool, len(x.inputs))
	for _, in := range x.inputs {
		spent[in.StateKey().String()] = true
	}
	seen := make(map[string]int, len(list))
	labels := make(map[string]int)
	size := 0
	for i, v := range list {
		if err := x.label(i+1, v, labels); err != nil {
			return x.refuse(PhaseCalculation, Predicate{}, err.Error()), nil
		}
		n, err := x.output(i+1, v, spent, seen)
		if err != nil {
			var he hostError
			if errors.As(err, &he) {
				return nil, he.err
			}
			return x.refuse(PhaseCalculation, Predicate{}, err.Error()), nil
		}
		if size += len(n.Key) + len(n.Value); size > MaxOutputBytes {
			return x.refuse(PhaseCalculation, Predicate{}, fmt.Sprintf("outputs 1..%d hold %d bytes of keys and values, over the limit of %d for one transaction", i+1, size, MaxOutputBytes)), nil
		}
		x.outputs = append(x.outputs, *n)
		x.rc.Outputs = append(x.rc.Outputs, refOf(n))
	}
	if err := x.exportsOf(exports); err != nil {
		return x.refuse(PhaseCalculation, Predicate{}, err.Error()), nil
	}
	return nil, nil
}

// output checks the i-th note the calculation code returned: local (no
// provenance), within the limits and the write constraints, at a key no other
// output uses and no live note holds once the inputs are spent.
func (x *execution) output(i int, v any, spent map[string]bool, seen map[string]int) (*notes.Note, error) {
	if m, ok := v.(map[string]any); ok && m["provenance"] == nil {
		// A local note may leave provenance out.
		m["provenance"] = []any{}
	}
	n, err := vp.NoteFromValue(v)
	if err != nil {
		return nil, fmt.Errorf("output %d: %w", i, err)
	}
	if len(n.Provenance) != 0 {
		return nil, fmt.Errorf("output %d has provenance; notes created here must have none", i)
	}
	if err := n.Validate(); err != nil {
		return nil, fmt.Errorf("output %d: %w", i, err)
	}
	key := n.StateKey()
	ks := key.String()
	if !x.tx.Write.Match(key) {
		return nil, fmt.Errorf("output %d at %s is outside the write constraints", i, ks)
	}
	if j, dup := seen[ks]; dup {
		return nil, fmt.Errorf("output %d at %s repeats output %d", i, ks, j)
	}
	seen[ks] = i
	if !spent[ks] {
		live, err := x.st.Get(key)
		if err != nil {
			return nil, hostError{err}
		}
		if live != nil {
			return nil, fmt.Errorf("output %d at %s: a live note is already there", i, ks)
		}
	}
	return &n, nil
}

// resultList takes a run's single return value as a list of at most max
// elements. An empty Lua table is an empty list.
func resultList(values []any, max int) ([]any, error) {
	if len(values) != 1 {
		return nil, fmt.Errorf("returned %d values, want 1 list", len(values))
	}
	switch v := values[0].(type) {
	case []any:
		if len(v) > max {
			return nil, fmt.Errorf("returned %d notes, limit %d", len(v), max)
		}
		return v, nil
	case map[string]any:
		if len(v) == 0 {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("returned %s, want a list", typeName(values[0]))
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case string:
		return "a string"
	case map[string]any:
		return "a table with string keys"
	}
	return fmt.Sprintf("a %T", v)
}

// check is one validity predicate to run.
type check struct {
	pred    Predicate
	prog    *vp.Program
	app     notes.Hash  // the application asked about (a note's own for owner predicates)
	appText any         // app in lower-case hex: a string boxed once for the checks of one app
	note    *notes.Note // the note asked about; nil for an application predicate
}

// checks lists the predicates in their fixed order: each distinct
// application in order of first appearance among inputs then outputs, then
// the owner predicate of every input, then of every output.
func (x *execution) checks() []check {
	x.seen = x.seenOutputs()
	// At most one application predicate and one owner predicate per note.
	list := make([]check, 0, 2*(len(x.inputs)+len(x.seen)))
	for _, group := range [][]notes.Note{x.inputs, x.seen} {
		for i := range group {
			app := group[i].Application
			if !slices.ContainsFunc(list, func(c check) bool { return c.app == app }) {
				list = append(list, check{pred: Predicate{Role: RoleApplication, Code: app}, app: app})
			}
		}
	}
	// An import's input owner predicate ran on the source, as the export's.
	for i := 0; i < len(x.inputs) && x.imp == nil; i++ {
		n := &x.inputs[i]
		list = append(list, check{pred: Predicate{Role: RoleInput, Index: uint32(i + 1), Code: n.Owner}, app: n.Application, note: n})
	}
	for i := range x.seen {
		n, role := &x.seen[i], RoleOutput
		if i >= len(x.outputs) {
			role = RoleExport
		}
		list = append(list, check{pred: Predicate{Role: role, Index: uint32(i + 1), Code: n.Owner}, app: n.Application, note: n})
	}
	for i := range list { // the applications are few: one text each
		c := &list[i]
		for j := 0; j < i && c.appText == nil; j++ {
			if list[j].app == c.app {
				c.appText = list[j].appText
			}
		}
		if c.appText == nil {
			c.appText = hex.EncodeToString(c.app[:])
		}
	}
	return list
}

// validate is phase 3: every predicate runs, in parallel, with the rest of
// the gas limit each; the refusal reported is the first in the fixed order,
// and their gas together must fit the limit.
func (x *execution) validate() (*Outcome, error) {
	list := x.checks()
	for i := range list {
		c := &list[i]
		prog, err := x.code.Program(c.pred.Code)
		if err != nil {
			var vpErr *vp.Error // declared here: errors.As moves it to the heap
			switch {
			case errors.Is(err, ErrUnknownCode):
				return x.refuse(PhaseValidity, c.pred, fmt.Sprintf("%s: unknown code %x", c.pred.label(), c.pred.Code)), nil
			case errors.As(err, &vpErr):
				return x.refuse(PhaseValidity, c.pred, c.pred.label()+": "+err.Error()), nil
			}
			return nil, err
		}
		c.prog = prog
	}
	// Predicates run in parallel, so each gets an equal share of what is
	// left: the work of all of them together stays within the limit (with the
	// whole remainder each, n predicates could burn n times the limit before
	// the sum is checked), and the share does not depend on which finishes first.
	gas := x.remaining()
	lim := limitsWithGas(gas / uint64(max(len(list), 1)))
	results := make([]vp.Result, len(list))
	errs := make([]error, len(list))
	run := func(s *vp.Session, own map[string]any, i int) {
		defer runMemory.release(runMemory.reserve(2 * lim.MaxMemory)) // its run and a nested Smart Lua step
		var label [64]byte
		seed := x.seed(list[i].pred.appendLabel(label[:0]))
		x.predicateGlobals(own, &list[i])
		results[i], errs[i] = s.Run(list[i].prog, vp.Call{Globals: own, Limits: lim, Seed: seed})
	}
	// Each worker has one VM session: the transaction's notes become Lua
	// tables once per worker, not once per predicate.
	w := runtime.GOMAXPROCS(0)
	if x.serial {
		w = 1
	}
	sessions := make([]*vp.Session, w) // made on a worker's first predicate
	owns := make([]map[string]any, w)  // a worker's per-run globals, refilled for each run
	_ = workers.Run(context.Background(), len(list), w, func(worker, i int) error {
		if sessions[worker] == nil {
			sessions[worker] = x.pool.NewSession(lim.MaxDepth, x.sharedGlobals())
			owns[worker] = make(map[string]any, 4)
		}
		run(sessions[worker], owns[worker], i)
		return nil
	})
	for _, s := range sessions {
		if s != nil {
			s.Close()
		}
	}
	var used uint64
	for i := range list {
		used += results[i].GasUsed
		if len(results[i].Log) > 0 {
			x.log(list[i].pred.label(), results[i].Log)
		}
	}
	x.rc.Gas.Validity = used
	for i := range list {
		if reason := verdict(results[i], errs[i]); reason != "" {
			return x.refuse(PhaseValidity, list[i].pred, list[i].pred.label()+": "+reason), nil
		}
	}
	if used > gas {
		return x.refuse(PhaseValidity, Predicate{}, fmt.Sprintf("predicates used %d gas, only %d of the limit %d was left", used, gas, x.tx.GasLimit)), nil
	}
	return nil, nil
}

func limitsWithGas(gas uint64) vp.Limits {
	l := vp.DefaultLimits()
	l.Gas = gas
	return l
}

// sharedGlobals are the globals every predicate of the transaction sees;
// no predicate can change them (vp.Session makes them read-only).
// The predicate host functions (hostlib.go) are shared too: each call
// charges the gas of the run it is called from.
func (x *execution) sharedGlobals() map[string]any {
	g := map[string]any{
		"inputs": x.inputs, "outputs": x.seen, "extradata": x.extradata,
		"signers": x.signers, "txid": x.txid,
	}
	x.transferGlobals(g)
	x.host(g, StagePredicate)
	return g
}

// predicateGlobals sets g to the globals of one predicate run besides the
// shared ones.
func (x *execution) predicateGlobals(g map[string]any, c *check) {
	clear(g)
	g["role"], g["index"], g["application"] = roleValue(c.pred.Role), int64(c.pred.Index), c.appText
	if c.note != nil {
		g["note"] = c.note
	}
}

// roleValues are the role names as predicates' role global, boxed once.
var roleValues = func() (v [len(roleNames)]any) {
	for i, n := range roleNames {
		v[i] = n
	}
	return v
}()

func roleValue(r Role) any {
	if int(r) < len(roleValues) {
		return roleValues[r]
	}
	return r.String()
}

// verdict is "" when a predicate returned exactly true, and otherwise why
// not.
func verdict(res vp.Result, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(res.Values) == 1 && res.Values[0] == true {
		return ""
	}
	if len(res.Values) != 1 {
		return fmt.Sprintf("returned %d values, want true", len(res.Values))
	}
	if b, ok := res.Values[0].(bool); ok && !b {
		return "returned false"
	}
	return fmt.Sprintf("returned %s, want true", typeName(res.Values[0]))
}
