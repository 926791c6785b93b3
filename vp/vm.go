package vp

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/fractalvm/fractal/notes"
)

// maxArrayIndex replaces gopher-lua's 67108864: a store at an integer key
// below it fills the array part up to that key, so one `t[67108863] = 1`
// would allocate a gigabyte. The sandbox charges such gaps as table slots.
const maxArrayIndex = 1 << 20

// Lua 5.1's compatibility `arg` table is switched off: every vararg call
// would build it, unmetered. An __index chain passes at most maxChainLinks
// tables (Lua's 100 would make one read cost 100).
func init() {
	lua.MaxArrayIndex = maxArrayIndex
	lua.CompatVarArg = false
	lua.MaxTableGetLoop = maxChainLinks
}

// refillChunk is how much gas the Go side hands to the Lua-side counter at a
// time. It changes only how often Lua calls into Go, never the gas used.
const refillChunk = 1 << 14

// vm is one prepared gopher-lua state with the sandbox's libraries, and the
// meter upvalues every program run on it shares.
type vm struct {
	L        *lua.LState
	maxDepth int
	meter    [len(meterNames)]*lua.Upvalue
	libs     *lua.LTable          // the read-only namespace behind every run's globals
	gmeta    *lua.LTable          // metatable of every run's globals: {__index = libs}
	frozen   map[*lua.LTable]bool // library tables
	sess     *Session             // the session holding this VM, if any
	handler  *lua.LFunction       // error handler that marks errors it saw (see pcall)
	r        *run
	state    run         // what r points to during Pool.Run and Session.Run
	mains    [4]mainFunc // main functions of programs run last (mainFunction)
	layouts  []*layout   // of the globals of recent runs (layoutOf)
	nextMain int
	grown    bool                       // a run left its stack larger than bigStack: the pool drops this VM
	hexes    map[notes.Hash]lua.LValue  // hex text of note hashes (hexText)
	boxes    map[string]lua.LValue      // boxed global names (box)
	patterns map[patternKey]*pattern    // compiled patterns (compiled)
	tables   map[*lua.LTable]*tableInfo // kept for the next run (keepRecords)
	infos    []tableInfo                // kept for the next run (keepRecords)
	scratch  struct {                   // reused by globals
		names        []string
		keys, values []lua.LValue
	}
}

// run is the state of one Pool.Run: budgets, counters and the log.
type run struct {
	prog      *Program
	lim       Limits
	remaining uint64 // gas not yet handed to the Lua-side counter
	memory    int64
	log       []string
	rng       uint64
	fatal     *Error // once set, every charge raises again: the run is over
	tables    map[*lua.LTable]*tableInfo
	infos     []tableInfo // the slab track takes records from
	stack     int         // the most values the run placed on the stack at once (stackBytes each)
	counting  bool        // values converted from Go count as memory: a host function's results
}

// errMark wraps an error value that went through the sandbox's error
// handler. An error without it was raised where no handler could run: with a
// full call stack.
type errMark struct{ v lua.LValue }

// addressText is how gopher-lua prints a reference value.
var addressText = regexp.MustCompile(`(table|function|userdata|thread|channel): 0x[0-9a-f]+`)

// errorValue is what the error handler passes on for an error value: the
// error costs errorGas, a string is charged as built, since raising it
// built it (a position prepended, a value quoted), and has no address
// (addressFree). The string is charged as the run receives it, without
// the address: Go places the heap at a random base in each process, so the
// address's length, and a charge made on it, would differ between
// validators.
func (v *vm) errorValue(ev lua.LValue) lua.LValue {
	ev = addressFree(ev)
	if v.r.fatal == nil {
		v.charge(errorGas)
		if s, ok := ev.(lua.LString); ok {
			v.built(len(s))
		}
	}
	return ev
}

