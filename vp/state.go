package vp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// ErrState wraps every failure to read stored state bytes: they are not a
// canonical serialization this sandbox can rebuild.
var ErrState = errNotState

// chunkCache keeps compiled state chunks by source hash, so a chain of
// transitions compiles its initial fragment once per process. It forgets
// everything when full: a cache, never a source of truth.
var chunkCache = struct {
	sync.Mutex
	byHash map[[32]byte]*chunk
}{byHash: map[[32]byte]*chunk{}}

const maxCachedChunks = 1024

func cachedChunk(src []byte) (*chunk, error) {
	hash := sha256.Sum256(src)
	chunkCache.Lock()
	c := chunkCache.byHash[hash]
	chunkCache.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := newChunk(src)
	if err != nil {
		return nil, err
	}
	chunkCache.Lock()
	if len(chunkCache.byHash) >= maxCachedChunks {
		chunkCache.byHash = map[[32]byte]*chunk{}
	}
	chunkCache.byHash[hash] = c
	chunkCache.Unlock()
	return c, nil
}

// RunState runs the Lua fragment src as one Smart Lua step and returns its
// result and the canonical serialization of the resulting state.
//
// With state nil the fragment runs in a fresh global table and may define
// globals. Otherwise state is deserialized first (a step never runs on a VM
// left over from an earlier one, so whoever makes a state and whoever checks
// it execute the same thing) and the fragment sees read-only globals: it may
// call the functions the state holds, which may change the tables and
// upvalues they reach, but assigning any global is refused.
//
// call.Globals (for Smart Lua: `signers`) are provided on every run and are
// never part of the state, nor is `_G`. The state's bytes are its canonical
// form (docs/formats/smartlua.md): the same state gives the same bytes in
// every process. A nil error means the step succeeded; *Error reports a
// failed run, and an error wrapping ErrState a state that cannot be read.
func (p *Pool) RunState(src, state []byte, call Call) (Result, []byte, error) {
	lim := call.Limits
	c, err := cachedChunk(src)
	if err != nil {
		return Result{}, nil, err
	}
	if lim.MaxDepth < 1 || lim.MaxDepth > 10000 {
		return Result{}, nil, &Error{Kind: KindLimit, Chunk: c.prog.Name, Msg: fmt.Sprintf("call depth limit %d outside 1..10000", lim.MaxDepth)}
	}
	v := p.get(lim.MaxDepth)
	if v == nil {
		v = newVM(lim.MaxDepth)
	}
	defer p.put(v)
	return v.runState(c, state, call)
}

// stepChunks is the set of chunks one step uses, naming their prototypes.
type stepChunks map[*lua.FunctionProto]protoRef

func (s stepChunks) add(c *chunk) {
	for i, p := range c.protos {
		s[p] = protoRef{c: c, pos: i}
	}
}

func (s stepChunks) lookup(p *lua.FunctionProto) (protoRef, bool) {
	r, ok := s[p]
	return r, ok
}

// entry is one raw global, for the read-only check.
type entry struct{ k, v lua.LValue }

func rawEntries(t *lua.LTable) []entry {
	var es []entry
	t.ForEach(func(k, v lua.LValue) { es = append(es, entry{k, v}) })
	sort.Slice(es, func(i, j int) bool { return keyLess(es[i].k, es[j].k) })
	return es
}

