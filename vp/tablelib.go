package vp

import (
	"math/bits"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// writable returns argument n as a table the fragment may change.
func (v *vm) writable(L *lua.LState, n int) *lua.LTable {
	t := L.CheckTable(n)
	if what := v.lockedAs(t); what != "" {
		L.RaiseError("cannot modify %s", what)
	}
	return t
}

// optInt reads optional argument n under the integer rule.
func (v *vm) optInt(L *lua.LState, n, def int) int {
	if L.Get(n) == lua.LNil {
		return def
	}
	return int(v.intArg(L, n))
}

// concat is table.concat, charged by the size it builds before building it.
func (v *vm) concat(L *lua.LState) int {
	v.charge(1)
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i, j := v.optInt(L, 3, 1), 0
	if L.Get(4) == lua.LNil {
		j = v.border(t)
	} else {
		j = int(v.intArg(L, 4))
	}
	if j < i {
		L.Push(lua.LString(""))
		return 1
	}
	v.charge(uint64(j-i) / 8)
	// Size the result from its strings first, so that it is built in one
	// allocation (a number is written as it comes).
	size := len(sep) * (j - i)
	for k := i; k <= j && size <= v.r.lim.MaxString; k++ {
		if s, ok := t.RawGetInt(k).(lua.LString); ok {
			size += len(s)
		}
	}
	if size > v.r.lim.MaxString {
		v.built(size)
	}
	var b strings.Builder
	b.Grow(size)
	for k := i; k <= j; k++ {
		if k > i {
			b.WriteString(sep)
		}
		switch x := t.RawGetInt(k).(type) {
		case lua.LString:
			b.WriteString(string(x))
		case lua.LNumber:
			b.WriteString(v.numText(x))
		default:
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
		if b.Len() > v.r.lim.MaxString {
			v.built(b.Len())
		}
	}
	v.built(b.Len())
	L.Push(lua.LString(b.String()))
	return 1
}

// insert is table.insert(t, [pos,] value), counted like a store.
func (v *vm) insert(L *lua.LState) int {
	v.charge(1)
	t := v.writable(L, 1)
	n := v.border(t)
	switch L.GetTop() {
	case 2:
		v.store(t, lua.LNumber(n+1), L.Get(2), 0)
	case 3:
		pos := int(v.intArg(L, 2))
		if pos < 1 || pos > n+1 {
			L.ArgError(2, "position out of bounds")
		}
		v.charge(uint64(n-pos+1) / 8)
		if pos <= n {
			v.store(t, lua.LNumber(n+1), t.RawGetInt(n), 0)
			for k := n; k > pos; k-- {
				t.RawSetInt(k, t.RawGetInt(k-1))
			}
		}
		v.store(t, lua.LNumber(pos), L.Get(3), 0)
	default:
		L.RaiseError("wrong number of arguments to 'insert'")
	}
	return 0
}

// remove is table.remove(t [, pos]).
func (v *vm) remove(L *lua.LState) int {
	v.charge(1)
	t := v.writable(L, 1)
	n := v.border(t)
	if n == 0 {
		return 0
	}
	pos := v.optInt(L, 2, n)
	if pos < 1 || pos > n {
		L.ArgError(2, "position out of bounds")
	}
	v.charge(uint64(n-pos) / 8)
	out := t.RawGetInt(pos)
	for k := pos; k < n; k++ {
		t.RawSetInt(k, t.RawGetInt(k+1))
	}
	t.RawSetInt(n, lua.LNil)
	L.Push(out)
	return 1
}

// pack is Lua 5.3's table.pack(...): the arguments and n.
func (v *vm) pack(L *lua.LState) int {
	v.charge(1)
	n := L.GetTop()
	t := L.CreateTable(n, 1)
	for i := 1; i <= n; i++ {
		t.RawSetInt(i, L.Get(i))
	}
	t.RawSetString("n", lua.LNumber(n))
	v.newTable(t)
	L.Push(t)
	return 1
}

// unpack is unpack / table.unpack(t [, i [, j]]), charged by the values it
// returns and refused beyond the table size limit.
func (v *vm) unpack(L *lua.LState) int {
	v.charge(1)
	t := L.CheckTable(1)
	i, j := v.optInt(L, 2, 1), 0
	if L.Get(3) == lua.LNil {
		j = v.border(t)
	} else {
		j = int(v.intArg(L, 3))
	}
	if j < i {
		return 0
	}
	if j-i >= v.r.lim.MaxTable {
		L.RaiseError("too many results to unpack")
	}
	v.values(j - i + 1)
	grow(L, j-i+1)
	for k := i; k <= j; k++ {
		L.Push(t.RawGetInt(k))
	}
	return j - i + 1
}

// sort is table.sort(t [, less]) on t[1..n], n the border: a bottom-up
// merge sort of the sandbox's own, so that which comparisons it makes (and
// so the gas a Lua comparator spends, and the order of elements that
// compare equal) never depends on the Go release's sort.Sort. It makes at
// most n·⌈log2 n⌉ comparisons, all paid for up front; an inconsistent
// comparator cannot make it loop. The sort is stable; t is written only
// once the sort is done, so an error leaves it as it was.
func (v *vm) sort(L *lua.LState) int {
	v.charge(1)
	t := v.writable(L, 1)
	n := v.border(t)
	v.charge(uint64(n * bits.Len(uint(n))))
	less := v.less // strings charged by the bytes compared
	if L.Get(2) != lua.LNil {
		fn := L.CheckFunction(2)
		less = func(a, b lua.LValue) bool { return callBool(L, fn, a, b) }
	}
	src, dst := make([]lua.LValue, n), make([]lua.LValue, n)
	for i := range src {
		src[i] = t.RawGetInt(i + 1)
	}
	for w := 1; w < n; w *= 2 {
		for lo := 0; lo < n; lo += 2 * w {
			mid, hi := min(lo+w, n), min(lo+2*w, n)
			i, j, k := lo, mid, lo
			for ; i < mid && j < hi; k++ {
				if less(src[j], src[i]) {
					dst[k], j = src[j], j+1
				} else {
					dst[k], i = src[i], i+1
				}
			}
			k += copy(dst[k:], src[i:mid])
			copy(dst[k:], src[j:hi])
		}
		src, dst = dst, src
	}
	for i, x := range src {
		t.RawSetInt(i+1, x)
	}
	return 0
}
