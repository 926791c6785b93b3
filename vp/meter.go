package vp

import (
	lua "github.com/yuin/gopher-lua"
)

// The meter functions below stand in for VM operations whose work grows
// with their operands: the instrumenter calls them where it cannot tell
// that the work is small (instrument.go).

// Rates of the charges for work that grows with an operand.
const (
	valuesPerGas  = 8  // values moved as a list: call arguments and results, `...`
	walkGas       = 4  // each place a table traversal walks past: a removed key is looked up
	hashedPerGas  = 64 // bytes of a key hashed, or of strings compared
	hopGas        = 1  // each table an __index or __newindex chain passes
	parsedPerGas  = 16 // bytes of a string read as a number
	maxChainLinks = 16 // tables an __index or __newindex chain may pass
	closureGas    = 4  // a closure, besides the variables it keeps
	errorGas      = 32 // an error raised and caught: Go's panic and recover, the position
	argsPerGas    = 4  // arguments a builtin reads one by one (string.char, math.max, ...)
)

// va is `__fx_va(...)`: it returns its arguments, charged by their number.
// The instrumenter passes through it every list of values whose length is
// known only at run time (`...`, a call's results) that the VM copies.
func (v *vm) va(L *lua.LState) int {
	n := L.GetTop()
	v.values(n)
	return n
}

// values charges for n values the VM moves as one list.
func (v *vm) values(n int) {
	v.charge(uint64(n / valuesPerGas))
	v.stack(n)
}

// grow makes room for n more values on L's stack at once: gopher-lua grows
// it 32 slots at a time, copying it each time, so pushing many values one
// by one would cost time quadratic in their number.
func grow(L *lua.LState, n int) {
	top := L.GetTop()
	L.SetTop(top + n)
	L.SetTop(top)
}

// hashCost is the gas for hashing s, or comparing n bytes of strings,
// beyond what a name costs.
func hashCost(s lua.LValue) uint64 {
	if str, ok := s.(lua.LString); ok {
		return compareCost(len(str))
	}
	return 0
}

func compareCost(n int) uint64 { return uint64(n / hashedPerGas) }

// cmp is `__fx_cmp(op, a, b)`: the comparison a op b (op one of == < <= >
// >=) where a or b may be a long string, charged by the bytes compared.
// Other operands compare as the VM would, metamethods included.
func (v *vm) cmp(L *lua.LState) int {
	op, a, b := L.Get(1), L.Get(2), L.Get(3)
	var r bool
	switch op {
	case lua.LString("=="):
		r = v.equal(a, b)
	case lua.LString("<"):
		r = v.less(a, b)
	case lua.LString("<="):
		r = v.lessEqual(a, b)
	case lua.LString(">"):
		r = v.less(b, a)
	case lua.LString(">="):
		r = v.lessEqual(b, a)
	default:
		L.RaiseError("unknown comparison %s", op.String())
	}
	L.Push(lua.LBool(r))
	return 1
}

func (v *vm) equal(a, b lua.LValue) bool {
	if x, ok := a.(lua.LString); ok {
		if y, ok := b.(lua.LString); ok {
			if len(x) == len(y) {
				v.charge(compareCost(len(x)))
			}
			return x == y
		}
	}
	return v.L.Equal(a, b)
}

func (v *vm) less(a, b lua.LValue) bool {
	if x, ok := a.(lua.LString); ok {
		if y, ok := b.(lua.LString); ok {
			v.charge(compareCost(min(len(x), len(y))))
			return x < y // bytewise, as Lua's strcmp in the C locale
		}
	}
	return v.L.LessThan(a, b)
}

// lessEqual is a <= b as gopher-lua's OP_LE: numbers and strings directly,
// otherwise __le, or else not (b < a) by __lt.
func (v *vm) lessEqual(a, b lua.LValue) bool {
	L := v.L
	switch x := a.(type) {
	case lua.LNumber:
		if y, ok := b.(lua.LNumber); ok {
			return x <= y
		}
	case lua.LString:
		if y, ok := b.(lua.LString); ok {
			v.charge(compareCost(min(len(x), len(y))))
			return x <= y
		}
	}
	if a.Type() == b.Type() {
		if r, ok := v.compareMeta(a, b, "__le"); ok {
			return r
		}
		if r, ok := v.compareMeta(b, a, "__lt"); ok {
			return !r
		}
	}
	L.RaiseError("attempt to compare %v with %v", a.Type().String(), b.Type().String())
	return false
}

// compareMeta calls the comparison metamethod event when a and b share it.
func (v *vm) compareMeta(a, b lua.LValue, event string) (result, ok bool) {
	L := v.L
	h, ok := L.GetMetaField(a, event).(*lua.LFunction)
	if !ok || L.GetMetaField(b, event) != h {
		return false, false
	}
	return callBool(L, h, a, b), true
}

// callBool calls f(a, b) and returns its first result as a condition.
func callBool(L *lua.LState, f *lua.LFunction, a, b lua.LValue) bool {
	L.Push(f)
	L.Push(a)
	L.Push(b)
	L.Call(2, 1)
	r := lua.LVAsBool(L.Get(-1))
	L.Pop(1)
	return r
}

// get is `__fx_get(t, k)`: t[k] where k may be a long string, charged by
// k's length at each table it is looked up in. It follows __index as the
// VM does, at most maxChainLinks tables.
func (v *vm) get(L *lua.LState) int {
	obj, key := L.Get(1), L.Get(2)
	c := hashCost(key)
	for hop := 0; hop < maxChainLinks; hop++ {
		if hop > 0 {
			v.charge(hopGas)
		}
		v.charge(c)
		t, isTable := obj.(*lua.LTable)
		if isTable {
			if r := t.RawGet(key); r != lua.LNil {
				L.Push(r)
				return 1
			}
		}
		h := L.GetMetaField(obj, "__index")
		switch h := h.(type) {
		case *lua.LNilType:
			if !isTable {
				L.RaiseError("attempt to index a non-table object(%v) with key '%s'", obj.Type().String(), key.String())
			}
			L.Push(lua.LNil)
			return 1
		case *lua.LFunction:
			L.Push(h)
			L.Push(obj)
			L.Push(key)
			L.Call(2, 1)
			return 1
		}
		obj = h
	}
	L.RaiseError("too many recursions in gettable") // gopher-lua's words
	return 0
}

// fn is `__fx_fn(f)`: it counts the memory of the closure f the run just
// made and returns it.
func (v *vm) fn(L *lua.LState) int {
	if f, ok := L.Get(1).(*lua.LFunction); ok {
		v.closure(f)
	}
	return 1
}
