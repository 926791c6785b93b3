package vp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
)

// TestIssueVarargFragment is the fragment that held `fractal lua run --gas
// 1000000` for 57 s: each select('#', ...) moves the 65536 values of `...`.
// Charged by the values it moves, it runs out of gas after at most 1 + 10^6
// / (65536 / valuesPerGas) iterations; nothing is timed.
func TestIssueVarargFragment(t *testing.T) {
	const src = `local t = {} for i = 1, 65536 do t[i] = i end
local function f(...) local n = 0 while true do n = n + select('#', ...) tick() end end
f(unpack(t))`
	iterations := 0
	tick := HostFunc(func([]any) ([]any, error) { iterations++; return nil, nil })
	lim := DefaultLimits()
	res, err := NewPool().Run(mustCompile(t, "issue.lua", src), Call{Globals: map[string]any{"tick": tick}, Limits: lim})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindGas || res.GasUsed != lim.Gas {
		t.Fatalf("got %v after %d gas, want out of gas", err, res.GasUsed)
	}
	if most := 1 + int(lim.Gas)/(65536/valuesPerGas); iterations > most {
		t.Fatalf("%d iterations of select('#', ...) with 65536 values in %d gas, want at most %d", iterations, lim.Gas, most)
	}
}

// TestGasGrowsWithWork: for every operation whose work grows with an
// argument, ten runs of it cost at least ten times the argument's size over
// its rate more gas than ten runs of a no-op, so its gas follows its work.
// Each case is one fragment run once; nothing is timed.
func TestGasGrowsWithWork(t *testing.T) {
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(rand.Reader, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	globals := map[string]any{
		"f":   HostFunc(func([]any) ([]any, error) { return nil, nil }),
		"pub": key.Public().String(), "sig": string(sig),
	}
	const (
		long    = `local a, b = string.rep("a", 65536), string.rep("a", 65536) `
		array   = `local t = {} for i = 1, 8192 do t[i] = i end `
		removed = `local t = {} for i = 1, 4096 do t["k" .. i] = i end for i = 1, 4095 do t["k" .. i] = nil end `
		digits  = `local s = string.rep(" ", 65535) .. "1" `
	)
	// vararg runs body with `...` holding the 8192 values of array.
	vararg := func(op string) string {
		return array + `local function g(...) for _ = 1, 10 do ` + op + ` end end g(unpack(t))`
	}
	for _, c := range []struct {
		name    string
		src     func(op string) string
		op      string
		atLeast int
	}{
		{"select('#', ...)", vararg, `local n = select('#', ...)`, 8192 / valuesPerGas},
		{"passing ...", vararg, `local a = select(1, select(1, ...))`, 2 * 8192 / valuesPerGas},
		{"pcall's results", func(op string) string { return array + `for _ = 1, 10 do ` + op + ` end` }, `local ok = pcall(unpack, t)`, 2 * 8192 / valuesPerGas},
		{"{...}", vararg, `local x = {...}`, 8192},
		{"string.char(...)", func(op string) string {
			return `local t = {} for i = 1, 8192 do t[i] = 65 end local function g(...) for _ = 1, 10 do ` + op + ` end end g(unpack(t))`
		}, `local s = string.char(...)`, 8192 / argsPerGas},
		{"math.max(...)", vararg, `local m = math.max(...)`, 8192 / argsPerGas},
		{"long ==", loop(long), `local x = a == b`, 65536 / hashedPerGas},
		{"long <", loop(long), `local x = a < b`, 65536 / hashedPerGas},
		{"long key read", loop(long + `local t = {[a] = 1} `), `local x = t[b]`, 65536 / hashedPerGas},
		{"long key store", loop(long + `local t = {} `), `t[b] = 1`, 65536 / hashedPerGas},
		{"next past removed keys", loop(removed), `local k = next(t)`, 4095 * walkGas},
		{"tonumber", loop(digits), `local x = tonumber(s)`, 65536 / parsedPerGas},
		{"string arithmetic", loop(digits), `local x = s + 1`, 65536 / parsedPerGas},
		{"math coercion", loop(digits), `local x = math.abs(s)`, 65536 / parsedPerGas},
		{"error message", loop(long), `pcall(error, a)`, 65536 / 32},
		{"sort long strings", loop(`local p = string.rep("a", 65536) local t = {} for i = 1, 16 do t[i] = p .. string.char(80 - i) end `),
			`table.sort(t)`, 15 * 65536 / hashedPerGas},
		{"concat numbers", loop(`local t = {} for i = 1, 1000 do t[i] = i + 0.5 end `), `local s = table.concat(t, ",")`, 1000 * floatTextGas},
		{"format digits", loop(``), `local s = string.format("%.99f", 1e300)`, 400 / 4},
		{"host argument", loop(array), `f(t)`, 8192 * arrayEntryGas},
		{"crypto.verify", loop(``), `local ok = crypto.verify(pub, "m", sig)`, VerifyGas},
	} {
		gas := func(op string) uint64 {
			lim := DefaultLimits()
			lim.Gas = 100_000_000
			res, err := NewPool().Run(mustCompile(t, "work.lua", c.src(op)), Call{Globals: globals, Limits: lim})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			return res.GasUsed
		}
		work, none := gas(c.op), gas(`local _ = nil`)
		if work < none+10*uint64(c.atLeast) {
			t.Errorf("%s: 10 runs cost %d gas more than 10 no-ops, want at least 10 × %d", c.name, work-none, c.atLeast)
		}
	}
}

// loop runs op ten times after setup.
func loop(setup string) func(op string) string {
	return func(op string) string { return fmt.Sprintf("%s for _ = 1, 10 do %s end", setup, op) }
}

// TestCompileBounds: a name is hashed at every use, so names longer than
// maxName are refused when the source compiles; so are sources with more
// than maxFunctions functions, each of which takes 16 KiB to compile.
func TestCompileBounds(t *testing.T) {
	fns := strings.Repeat("do local function f() end end\n", maxFunctions)
	if _, err := Compile("f.lua", []byte(fns)); err != nil {
		t.Fatalf("%d functions: %v", maxFunctions, err)
	}
	_, err := Compile("f.lua", []byte(fns+"local g = function() end"))
	if err == nil || err.Error() != fmt.Sprintf("f.lua:%d: more than %d functions", maxFunctions+1, maxFunctions) {
		t.Fatalf("%d functions: %v", maxFunctions+1, err)
	}
	long := strings.Repeat("n", maxName+1)
	for _, src := range []string{"local " + long + " = 1", long + " = 1", "local t = {} t:" + long + "()"} {
		_, err := Compile("n.lua", []byte(src))
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindCompile || e.Msg != fmt.Sprintf("name of %d bytes is longer than %d", maxName+1, maxName) {
			t.Errorf("%.20s…: %v", src, err)
		}
	}
	if _, err := Compile("n.lua", []byte("local "+long[1:]+" = 1")); err != nil {
		t.Fatalf("a name of %d bytes: %v", maxName, err)
	}
}

// TestMeterOnlyWhereNeeded: comparisons and lookups go through the meter
// (__fx_cmp, __fx_get) only where an operand may be a long string; a
// literal, `#t`, arithmetic on numbers or the control variable of a numeric
// for that the loop never rebinds keep the VM's own operation.
func TestMeterOnlyWhereNeeded(t *testing.T) {
	uses := func(src, name string) bool {
		p := mustCompile(t, "m.lua", src)
		return slices.Contains(p.proto.DbgUpvalues, name)
	}
	for _, c := range []struct {
		src      string
		get, cmp bool
	}{
		{`local t, k = {}, "x" return t.x, t[1], t["x"], t[#t], t[2 * 3 + 1]`, false, false},
		{`local t, k = {}, "x" return t[k]`, true, false},
		{`local t = {} for i = 1, 3 do local x = t[i] if i < 2 then end end`, false, false},
		{`local t = {} for i = 1, 3 do local x = t[i] i = "s" end`, true, false},
		{`local t = {} for i = 1, 3 do local x = t[i] local i = "s" end`, true, false},
		{`local t = {} for i = 1, 3 do local f = function(i) end local x = t[i + 1] end`, true, false},
		{`local a, b = "x", "y" return a == b`, false, true},
		{`local a, b = "x", "y" return a == "y", a ~= nil, #a < #b, not a == b`, false, false},
		{`local a = "x" return a == "` + strings.Repeat("y", maxName+1) + `"`, false, true},
	} {
		if got := uses(c.src, nameGet); got != c.get {
			t.Errorf("%s: __fx_get used %v, want %v", c.src, got, c.get)
		}
		if got := uses(c.src, nameCmp); got != c.cmp {
			t.Errorf("%s: __fx_cmp used %v, want %v", c.src, got, c.cmp)
		}
	}
}
