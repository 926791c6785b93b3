package vp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"

	lua "github.com/yuin/gopher-lua"

	"github.com/fractalvm/fractal/notes"
)

// maxNesting bounds nested tables in value conversion (and catches cycles).
const maxValueDepth = 64

// Int applies the integer rule: v must be an integral number within
// ±(2^53−1). It accepts int, int64, uint64 and float64.
func Int(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		if x < -maxInt || x > maxInt {
			return 0, fmt.Errorf("vp: integer %d outside ±(2^53−1)", x)
		}
		return x, nil
	case int:
		return Int(int64(x))
	case uint64:
		if x > maxInt {
			return 0, fmt.Errorf("vp: integer %d outside ±(2^53−1)", x)
		}
		return int64(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x != math.Trunc(x) {
			return 0, fmt.Errorf("vp: %v is not an integer", lua.LNumber(x))
		}
		if x < -maxInt || x > maxInt {
			return 0, fmt.Errorf("vp: %v outside ±(2^53−1)", lua.LNumber(x))
		}
		return int64(x), nil
	}
	return 0, fmt.Errorf("vp: expected an integer, got %T", v)
}

// fromNumber is the Lua→Go rule for numbers: int64 when integral within
// ±(2^53−1), float64 otherwise.
func fromNumber(n lua.LNumber) any {
	if isInt(n) {
		return int64(n)
	}
	return float64(n)
}

// toLua converts a Go value (see docs/formats/lua-values.md) to Lua. Tables
// it builds are counted as the run's tables; what it builds counts as the
// run's memory while the run is counting (a host function's results), not
// for the globals the host sets before the run.
func (v *vm) toLua(x any, depth int) (lua.LValue, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxValueDepth)
	}
	L := v.L
	switch x := x.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(x), nil
	case int, int64, uint64:
		i, err := Int(x)
		if err != nil {
			return nil, err
		}
		return lua.LNumber(i), nil
	case float64:
		return lua.LNumber(x), nil
	case string:
		v.made(0, int64(len(x))+stringBytes)
		return lua.LString(x), nil
	case []byte:
		v.made(0, int64(len(x))+stringBytes)
		return lua.LString(x), nil
	case []any:
		return v.array(len(x), func(i int) (lua.LValue, error) { return v.toLua(x[i], depth+1) })
	case []string:
		return v.array(len(x), func(i int) (lua.LValue, error) { return v.toLua(x[i], depth+1) })
	case [][]byte:
		return v.array(len(x), func(i int) (lua.LValue, error) { return v.toLua(x[i], depth+1) })
	case map[string]any:
		names := make([]string, 0, len(x))
		for n := range x {
			names = append(names, n)
		}
		sort.Strings(names)
		keys, values := make([]lua.LValue, len(names)), make([]lua.LValue, len(names))
		for i, n := range names {
			lv, err := v.toLua(x[n], depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			keys[i], values[i] = lua.LString(n), lv
		}
		t := L.CreateTable(0, len(x))
		fillStrings(t, keys, values)
		v.hostTable(t, len(x), tableInfo{slots: len(x), hash: len(x), strMap: len(x) > 0})
		return t, nil
	case notes.Note:
		return v.noteTable(&x), nil
	case *notes.Note:
		if x == nil {
			return lua.LNil, nil
		}
		if t, ok := v.sess.sharedNote(x); ok {
			return t, nil
		}
		return v.noteTable(x), nil
	case []notes.Note:
		return v.array(len(x), func(i int) (lua.LValue, error) {
			t := v.noteTable(&x[i])
			if v.sess != nil && v.sess.sharing {
				v.sess.notes[&x[i]] = t
			}
			return t, nil
		})
	case HostFunc:
		return v.host(plain(x)), nil
	case func([]any) ([]any, error):
		return v.host(plain(x)), nil
	case HostFuncCtx:
		return v.host(x), nil
	case func(*HostCall, []any) ([]any, error):
		return v.host(x), nil
	}
	return nil, fmt.Errorf("cannot pass a %T to Lua", x)
}

