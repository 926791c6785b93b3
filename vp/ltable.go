package vp

import (
	"reflect"
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