// addressFree drops the memory address gopher-lua writes into some errors
// ("attempt to index a non-table object(number) with key 'table: 0x…'"):
// it differs between runs, and an error message can reach a note, a log or
// a state. Such a message is short; long strings are not scanned, as that
// would be work no gas pays for.
func addressFree(ev lua.LValue) lua.LValue {
	s, ok := ev.(lua.LString)
	if !ok || len(s) > 1024 || !strings.Contains(string(s), ": 0x") {
		return ev
	}
	return lua.LString(addressText.ReplaceAllString(string(s), "$1"))
}

// newVM is the one place that builds a sandboxed LState.
func newVM(maxDepth int) *vm {
	L := lua.NewState(lua.Options{
		CallStackSize:   maxDepth + 1,
		RegistrySize:    1 << 10,
		RegistryMaxSize: 1 << 18,
		SkipOpenLibs:    true,
	})
	v := &vm{L: L, maxDepth: maxDepth, frozen: map[*lua.LTable]bool{}}
	for i := range v.meter {
		v.meter[i] = &lua.Upvalue{} // a closed upvalue shared by all closures of a run
	}
	v.meter[1].SetValue(L.NewFunction(v.refill))
	v.meter[2].SetValue(L.NewFunction(v.cat))
	v.meter[3].SetValue(L.NewFunction(v.set))
	v.meter[4].SetValue(L.NewFunction(v.tbl))
	v.meter[5].SetValue(L.NewFunction(v.length))
	v.meter[6].SetValue(L.NewFunction(v.pow))
	v.meter[7].SetValue(L.NewFunction(v.va))
	v.meter[8].SetValue(L.NewFunction(v.cmp))
	v.meter[9].SetValue(L.NewFunction(v.get))
	v.meter[10].SetValue(L.NewFunction(v.fn))
	v.handler = L.NewFunction(func(L *lua.LState) int {
		L.Push(&lua.LUserData{Value: errMark{v.errorValue(L.Get(1))}, Metatable: lua.LNil})
		return 1
	})
	v.openLibs()
	return v
}

// charge takes n gas from the run, first from the Go-side budget, then from
// the Lua-side credit; out of gas it ends the run.
func (v *vm) charge(n uint64) {
	if !v.spend(n) {
		v.raise()
	}
}

// spend is charge without raising: it reports false, the run's fatal error
// set, when the run is over or n is more than is left.
func (v *vm) spend(n uint64) bool {
	r := v.r
	if r.fatal != nil {
		return false
	}
	if n <= r.remaining {
		r.remaining -= n
		return true
	}
	credit := v.credit()
	need := n - r.remaining
	if float64(need) <= credit {
		r.remaining = 0
		v.meter[0].SetValue(lua.LNumber(credit - float64(need)))
		return true
	}
	v.exhaust()
	return false
}

// left is the gas the run has left: the budget plus the Lua-side credit,
// less an overdraft not yet paid. It does not depend on how the credit was
// handed out.
func (v *vm) left() uint64 {
	r := v.r
	if r.fatal != nil {
		return 0
	}
	c := v.credit()
	if c >= 0 {
		return r.remaining + uint64(c)
	}
	return r.remaining - min(r.remaining, uint64(-c))
}

func (v *vm) credit() float64 {
	if n, ok := v.meter[0].Value().(lua.LNumber); ok {
		return float64(n)
	}
	return 0
}

// refill is called by instrumented code when the credit went below zero: it
// pays the overdraft from the budget and hands out more credit.
func (v *vm) refill(L *lua.LState) int {
	r := v.r
	if r.fatal != nil {
		v.raise()
	}
	debt := uint64(-v.credit())
	if debt > r.remaining {
		v.outOfGas()
	}
	r.remaining -= debt
	v.grant()
	return 0
}

// grant hands the Lua-side counter up to refillChunk gas from the budget.
func (v *vm) grant() {
	n := min(uint64(refillChunk), v.r.remaining)
	v.r.remaining -= n
	if n == refillChunk {
		v.meter[0].SetValue(fullCredit)
	} else {
		v.meter[0].SetValue(lua.LNumber(n))
	}
}