func (v *vm) runState(c *chunk, state []byte, call Call) (res Result, out []byte, err error) {
	L := v.L
	libs := newLibIndex(v.libs)
	used := stepChunks{}
	used.add(c)
	r := &run{prog: c.prog, lim: call.Limits, remaining: call.Limits.Gas, rng: call.Seed, tables: map[*lua.LTable]*tableInfo{}}
	v.r = r
	v.meter[0].SetValue(lua.LNumber(0))
	defer func() {
		res.GasUsed = r.lim.Gas - r.remaining - uint64(v.credit())
		res.Log = r.log
		L.SetTop(0)
		v.r = nil
	}()
	runErr := func(msg string) error { return &Error{Kind: KindRuntime, Chunk: c.prog.Name, Msg: msg} }

	// host holds the globals the host provides on every run.
	host := L.NewTable()
	names := make([]string, 0, len(call.Globals))
	for n := range call.Globals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		lv, cerr := v.toLua(call.Globals[n], 0)
		if cerr != nil {
			return res, nil, runErr(fmt.Sprintf("global %s: %v", n, cerr))
		}
		host.RawSetString(n, lv)
	}

	var G, env *lua.LTable
	var before []entry
	var proxy, layer *lua.LTable
	if state == nil {
		// Initial state: the fragment writes its globals straight into G.
		G = L.NewTable()
		G.Metatable = v.gmeta
		G.RawSetString("_G", G)
		host.ForEach(func(k, val lua.LValue) { G.RawSet(k, val) })
		env = G
	} else {
		// Later state: env is an empty proxy whose writes are refused; reads
		// go to the host globals, then to the state's globals, then to the
		// libraries.
		proxy = L.NewTable()
		layer = host
		layer.RawSetString("_G", proxy)
		layer.Metatable = L.NewTable()
		refuse := L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("globals are read-only after the initial state (assigning %s)", L.Get(2).String())
			return 0
		})
		proxy.Metatable = L.NewTable()
		proxy.Metatable.(*lua.LTable).RawSetString("__index", layer)
		proxy.Metatable.(*lua.LTable).RawSetString("__metatable", lua.LFalse)
		proxy.Metatable.(*lua.LTable).RawSetString("__newindex", refuse)
		d := &decoder{L: L, env: proxy, libs: libs, meter: v.meterByName, compile: func(src []byte) (*chunk, error) {
			c, err := cachedChunk(src)
			if err == nil {
				used.add(c)
			}
			return c, err
		}}
		G, err = d.decode(state)
		if err != nil {
			return res, nil, err
		}
		// The bytes must be exactly the canonical form of what they rebuild.
		again, err := serialize(G, libs, used.lookup)
		if err != nil {
			return res, nil, fmt.Errorf("%w: %v", errNotState, err)
		}
		if !bytes.Equal(again, state) {
			return res, nil, fmt.Errorf("%w: bytes are not in canonical form", errNotState)
		}
		G.Metatable = v.gmeta
		layer.Metatable.(*lua.LTable).RawSetString("__index", G)
		before = rawEntries(G)
		env = proxy
	}
	L.G.Global, L.Env = env, env
	r.tables[G] = &tableInfo{slots: 1}

	fn := L.NewFunctionFromProto(c.prog.proto)
	fn.Env = env
	for i, s := range c.prog.slots {
		fn.Upvalues[i] = v.meter[s]
	}
	L.SetTop(0)
	L.Push(fn)
	var ev lua.LValue
	ok := true
	if perr := v.protect(func() { ev, ok = v.pcallMarked(0, v.handler) }); perr != nil {
		return res, nil, perr
	}
	if !ok {
		return res, nil, v.runtimeError(ev)
	}
	for i := 1; i <= L.GetTop(); i++ {
		gv, cerr := v.fromLua(L.Get(i), 0)
		if cerr != nil {
			return res, nil, runErr(fmt.Sprintf("return value %d: %v", i, cerr))
		}
		res.Values = append(res.Values, gv)
	}
	if state != nil {
		if err := readOnlyKept(G, before, proxy, layer); err != nil {
			return res, nil, runErr(err.Error())
		}
	}
	out, err = serialize(G, libs, used.lookup)
	if err != nil {
		return res, nil, err
	}
	return res, out, nil
}

// readOnlyKept checks after a later step that no global was assigned by any
// route (rawset-like library calls on _G included): the state's global
// table holds the same values, and the proxy and host layer are untouched.
func readOnlyKept(G *lua.LTable, before []entry, proxy, layer *lua.LTable) error {
	after := rawEntries(G)
	changed := func(k lua.LValue) error {
		return fmt.Errorf("globals are read-only after the initial state (assigning %s)", k.String())
	}
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || (i < len(before) && keyLess(before[i].k, after[j].k)):
			return changed(before[i].k)
		case i == len(before) || keyLess(after[j].k, before[i].k):
			return changed(after[j].k)
		case before[i].v != after[j].v:
			return changed(before[i].k)
		}
		i, j = i+1, j+1
	}
	if k, _ := proxy.Next(lua.LNil); k != lua.LNil {
		return changed(k)
	}
	if layer.RawGetString("_G") != proxy {
		return changed(lua.LString("_G"))
	}
	return nil
}

// meterByName returns this VM's meter upvalue for an instrumented name.
func (v *vm) meterByName(name string) (*lua.Upvalue, bool) {
	for i, n := range meterNames {
		if n == name {
			return v.meter[i], true
		}
	}
	return nil, false
}
