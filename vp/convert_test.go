package vp

import (
	"reflect"
	"strings"
	"testing"
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
