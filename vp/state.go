package vp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"

	"github.com/fractalvm/fractal/internal/cache"
)

// chunkCache keeps compiled state chunks by source hash, so a chain of
// transitions compiles its initial fragment once per process, up to
// maxCachedChunkBytes of compiled code: a cache, never a source of truth
// (internal/cache).
var chunkCache = cache.NewSized[[32]byte](maxCachedChunkBytes, (*chunk).size)

const maxCachedChunkBytes = 128 << 20

func cachedChunk(src []byte) (*chunk, error) {
	hash := sha256.Sum256(src)
	if c, ok := chunkCache.Get(hash); ok {
		return c, nil
	}
	c, err := newChunk(src)
	if err != nil {
		return nil, err
	}
	chunkCache.Put(hash, c)
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

// rawEntries returns t's entries in key order, and a key keyLess cannot
// order if there is one (a state function holding the global table can
// store a table key in it): of those, one of the lowest type, as ForEach
// visits them in Go's map order.
func rawEntries(t *lua.LTable) ([]entry, lua.LValue) {
	var es []entry
	var bad lua.LValue
	t.ForEach(func(k, v lua.LValue) {
		switch k.(type) {
		case lua.LBool, lua.LNumber, lua.LString:
			es = append(es, entry{k, v})
		default:
			if bad == nil || k.Type() < bad.Type() {
				bad = k
			}
		}
	})
	sort.Slice(es, func(i, j int) bool { return keyLess(es[i].k, es[j].k) })
	return es, bad
}

// keyText names a key in a message without a memory address, which would
// differ between runs; a string key is quoted and cut short, so bytes a
// fragment chose never make a message span lines.
func keyText(k lua.LValue) string {
	switch k := k.(type) {
	case lua.LString:
		return QuoteShort(string(k))
	case lua.LBool, lua.LNumber:
		return k.String()
	}
	return "a " + k.Type().String() + " key"
}

func (v *vm) runState(c *chunk, state []byte, call Call) (Result, []byte, error) {
	L := v.L
	libs := newLibIndex(v.libs)
	used := stepChunks{}
	used.add(c)
	var root *lua.LTable // the state's global table
	hooks := &stepHooks{
		// Initial state: the fragment writes its globals straight into the
		// run's global table.
		env:   func(host *lua.LTable) (*lua.LTable, error) { root = host; return host, nil },
		after: func() error { return nil },
	}
	if state != nil {
		var before []entry
		var proxy, host *lua.LTable
		hooks.env = func(h *lua.LTable) (*lua.LTable, error) {
			// Later state: the environment is an empty proxy whose writes are
			// refused; reads go to the host globals, then to the state's
			// globals, then to the libraries.
			host, proxy = h, L.NewTable()
			refuse := L.NewFunction(func(L *lua.LState) int {
				L.RaiseError("globals are read-only after the initial state (assigning %s)", keyText(L.Get(2)))
				return 0
			})
			pm := L.NewTable()
			pm.RawSetString("__index", host)
			pm.RawSetString("__metatable", lua.LFalse)
			pm.RawSetString("__newindex", refuse)
			proxy.Metatable = pm
			d := &decoder{L: L, env: proxy, libs: libs, meter: v.meterByName, compile: func(src []byte) (*chunk, error) {
				c, err := cachedChunk(src)
				if err == nil {
					used.add(c)
				}
				return c, err
			}}
			var err error
			if root, err = d.decode(state); err != nil {
				return nil, err
			}
			// The bytes must be exactly the canonical form of what they rebuild.
			again, err := serialize(root, libs, used.lookup)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrState, err)
			}
			if !bytes.Equal(again, state) {
				return nil, fmt.Errorf("%w: bytes are not in canonical form", ErrState)
			}
			root.Metatable = v.gmeta
			hm := L.NewTable()
			hm.RawSetString("__index", root)
			host.Metatable = hm
			host.RawSetString("_G", proxy)
			before, _ = rawEntries(root) // a decoded state has no other keys
			return proxy, nil
		}
		hooks.after = func() error {
			if err := readOnlyKept(root, before, proxy, host); err != nil {
				return &Error{Kind: KindRuntime, Chunk: c.prog.Name, Msg: err.Error()}
			}
			return nil
		}
	}
	res, err := v.exec(c.prog, call, hooks)
	if err != nil {
		return res, nil, err
	}
	out, err := serialize(root, libs, used.lookup)
	if err != nil {
		return res, nil, err
	}
	return res, out, nil
}

// readOnlyKept checks after a later step that no global was assigned by any
// route (rawset-like library calls on _G included): the state's global
// table holds the same values, and the proxy and host layer are untouched.
func readOnlyKept(G *lua.LTable, before []entry, proxy, layer *lua.LTable) error {
	changed := func(k lua.LValue) error {
		return fmt.Errorf("globals are read-only after the initial state (assigning %s)", keyText(k))
	}
	after, bad := rawEntries(G)
	if bad != nil {
		return changed(bad)
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
