package vp

import (
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// openLibs builds the read-only library namespace. gopher-lua fills its own
// library tables from Go maps, in an order that changes between processes, so
// the sandbox copies the functions it keeps into new tables in sorted name
// order. Left out: load, loadstring, loadfile, dofile, require, module,
// getfenv, setfenv, collectgarbage, newproxy, rawget, rawset, rawequal,
// (each of these a stand-in that refuses with its name), string.dump, and
// the io, os, debug, package, channel and coroutine libraries.
func (v *vm) openLibs() {
	L := v.L
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{"", lua.OpenBase}, {"string", lua.OpenString}, {"table", lua.OpenTable}, {"math", lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	orig := L.G.Global
	from := func(lib, name string) lua.LValue {
		t := orig
		if lib != "" {
			t = orig.RawGetString(lib).(*lua.LTable)
		}
		return t.RawGetString(name)
	}
	fn := func(f lua.LGFunction) lua.LValue { return L.NewFunction(f) }
	next := fn(v.next)
	pairs := func(L *lua.LState) int { // the sandbox's next, which charges what it walks
		t := L.CheckTable(1)
		L.Push(next)
		L.Push(t)
		L.Push(lua.LNil)
		return 3
	}

	base := map[string]lua.LValue{
		"_VERSION":     lua.LString("Lua 5.1"),
		"assert":       from("", "assert"),
		"error":        from("", "error"),
		"getmetatable": fn(v.getmetatable),
		"ipairs":       from("", "ipairs"),
		"next":         next,
		"pairs":        fn(pairs),
		"pcall":        fn(v.pcall),
		"print":        fn(v.print),
		"select":       fn(guarded(from("", "select"), 1)),
		"setmetatable": fn(v.setmetatable),
		"tonumber":     fn(v.coercing(guarded(from("", "tonumber"), 2))),
		"tostring":     fn(v.tostringLib),
		"type":         from("", "type"),
		"unpack":       fn(v.unpack),
		"xpcall":       fn(v.xpcall),
	}
	str := map[string]lua.LValue{
		"byte":    fn(v.strByte),
		"char":    fn(v.strChar),
		"find":    fn(v.strFind),
		"format":  fn(v.format),
		"gmatch":  fn(v.strGmatch),
		"gsub":    fn(v.strGsub),
		"len":     from("string", "len"),
		"lower":   fn(v.caseMapped(from("string", "lower"))),
		"match":   fn(v.strMatch),
		"rep":     fn(v.rep),
		"reverse": fn(v.sized(from("string", "reverse"))),
		"sub":     fn(v.sized(from("string", "sub"))),
		"upper":   fn(v.caseMapped(from("string", "upper"))),
	}
	tab := map[string]lua.LValue{
		"concat": fn(v.concat),
		"insert": fn(v.insert),
		"pack":   fn(v.pack),
		"remove": fn(v.remove),
		"sort":   fn(v.sort),
		"unpack": fn(v.unpack),
	}
	math := map[string]lua.LValue{
		"abs":        fn(v.coercing(from("math", "abs").(*lua.LFunction).GFunction)),
		"ceil":       fn(v.coercing(from("math", "ceil").(*lua.LFunction).GFunction)),
		"floor":      fn(v.coercing(from("math", "floor").(*lua.LFunction).GFunction)),
		"fmod":       fn(v.coercing(from("math", "fmod").(*lua.LFunction).GFunction)),
		"huge":       from("math", "huge"),
		"max":        fn(v.coercing(from("math", "max").(*lua.LFunction).GFunction)),
		"maxinteger": lua.LNumber(maxInt),
		"min":        fn(v.coercing(from("math", "min").(*lua.LFunction).GFunction)),
		"mininteger": lua.LNumber(-maxInt),
		"modf":       fn(v.coercing(from("math", "modf").(*lua.LFunction).GFunction)),
		"pi":         from("math", "pi"),
		"random":     fn(v.random),
		"randomseed": fn(v.randomseed),
		"sqrt":       fn(v.coercing(from("math", "sqrt").(*lua.LFunction).GFunction)),
		"tointeger":  fn(mathToInteger),
		"type":       fn(mathType),
	}

	// Left out, but named: a call says what is not allowed rather than
	// "attempt to call a non-function object".
	for _, name := range []string{"collectgarbage", "dofile", "getfenv", "load", "loadfile", "loadstring",
		"module", "newproxy", "rawequal", "rawget", "rawset", "require", "setfenv"} {
		base[name] = fn(notAllowed(name))
	}

	v.libs = v.frozenTable(base)
	for name, lib := range map[string]map[string]lua.LValue{"string": str, "table": tab, "math": math, "crypto": v.cryptoLib()} {
		v.libs.RawSetString(name, v.frozenTable(lib))
	}
	sortTable(v.libs)
	v.gmeta = v.frozenTable(map[string]lua.LValue{"__index": v.libs, "__metatable": lua.LFalse})
	strMeta := map[string]lua.LValue{"__index": v.libs.RawGetString("string"), "__metatable": lua.LFalse}
	for _, event := range []string{"__add", "__sub", "__mul", "__div", "__mod", "__unm"} {
		strMeta[event] = fn(v.stringArith(event))
	}
	L.SetMetatable(lua.LString(""), v.frozenTable(strMeta))
	L.G.Global = L.NewTable()
}

// notAllowed is the stand-in for a function the sandbox leaves out.
func notAllowed(name string) lua.LGFunction {
	return func(L *lua.LState) int {
		L.RaiseError("%s is not allowed in the sandbox", name)
		return 0
	}
}

// guarded wraps a gopher-lua builtin that converts argument n to int.
func guarded(f lua.LValue, n int) lua.LGFunction {
	g := f.(*lua.LFunction).GFunction
	return func(L *lua.LState) int {
		if x, ok := L.Get(n).(lua.LNumber); ok && !(x >= -maxInt && x <= maxInt) {
			L.ArgError(n, "number outside ±(2^53−1)")
		}
		return g(L)
	}
}

// frozenTable builds a read-only table from m, inserting keys in sorted
// order so that pairs visits them in the same order in every process.
func (v *vm) frozenTable(m map[string]lua.LValue) *lua.LTable {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	t := v.L.CreateTable(0, len(m))
	for _, n := range names {
		t.RawSetString(n, m[n])
	}
	v.frozen[t] = true
	return t
}

// sortTable re-inserts a table's string keys in sorted order.
func sortTable(t *lua.LTable) {
	var names []string
	vals := map[string]lua.LValue{}
	for k, val := t.Next(lua.LNil); k != lua.LNil; k, val = t.Next(k) {
		names = append(names, string(k.(lua.LString)))
		vals[string(k.(lua.LString))] = val
	}
	sort.Strings(names)
	for _, n := range names {
		t.RawSetString(n, lua.LNil)
	}
	for _, n := range names {
		t.RawSetString(n, vals[n])
	}
}

// tostring never shows an address: tables print as "table", Lua functions
// as "function", Go functions as "function: builtin". __tostring is honoured.
func (v *vm) tostring(x lua.LValue) string {
	L := v.L
	if h := L.GetMetaField(x, "__tostring"); h != lua.LNil {
		L.Push(h)
		L.Push(x)
		L.Call(1, 1)
		s, ok := L.Get(-1).(lua.LString)
		L.Pop(1)
		if !ok {
			L.RaiseError("'__tostring' must return a string")
		}
		return string(s)
	}
	switch x := x.(type) {
	case *lua.LTable:
		return "table"
	case *lua.LFunction:
		if x.IsG {
			return "function: builtin"
		}
		return "function"
	case *lua.LUserData:
		return "userdata"
	case *lua.LState:
		return "thread"
	}
	if n, ok := x.(lua.LNumber); ok {
		return v.numText(n)
	}
	return x.String()
}

// tostringLib is the library's tostring: a number's text is a string it
// builds.
func (v *vm) tostringLib(L *lua.LState) int {
	x := L.CheckAny(1)
	s := v.tostring(x)
	if _, ok := x.(lua.LNumber); ok {
		v.built(len(s))
	}
	L.Push(lua.LString(s))
	return 1
}

// next is Lua's next(t [, k]), charged for hashing k and for the places it
// walks past: empty array slots and keys removed from the hash part, which
// gopher-lua keeps in its key order (ltable.go).
func (v *vm) next(L *lua.LState) int {
	t := L.CheckTable(1)
	k := L.Get(2)
	v.charge(hashCost(k))
	from := place(t, k)
	nk, nv := t.Next(k)
	to := span(t) + 1
	if nk != lua.LNil {
		v.charge(hashCost(nk))
		to = place(t, nk)
	}
	v.charge(walkGas * uint64(max(to-from-1, 0)))
	if nk == lua.LNil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(nk)
	L.Push(nv)
	return 2
}

// print appends its arguments, tostring'ed and tab-joined, to the log.
func (v *vm) print(L *lua.LState) int {
	n := L.GetTop()
	parts := make([]string, n)
	size := n
	v.charge(uint64(n)) // each argument is written as text
	for i := 1; i <= n; i++ {
		parts[i-1] = v.tostring(L.Get(i))
		size += len(parts[i-1])
	}
	v.charge(1)
	v.built(size)
	v.r.log = append(v.r.log, strings.Join(parts, "\t"))
	return 0
}

// pcall is Lua's pcall, except that running out of gas, hitting a limit or a
// host abort cannot be caught.
func (v *vm) pcall(L *lua.LState) int {
	v.charge(1)
	L.CheckAny(1)
	ev, ok := v.pcallMarked(L.GetTop()-1, v.handler)
	if !ok {
		L.Push(lua.LFalse)
		L.Push(ev)
		return 2
	}
	return v.succeeded(L)
}

// succeeded returns true before the results of the function pcall or
// xpcall called, which it moves: they are charged by their number.
func (v *vm) succeeded(L *lua.LState) int {
	v.values(L.GetTop())
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

// xpcall is Lua 5.1's xpcall(f, handler), with pcall's guarantees; the
// handler does not run once the run is over.
func (v *vm) xpcall(L *lua.LState) int {
	v.charge(1)
	f := L.CheckFunction(1)
	h := L.CheckFunction(2)
	handler := L.NewFunction(func(L *lua.LState) int {
		if v.r.fatal != nil {
			v.raise()
		}
		ev := v.errorValue(L.Get(1))
		L.Push(h)
		L.Push(ev)
		res, ok := v.pcallMarked(1, v.handler)
		if !ok {
			res = lua.LString("error in error handling")
		} else {
			res = L.Get(2) // the handler's first result; L.Get(1) is the error
		}
		L.Push(&lua.LUserData{Value: errMark{res}, Metatable: lua.LNil})
		return 1
	})
	L.SetTop(0)
	L.Push(f)
	ev, ok := v.pcallMarked(0, handler)
	if !ok {
		L.Push(lua.LFalse)
		L.Push(ev)
		return 2
	}
	return v.succeeded(L)
}

func (v *vm) getmetatable(L *lua.LState) int {
	mt := L.GetMetatable(L.CheckAny(1))
	if t, ok := mt.(*lua.LTable); ok {
		if p := t.RawGetString("__metatable"); p != lua.LNil {
			L.Push(p)
			return 1
		}
	}
	L.Push(mt)
	return 1
}

func (v *vm) setmetatable(L *lua.LState) int {
	v.charge(1)
	t := L.CheckTable(1)
	mt := L.Get(2)
	if _, ok := mt.(*lua.LTable); !ok && mt != lua.LNil {
		L.ArgError(2, "nil or table expected")
	}
	if what := v.lockedAs(t); what != "" {
		L.RaiseError("cannot change the metatable of %s", what)
	}
	if cur, ok := t.Metatable.(*lua.LTable); ok && cur.RawGetString("__metatable") != lua.LNil {
		L.RaiseError("cannot change a protected metatable")
	}
	t.Metatable = mt
	L.SetTop(1)
	return 1
}
