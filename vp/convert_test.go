package vp

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
)

// TestSharedTablesCharged: every conversion of a table costs its entries
// (arrayEntryGas each here), a table met again is converted again, in return
// values and host arguments alike; a chain of tables each holding the next
// twice ends out of gas instead of making the host build 2^n values.
func TestSharedTablesCharged(t *testing.T) {
	echo := HostFunc(func(args []any) ([]any, error) { return []any{len(args)}, nil })
	once, err := runWithGas(t, "local t = {1, 2, 3}\nreturn t", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := runWithGas(t, "local t = {1, 2, 3}\nreturn t, t", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	row := []any{int64(1), int64(2), int64(3)}
	if !reflect.DeepEqual(twice.Values, []any{row, row}) {
		t.Fatalf("values %v, want %v twice", twice.Values, row)
	}
	if twice.GasUsed != once.GasUsed+3*arrayEntryGas {
		t.Fatalf("gas %d, want %d + 3 entries", twice.GasUsed, once.GasUsed)
	}
	const bomb = "local t = {1}\nfor i = 1, 40 do t = {t, t} end\n"
	for name, src := range map[string]string{
		"return":   bomb + "return t",
		"host arg": bomb + "return echo(t)",
		"pcall":    bomb + "local ok = pcall(echo, t)\nreturn ok",
	} {
		res, err := runWithGas(t, src, 100_000, map[string]any{"echo": echo})
		e, ok := err.(*Error)
		if !ok || e.Kind != KindGas || !strings.Contains(e.Msg, "out of gas (limit 100000)") {
			t.Fatalf("%s: got %v, want out of gas", name, err)
		}
		if res.GasUsed != 100_000 {
			t.Fatalf("%s: gas used %d, want the limit", name, res.GasUsed)
		}
	}
}

// TestLayoutTablesApart: tables that share a layout (two notes, globals of
// two runs) stay apart when Lua code adds and removes keys in one, and
// traverse in the order of tables built key by key.
func TestLayoutTablesApart(t *testing.T) {
	pool := NewPool()
	n := testNote()
	src := `
a, b = inputs[1], inputs[2]
a.extra, a.key, b.other = 1, nil, 2
marker = true
local function keys(t) local out = {} for k in pairs(t) do out[#out + 1] = k end return table.concat(out, ",") end
return keys(a), keys(b), b.key == inputs[2].key`
	p := mustCompile(t, "apart.lua", src)
	for run := 0; run < 2; run++ {
		res, err := pool.Run(p, Call{Globals: map[string]any{"inputs": []notes.Note{n, n}}, Limits: DefaultLimits()})
		if err != nil {
			t.Fatal(err)
		}
		want := []any{"application,owner,provenance,value,extra", "application,key,owner,provenance,value,other", true}
		if !reflect.DeepEqual(res.Values, want) {
			t.Fatalf("run %d: got %#v, want %#v", run, res.Values, want)
		}
	}
	// The second run's globals (same layout as the first's) do not hold
	// what the first run set.
	g := mustCompile(t, "globals.lua", `local out = {} for k in pairs(_G) do out[#out + 1] = k end return table.concat(out, ",")`)
	res, err := pool.Run(g, Call{Globals: map[string]any{"inputs": []notes.Note{n}}, Limits: DefaultLimits()})
	if err != nil || !reflect.DeepEqual(res.Values, []any{"_G,inputs"}) {
		t.Fatalf("globals after runs that set some: %#v, %v", res.Values, err)
	}
}
