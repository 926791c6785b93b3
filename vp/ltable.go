package vp

import (
	"maps"
	"reflect"
	"slices"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// gopher-lua's tables keep what `next` walks where its API cannot see: the
// array part, and the hash keys in the order they were first added, kept
// after they are removed (a removed key still holds its place so that a
// traversal can go on from it). A table that had many keys removed makes
// `next` skip them all, one call after another. These accessors read the
// two lengths and a key's place, so that `next` and the conversion of a
// table to Go are charged for what they walk. The fields are found by name
// and type when the package starts; go.mod pins gopher-lua, and a release
// that changed them would fail here, not silently.
var (
	arrayOffset = tableField("array", reflect.TypeFor[[]lua.LValue]())
	keysOffset  = tableField("keys", reflect.TypeFor[[]lua.LValue]())
	k2iOffset   = tableField("k2i", reflect.TypeFor[map[lua.LValue]int]())
)

func tableField(name string, typ reflect.Type) uintptr {
	f, ok := reflect.TypeFor[lua.LTable]().FieldByName(name)
	if !ok || f.Type != typ {
		panic("vp: gopher-lua's LTable has no field " + name + " of type " + typ.String())
	}
	return f.Offset
}

// span is how many places `next` may walk in t: its array part and every
// hash key it ever had.
func span(t *lua.LTable) int {
	array := *(*[]lua.LValue)(unsafe.Add(unsafe.Pointer(t), arrayOffset))
	keys := *(*[]lua.LValue)(unsafe.Add(unsafe.Pointer(t), keysOffset))
	return len(array) + len(keys)
}

// place is where `next` finds k in t, counting from 1 (0 is before the
// first); a key t never had is at 0, as `next` restarts there.
func place(t *lua.LTable, k lua.LValue) int {
	if k == lua.LNil {
		return 0
	}
	array := *(*[]lua.LValue)(unsafe.Add(unsafe.Pointer(t), arrayOffset))
	if n, ok := k.(lua.LNumber); ok && n >= 1 && float64(n) <= float64(len(array)) && float64(n) == float64(int(n)) {
		return int(n)
	}
	k2i := *(*map[lua.LValue]int)(unsafe.Add(unsafe.Pointer(t), k2iOffset))
	if i, ok := k2i[k]; ok {
		return len(array) + 1 + i
	}
	return 0
}

var (
	strdictOffset = tableField("strdict", reflect.TypeFor[map[string]lua.LValue]())
)

// fillStrings stores values[i] under the string key names[i] (each an
// lua.LString) in t, a table fresh from CreateTable(0, len(names)), in that
// order: the table that RawSetString for each pair makes, traversed in the
// same order, with its key list and key index allocated once at their size
// and the boxed names reused (RawSetString grows both from empty and boxes
// its key anew each call). A nil value is left out, as RawSetString leaves
// it on a fresh table; a repeated name keeps its first place.
func fillStrings(t *lua.LTable, names, values []lua.LValue) {
	if len(names) == 0 {
		return
	}
	p := unsafe.Pointer(t)
	strdict := *(*map[string]lua.LValue)(unsafe.Add(p, strdictOffset))
	keys := make([]lua.LValue, 0, len(names))
	k2i := make(map[lua.LValue]int, len(names))
	for i, k := range names {
		if values[i] == lua.LNil {
			continue
		}
		strdict[string(k.(lua.LString))] = values[i]
		if _, dup := k2i[k]; !dup {
			k2i[k] = len(keys)
			keys = append(keys, k)
		}
	}
	*(*[]lua.LValue)(unsafe.Add(p, keysOffset)) = keys
	*(*map[lua.LValue]int)(unsafe.Add(p, k2iOffset)) = k2i
}

// layout is the key part shared by tables whose string keys are the same
// names inserted in the same order: a table of the layout copies the key
// index and shares the key list (which gopher-lua only appends to, and
// which is full, so an append copies it) instead of building both key by
// key.
type layout struct {
	keys    []lua.LValue // the names, boxed; len == cap
	k2i     map[lua.LValue]int
	strdict map[string]lua.LValue // every name, to values the tables overwrite
}

// newLayout returns the layout of names (each an lua.LString, distinct).
func newLayout(names []lua.LValue) *layout {
	l := &layout{keys: slices.Clip(slices.Clone(names)), k2i: make(map[lua.LValue]int, len(names)), strdict: make(map[string]lua.LValue, len(names))}
	for i, k := range l.keys {
		l.k2i[k] = i
		l.strdict[string(k.(lua.LString))] = lua.LNil
	}
	return l
}

// same reports whether names are the layout's, in its order.
func (l *layout) same(names []lua.LValue) bool {
	return slices.Equal(l.keys, names)
}

// fill stores values[i] under the layout's i-th name in t, a table fresh
// from CreateTable(0, 0): the table fillStrings makes from the same names
// and values. A nil value leaves the layout (the key would not be there),
// so fill falls back to fillStrings.
func (l *layout) fill(t *lua.LTable, values []lua.LValue) {
	if slices.Contains(values, lua.LValue(lua.LNil)) {
		*(*map[string]lua.LValue)(unsafe.Add(unsafe.Pointer(t), strdictOffset)) = make(map[string]lua.LValue, len(values))
		fillStrings(t, l.keys, values)
		return
	}
	strdict := maps.Clone(l.strdict)
	for i, k := range l.keys {
		strdict[string(k.(lua.LString))] = values[i]
	}
	p := unsafe.Pointer(t)
	*(*map[string]lua.LValue)(unsafe.Add(p, strdictOffset)) = strdict
	*(*[]lua.LValue)(unsafe.Add(p, keysOffset)) = l.keys
	*(*map[lua.LValue]int)(unsafe.Add(p, k2iOffset)) = maps.Clone(l.k2i)
}

// boxed returns names as Lua strings, boxed once.
func boxed(names ...string) []lua.LValue {
	out := make([]lua.LValue, len(names))
	for i, n := range names {
		out[i] = lua.LString(n)
	}
	return out
}