// fullCredit is refillChunk as a Lua value, boxed once.
var fullCredit lua.LValue = lua.LNumber(refillChunk)

func (v *vm) outOfGas() {
	v.exhaust()
	v.raise()
}

// exhaust spends all the gas left and sets the out-of-gas error, without
// raising it.
func (v *vm) exhaust() {
	v.r.remaining = 0
	v.meter[0].SetValue(lua.LNumber(0))
	v.over(KindGas, nil, "out of gas (limit %d)", v.r.lim.Gas)
}

// fail ends the run with an error that pcall cannot catch.
func (v *vm) fail(kind Kind, cause error, format string, args ...any) {
	v.over(kind, cause, format, args...)
	v.raise()
}

// over sets the run's fatal error, unless it has one already.
func (v *vm) over(kind Kind, cause error, format string, args ...any) {
	if v.r.fatal == nil {
		v.r.fatal = &Error{Kind: kind, Chunk: v.r.prog.Name, Line: v.line(), Msg: fmt.Sprintf(format, args...), Cause: cause}
	}
}

func (v *vm) raise() {
	v.L.Error(lua.LString(v.r.fatal.Msg), 0)
}

var whereLine = regexp.MustCompile(`:(\d+):$`)

// line is the line of the innermost Lua function on the stack.
func (v *vm) line() int {
	for level := 1; level < 8; level++ {
		if m := whereLine.FindStringSubmatch(v.L.Where(level)); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}

// store is `t[k] = val` with the sandbox's checks: library tables are
// read-only, new slots are counted, __newindex is honoured (at most
// maxChainLinks tables), a long string key is charged by its length at each
// table, and a number stored gets a box of its own (rebox).
func (v *vm) store(t *lua.LTable, k, val lua.LValue, hops int) {
	L := v.L
	if hops > 0 {
		v.charge(hopGas)
	}
	v.charge(hashCost(k))
	if what := v.lockedAs(t); what != "" {
		L.RaiseError("cannot modify %s", what)
	}
	switch kk := k.(type) {
	case *lua.LNilType:
		L.RaiseError("table index is nil")
	case lua.LNumber:
		if kk != kk {
			L.RaiseError("table index is NaN")
		}
	}
	if t.RawGet(k) == lua.LNil {
		if h := L.GetMetaField(t, "__newindex"); h != lua.LNil {
			if hops+1 >= maxChainLinks {
				L.RaiseError("'__newindex' chain too long; possible loop")
			}
			switch h := h.(type) {
			case *lua.LTable:
				v.store(h, k, val, hops+1)
			case *lua.LFunction:
				L.Push(h)
				L.Push(t)
				L.Push(k)
				L.Push(val)
				L.Call(3, 0)
			default:
				L.RaiseError("'__newindex' is a %s value", h.Type())
			}
			return
		}
		if val == lua.LNil {
			return
		}
		v.account(t, k)
	} else if i, ok := arrayKey(k); ok && val != lua.LNil {
		ti := v.info(t)
		ti.top = max(ti.top, i)
	}
	if _, ok := arrayKey(k); !ok {
		k = rebox(k)
	}
	t.RawSet(k, rebox(val))
}

// set is the metered `t[k] = v` of instrumented code.
func (v *vm) set(L *lua.LState) int {
	t, k, val := L.Get(1), L.Get(2), L.Get(3)
	if tb, ok := t.(*lua.LTable); ok {
		v.store(tb, k, val, 0)
		return 0
	}
	if tb, ok := L.GetMetaField(t, "__newindex").(*lua.LTable); ok {
		v.store(tb, k, val, 1)
		return 0
	}
	L.RaiseError("attempt to index a %s value", t.Type())
	return 0
}

// tbl counts a table that a constructor built.
func (v *vm) tbl(L *lua.LState) int {
	t := L.CheckTable(1)
	v.newTable(t)
	L.Push(t)
	return 1
}

// length is `#x`: strings by bytes, tables by a border found scanning down
// from the highest index ever stored, charged by the scan.
func (v *vm) length(L *lua.LState) int {
	switch x := L.Get(1).(type) {
	case lua.LString:
		L.Push(lua.LNumber(len(x)))
	case *lua.LTable:
		L.Push(lua.LNumber(v.border(x)))
	default:
		L.RaiseError("attempt to get length of a %s value", x.Type())
	}
	return 1
}

func (v *vm) border(t *lua.LTable) int {
	ti := v.info(t)
	i := ti.top
	for i > 0 && t.RawGetInt(i) == lua.LNil {
		i--
	}
	v.charge(uint64(ti.top-i) / 8)
	ti.top = i
	return i
}

// cat is the metered `a .. b .. c`: numbers and strings only, charged by the
// size of the result before it is built.
func (v *vm) cat(L *lua.LState) int {
	n := L.GetTop()
	var room [8]string // a concatenation's operands are few: no slice on the heap
	parts := room[:0]
	if n > len(room) {
		parts = make([]string, 0, n)
	}
	parts = parts[:n]
	total := 0
	for i := 1; i <= n; i++ {
		switch x := L.Get(i).(type) {
		case lua.LString:
			parts[i-1] = string(x)
		case lua.LNumber:
			parts[i-1] = v.numText(x)
		default:
			L.RaiseError("attempt to concatenate a %s value", x.Type())
		}
		total += len(parts[i-1])
	}
	v.built(total)
	var b strings.Builder
	b.Grow(total)
	for _, p := range parts {
		b.WriteString(p)
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// pcallMarked calls the function below the nargs arguments on the stack with
// the marking handler. It returns the error value, or nil on success; a
// fatal error, or one raised with a full call stack (which the handler could
// not mark), ends the run.
func (v *vm) pcallMarked(nargs int, handler *lua.LFunction) (lua.LValue, bool) {
	err := v.L.PCall(nargs, lua.MultRet, handler)
	if err == nil {
		return nil, true
	}
	if v.r.fatal != nil {
		v.raise()
	}
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		if ud, ok := ae.Object.(*lua.LUserData); ok {
			if m, ok := ud.Value.(errMark); ok {
				return m.v, false
			}
		}
	}
	v.fail(KindLimit, nil, "call depth limit exceeded (%d)", v.maxDepth)
	return nil, false
}

// Pool keeps prepared VMs so that a call does not pay for creating one.
// It is safe for concurrent use.
type Pool struct {
	mu       sync.Mutex
	idle     map[int][]*vm // by call depth limit
	sessions []*Session    // closed sessions, whose maps are kept for new ones
}

// maxIdle bounds the VMs a pool keeps per depth limit.
const maxIdle = 64

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{idle: map[int][]*vm{}} }

func (p *Pool) get(depth int) *vm {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.idle[depth]; len(l) > 0 {
		v := l[len(l)-1]
		p.idle[depth] = l[:len(l)-1]
		return v
	}
	return nil
}

func (p *Pool) put(v *vm) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[v.maxDepth]) < maxIdle && !v.grown {
		p.idle[v.maxDepth] = append(p.idle[v.maxDepth], v)
		return
	}
	v.L.Close()
}

