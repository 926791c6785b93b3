package vp

import (
	"reflect"
	"strings"
	"testing"
)

// TestSharedTablesCharged: a table met again in one conversion is converted
// again and each of its entries costs 1 gas, in return values and host
// arguments alike; a chain of tables each holding the next twice ends out of
// gas instead of making the host build 2^n values.
func TestSharedTablesCharged(t *testing.T) {
	echo := HostFunc(func(args []any) ([]any, error) { return []any{len(args)}, nil })
	base, err := runWithGas(t, "local t = {1, 2, 3}\nreturn {t}", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := runWithGas(t, "local t = {1, 2, 3}\nreturn {t, t}", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{[]any{[]any{int64(1), int64(2), int64(3)}, []any{int64(1), int64(2), int64(3)}}}
	if !reflect.DeepEqual(shared.Values, want) {
		t.Fatalf("values %v, want %v", shared.Values, want)
	}
	// {t, t} is one entry more in its constructor (0 gas: 1 + n/8) and t's
	// 3 entries converted again.
	if shared.GasUsed != base.GasUsed+3 {
		t.Fatalf("gas %d, want %d + 3", shared.GasUsed, base.GasUsed)
	}
	// Returned twice is shared too.
	twice, err := runWithGas(t, "local t = {1, 2, 3}\nreturn t, t", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if twice.GasUsed != base.GasUsed-1+3 { // no outer constructor (1 gas), t again (3)
		t.Fatalf("gas %d, want %d", twice.GasUsed, base.GasUsed+2)
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