// noteTable is NoteToValue(*n) converted, built directly: the same table,
// fields inserted in the same (sorted) order, without the Go map between.
func (v *vm) noteTable(n *notes.Note) *lua.LTable {
	np := len(n.Provenance)
	prov := v.L.CreateTable(np, 0)
	strs := 2*(64+stringBytes) + int64(len(n.Key)+len(n.Value)) + 2*stringBytes
	for i, p := range n.Provenance {
		prov.RawSetInt(i+1, lua.LString(hex.EncodeToString(p)))
		strs += int64(2*len(p)) + stringBytes
	}
	v.hostTable(prov, 0, tableInfo{slots: np, hw: np, top: np, cap: np})
	t := v.L.CreateTable(0, 0)
	fields := [...]lua.LValue{v.hexText(&n.Application), lua.LString(n.Key), v.hexText(&n.Owner), prov, lua.LString(n.Value)}
	noteLayout.fill(t, fields[:])
	v.made(5+np, strs) // its fields, provenance entries and strings
	v.hostTable(t, 0, tableInfo{slots: 5, hash: 5, strMap: true})
	return t
}

// noteLayout is the keys of a note table, in the order they are inserted.
var noteLayout = newLayout(boxed("application", "key", "owner", "provenance", "value"))

// maxHexTexts bounds the hashes whose hex text a VM keeps.
const maxHexTexts = 256

// hexText is h in lower-case hex as a Lua string. The applications and
// owners of notes are few (the deployed predicates), so the VM keeps their
// text and its box.
func (v *vm) hexText(h *notes.Hash) lua.LValue {
	if s, ok := v.hexes[*h]; ok {
		return s
	}
	s := lua.LValue(lua.LString(hex.EncodeToString(h[:])))
	if len(v.hexes) < maxHexTexts {
		if v.hexes == nil {
			v.hexes = make(map[notes.Hash]lua.LValue)
		}
		v.hexes[*h] = s
	}
	return s
}

func (v *vm) array(n int, at func(i int) (lua.LValue, error)) (lua.LValue, error) {
	t := v.L.CreateTable(n, 0)
	for i := 0; i < n; i++ {
		lv, err := at(i)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i+1, err)
		}
		t.RawSetInt(i+1, lv)
	}
	v.hostTable(t, n, tableInfo{slots: n, hw: n, top: n, cap: n})
	return t, nil
}

// hostTable tracks a table toLua built with its entries and counts it as
// made.
func (v *vm) hostTable(t *lua.LTable, entries int, ti tableInfo) {
	v.made(entries, v.r.track(t, ti).bytes())
}

// made counts, while the run is counting them (a host function's results),
// the entries toLua put in tables, 1 gas each, and the bytes it built.
func (v *vm) made(entries int, bytes int64) {
	if v.r.counting {
		v.charge(uint64(entries))
		v.alloc(bytes)
	}
}

// What converting a table entry between Lua and Go costs: a value built on
// the other side, and for a hash entry several map operations.
const (
	arrayEntryGas = 2
	hashEntryGas  = 4
)

// converter converts Lua values to Go (see docs/formats/lua-values.md):
// one for all the return values of a run, one for all the arguments of a
// host call. Each table costs arrayEntryGas per integer key, hashEntryGas
// per other key, and walkGas for each other place its traversal walks past
// (empty array slots, removed keys: ltable.go), each time it is converted: a table
// met again (shared, not nested in itself) is converted again, so a chain
// of n tables, each holding the next twice, built for n gas, costs 2^n gas,
// not 2^n values built for free.
type converter struct {
	v *vm
}

func (c *converter) value(lv lua.LValue, depth int) (any, error) {
	if depth > maxValueDepth {
		return nil, fmt.Errorf("nested deeper than %d (a cycle?)", maxValueDepth)
	}
	switch x := lv.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(x), nil
	case lua.LNumber:
		return fromNumber(x), nil
	case lua.LString:
		return string(x), nil
	case *lua.LTable:
		return c.table(x, depth)
	}
	return nil, fmt.Errorf("a %s value cannot leave Lua", lv.Type())
}

