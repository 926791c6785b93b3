package vp

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestSortIsTheSandboxs: table.sort is stable, makes the same comparisons
// on every Go release (pinned: a Lua comparator's call count and the run's
// gas), survives an inconsistent comparator and leaves the table unchanged
// when the comparator errors.
func TestSortIsTheSandboxs(t *testing.T) {
	stable := `local t = {}
for i = 1, 50 do t[i] = {k = i % 3, i = i} end
local calls = 0
table.sort(t, function(a, b) calls = calls + 1 return a.k < b.k end)
local out = {}
for i = 1, 50 do out[i] = t[i].i end
return table.concat(out, ","), calls`
	res, err := runSrc(t, stable, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for k := 0; k < 3; k++ {
		for i := 1; i <= 50; i++ {
			if i%3 == k {
				want = append(want, strconv.Itoa(i))
			}
		}
	}
	if got := res.Values[0]; got != strings.Join(want, ",") {
		t.Fatalf("order %v, want the stable %v", got, strings.Join(want, ","))
	}
	if res.Values[1] != int64(228) || res.GasUsed != 4463 {
		t.Fatalf("%v comparisons, gas %d; want 228 and 4463 on every Go release", res.Values[1], res.GasUsed)
	}

	res, err = runSrc(t, `local t = {}
for i = 1, 200 do t[i] = i end
table.sort(t, function() return true end)
return t[1], t[200]`, nil)
	if err != nil || !reflect.DeepEqual(res.Values, []any{int64(200), int64(1)}) {
		t.Fatalf("always-true comparator: %v, %v", res.Values, err)
	}

	res, err = runSrc(t, `local t = {3, 1, 2}
local ok, msg = pcall(table.sort, t, function(a, b) if a == 1 or b == 1 then error("boom") end return a < b end)
return ok, msg, table.concat(t, ",")`, nil)
	if err != nil || !reflect.DeepEqual(res.Values, []any{false, "t.lua:2: boom", "3,1,2"}) {
		t.Fatalf("erroring comparator: %v, %v", res.Values, err)
	}

	for src, msg := range map[string]string{
		`table.sort({1, "a"})`:  "attempt to compare",
		`table.sort({1, 2}, 5)`: "function expected",
	} {
		_, err := runSrc(t, src, nil)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Fatalf("%s: %v, want %q", src, err, msg)
		}
	}
}