// Run runs prog with call. Result.GasUsed and Log are filled even when err
// is not nil; err is an *Error.
func (p *Pool) Run(prog *Program, call Call) (Result, error) {
	lim := call.Limits
	if lim.MaxDepth < 1 || lim.MaxDepth > 10000 {
		return Result{}, &Error{Kind: KindLimit, Chunk: prog.Name, Msg: fmt.Sprintf("call depth limit %d outside 1..10000", lim.MaxDepth)}
	}
	v := p.get(lim.MaxDepth)
	if v == nil {
		v = newVM(lim.MaxDepth)
	}
	defer p.put(v)
	return v.run(prog, call)
}

func (v *vm) run(prog *Program, call Call) (Result, error) { return v.exec(prog, call, nil) }

// stepHooks let a Smart Lua step (state.go) run on a deserialized state:
// env turns the table of host globals into the run's environment, after
// checks the state once the fragment has returned.
type stepHooks struct {
	env   func(host *lua.LTable) (*lua.LTable, error)
	after func() error
}

func (v *vm) exec(prog *Program, call Call, hooks *stepHooks) (res Result, err error) {
	L := v.L
	v.state = run{prog: prog, lim: call.Limits, remaining: call.Limits.Gas, rng: call.Seed, tables: v.tables, infos: v.infos}
	r := &v.state
	v.r = r
	// Hand out the first credit now rather than in a first refill call.
	v.grant()
	defer func() {
		res.GasUsed = r.lim.Gas - r.remaining - uint64(v.credit())
		res.Memory = r.memory
		res.Log = r.log
		v.grown = v.grown || r.stack > bigStack
		L.SetTop(0)
		v.r = nil
		v.keepRecords(r)
	}()

	G, msg := v.globals(call.Globals)
	if msg != "" {
		return res, &Error{Kind: KindRuntime, Chunk: prog.Name, Msg: msg}
	}
	L.G.Global, L.Env = G, G
	env := G
	if hooks != nil {
		if env, err = hooks.env(G); err != nil {
			return res, err
		}
		L.G.Global, L.Env = env, env
	}

	fn := v.mainFunction(prog, hooks == nil)
	fn.Env = env
	L.SetTop(0)
	L.Push(fn)
	var ev lua.LValue
	ok := true
	if perr := v.protect(func() { ev, ok = v.pcallMarked(0, v.handler) }); perr != nil {
		return res, perr
	}
	if !ok {
		return res, v.runtimeError(ev)
	}
	conv := converter{v: v}
	for i := 1; i <= L.GetTop(); i++ {
		gv, cerr := conv.value(L.Get(i), 0)
		if v.r.fatal != nil {
			return res, v.r.fatal
		}
		if cerr != nil {
			return res, &Error{Kind: KindRuntime, Chunk: prog.Name, Msg: fmt.Sprintf("return value %d: %v", i, cerr)}
		}
		res.Values = append(res.Values, gv)
	}
	if hooks != nil {
		if err := hooks.after(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// mainFunction returns prog as a function on this VM, its upvalues the
// VM's meters. A VM keeps the functions of the last few small programs it
// ran when keep says so: a Lua fragment cannot reach or change its own main
// function (no debug library, no setfenv), and each run sets its
// environment, so a run cannot tell.
func (v *vm) mainFunction(prog *Program, keep bool) *lua.LFunction {
	for _, m := range v.mains {
		if m.prog == prog {
			return m.fn
		}
	}
	fn := v.L.NewFunctionFromProto(prog.proto)
	for i, s := range prog.slots {
		fn.Upvalues[i] = v.meter[s]
	}
	if keep && prog.size <= maxKeptProgram {
		v.mains[v.nextMain] = mainFunc{prog, fn}
		v.nextMain = (v.nextMain + 1) % len(v.mains)
	}
	return fn
}

// maxKeptProgram bounds the modelled size of a program whose function a
// VM keeps: predicates are small, and a pooled VM should not hold a large
// program alive.
const maxKeptProgram = 64 << 10

type mainFunc struct {
	prog *Program
	fn   *lua.LFunction
}

// keepRecords keeps what the run r used for its table records (track)
// for the next run, emptied, unless the run made many tables.
func (v *vm) keepRecords(r *run) {
	v.tables, v.infos = nil, nil
	if len(r.tables) <= maxKeptRecords {
		clear(r.tables)
		v.tables, v.infos = r.tables, r.infos[:0]
	}
}

// maxKeptRecords bounds the table records whose map a VM keeps for its
// next run: emptying a map costs what it once held.
const maxKeptRecords = 1 << 10

// globals returns a run's table of globals: _G, then the call's globals
// and the session's shared ones in sorted name order (the order pairs(_G)
// visits them), or why not when one cannot be converted. In a session
// every table the host passed is read-only.
func (v *vm) globals(own map[string]any) (*lua.LTable, string) {
	s := v.sess
	sc := &v.scratch
	names := sc.names[:0]
	for n := range own {
		names = append(names, n)
	}
	if s != nil {
		if s.err != "" {
			return nil, s.err
		}
		for _, n := range s.names {
			if _, dup := own[n]; dup {
				return nil, fmt.Sprintf("global %s: also shared by the session", n)
			}
		}
		names = append(names, s.names...)
	}
	sort.Strings(names)
	G := v.L.CreateTable(0, 0)
	G.Metatable = v.gmeta
	keys, values := append(sc.keys[:0], globalName), append(sc.values[:0], G)
	for _, n := range names {
		lv, shared := s.value(n)
		if !shared {
			var err error
			if lv, err = v.toLua(own[n], 0); err != nil {
				return nil, fmt.Sprintf("global %s: %v", n, err)
			}
		}
		keys, values = append(keys, v.box(n)), append(values, lv)
	}
	v.layoutOf(keys).fill(G, values)
	if s != nil {
		for t := range v.r.tables {
			s.readOnly[t] = true
		}
	}
	clear(values) // the scratch slices keep no run's values
	sc.names, sc.keys, sc.values = names[:0], keys[:0], values[:0]
	return G, ""
}

// layoutOf returns the layout of names, one the VM keeps when it has
// seen them before: runs of the same stage pass the same globals.
func (v *vm) layoutOf(names []lua.LValue) *layout {
	for _, l := range v.layouts {
		if l.same(names) {
			return l
		}
	}
	l := newLayout(names)
	if len(v.layouts) == maxLayouts {
		v.layouts = v.layouts[1:]
	}
	v.layouts = append(v.layouts, l)
	return l
}

// maxLayouts bounds the layouts of globals a VM keeps.
const maxLayouts = 8

// globalName is "_G", boxed.
var globalName = boxed("_G")[0]

// maxBoxes bounds the global names a VM keeps boxed.
const maxBoxes = 256

// box returns the global name n as a Lua string. The host passes the same
// few names to every run, so the VM keeps each boxed.
func (v *vm) box(n string) lua.LValue {
	if b, ok := v.boxes[n]; ok {
		return b
	}
	b := lua.LValue(lua.LString(n))
	if len(v.boxes) < maxBoxes {
		if v.boxes == nil {
			v.boxes = make(map[string]lua.LValue)
		}
		v.boxes[n] = b
	}
	return b
}

// protect runs f and turns a fatal raise that escaped it into the run's error.
func (v *vm) protect(f func()) (err error) {
	defer func() {
		if rec := recover(); rec != nil {
			if v.r.fatal == nil {
				panic(rec)
			}
			err = v.r.fatal
		}
	}()
	f()
	if v.r.fatal != nil {
		return v.r.fatal
	}
	return nil
}

var errPos = regexp.MustCompile(`^(.*?):(\d+): (?s:(.*))$`)

// runtimeError turns the error value that reached the top into an *Error.
func (v *vm) runtimeError(ev lua.LValue) *Error {
	e := &Error{Kind: KindRuntime, Chunk: v.r.prog.Name}
	s, ok := ev.(lua.LString)
	if !ok {
		e.Msg = "error object is a " + ev.Type().String() + " value"
		return e
	}
	e.Msg = string(s)
	if m := errPos.FindStringSubmatch(e.Msg); m != nil && m[1] == e.Chunk {
		e.Line, _ = strconv.Atoi(m[2])
		e.Msg = m[3]
	}
	return e
}