func (c *converter) table(t *lua.LTable, depth int) (any, error) {
	var keys []lua.LValue
	strs, ints := 0, 0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		keys = append(keys, k)
		switch k := k.(type) {
		case lua.LString:
			strs++
		case lua.LNumber:
			if isInt(k) {
				ints++
			}
		}
	}
	gas := uint64(arrayEntryGas*ints + hashEntryGas*(len(keys)-ints) + walkGas*max(span(t)-len(keys), 0))
	if !c.v.spend(gas) {
		return nil, c.v.r.fatal
	}
	if len(keys) == 0 {
		return []any{}, nil
	}
	if ints == len(keys) {
		out := make([]any, len(keys))
		for i := range out {
			ev := t.RawGetInt(i + 1)
			if ev == lua.LNil {
				return nil, errors.New("table is neither a sequence 1..n nor keyed by strings")
			}
			g, err := c.value(ev, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i+1, err)
			}
			out[i] = g
		}
		return out, nil
	}
	if strs == len(keys) {
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			g, err := c.value(t.RawGet(k), depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", string(k.(lua.LString)), err)
			}
			out[string(k.(lua.LString))] = g
		}
		return out, nil
	}
	return nil, errors.New("table is neither a sequence 1..n nor keyed by strings")
}

// NoteToValue is the note table of the Go value model.
func NoteToValue(n notes.Note) map[string]any {
	prov := make([]any, len(n.Provenance))
	for i, p := range n.Provenance {
		prov[i] = hex.EncodeToString(p)
	}
	return map[string]any{
		"provenance":  prov,
		"application": hex.EncodeToString(n.Application[:]),
		"owner":       hex.EncodeToString(n.Owner[:]),
		"key":         string(n.Key),
		"value":       string(n.Value),
	}
}

// NoteFromValue reads a note table strictly: every field present with its
// type, no other field, lower-case hex, and the limits of notes.Validate.
func NoteFromValue(val any) (notes.Note, error) {
	var n notes.Note
	m, ok := val.(map[string]any)
	if !ok {
		return n, fmt.Errorf("vp: note: want a table keyed by field names, got %s", goType(val))
	}
	fields := []string{"application", "key", "owner", "provenance", "value"}
	for k := range m {
		if sort.SearchStrings(fields, k) == len(fields) || fields[sort.SearchStrings(fields, k)] != k {
			return n, fmt.Errorf("vp: note: unknown field %q", k)
		}
	}
	str := func(name string) (string, error) {
		s, ok := m[name].(string)
		if !ok {
			return "", fmt.Errorf("vp: note: %s: want a string, got %s", name, goType(m[name]))
		}
		return s, nil
	}
	hash := func(name string, out *[32]byte) error {
		s, err := str(name)
		if err != nil {
			return err
		}
		b, err := lowerHex(s)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("vp: note: %s: want 64 lower-case hex digits", name)
		}
		copy(out[:], b)
		return nil
	}
	if err := hash("application", &n.Application); err != nil {
		return n, err
	}
	if err := hash("owner", &n.Owner); err != nil {
		return n, err
	}
	key, err := str("key")
	if err != nil {
		return n, err
	}
	value, err := str("value")
	if err != nil {
		return n, err
	}
	n.Key, n.Value = []byte(key), []byte(value)
	prov, ok := m["provenance"].([]any)
	if !ok {
		return n, fmt.Errorf("vp: note: provenance: want a list, got %s", goType(m["provenance"]))
	}
	for i, p := range prov {
		s, ok := p.(string)
		b, err := lowerHex(s)
		if !ok || err != nil {
			return n, fmt.Errorf("vp: note: provenance[%d]: want lower-case hex", i+1)
		}
		n.Provenance = append(n.Provenance, b)
	}
	if err := n.Validate(); err != nil {
		return n, fmt.Errorf("vp: note: %w", err)
	}
	return n, nil
}

func lowerHex(s string) ([]byte, error) {
	for _, c := range s {
		if c >= 'A' && c <= 'F' {
			return nil, errors.New("upper-case hex")
		}
	}
	return hex.DecodeString(s)
}

func goType(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%T", v)
}
