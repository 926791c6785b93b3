package vp

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fractalvm/fractal/keys"
)

// calFragment is one program of the gas calibration.
type calFragment struct {
	name    string
	src     string
	globals map[string]any
	limits  Limits
}

// calibrationLimits let a fragment run long enough that the run's fixed
// cost disappears in the time its gas pays for.
func calibrationLimits() Limits {
	l := DefaultLimits()
	l.Gas = 2_000_000
	l.MaxMemory = 64 << 20
	return l
}

// calMinGas is the least gas a fragment must use for its figure to count
// in the worst/median ratio: below it, the time is the run's fixed cost
// (a VM from the pool, globals, the result), which the transaction's own
// charges pay, not the fragment's gas.
const calMinGas = 20_000

// vararg wraps body in a vararg function called with n values, so that
// `...` holds n values inside body.
func vararg(n int, body string) string {
	return fmt.Sprintf(`local t = {} for i = 1, %d do t[i] = i end
local function g(...) %s end
return g(unpack(t))`, n, body)
}

// repeatJoin is n copies of s joined by sep.
func repeatJoin(s, sep string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = s
	}
	return strings.Join(parts, sep)
}

// nested is f(f(...f(x)...)), n deep.
func nested(f, x string, n int) string {
	return strings.Repeat(f+"(", n) + x + strings.Repeat(")", n)
}

// calibrationFragments are the generated programs of the calibration:
// ordinary loops, and for every operation whose work grows with an
// argument, a loop that makes that argument as large as the limits allow.
func calibrationFragments(tb testing.TB) []calFragment {
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	msg := strings.Repeat("m", 1000)
	sig, err := key.Sign(rand.Reader, []byte(msg))
	if err != nil {
		tb.Fatal(err)
	}
	pub := key.Public().String()
	const long = `local a = string.rep("a", 1048575) .. "b" local b = string.rep("a", 1048575) .. "c" local c = string.rep("a", 1048575) .. "b"
`
	fr := []calFragment{
		// Ordinary loops.
		{name: "loop_while", src: `local s = 0 while true do s = s + 1 end`},
		{name: "loop_for", src: `local s = 0 for i = 1, 1e15 do s = s + i % 7 end`},
		{name: "loop_repeat", src: `local i = 0 repeat i = i + 1 until false`},
		{name: "loop_goto", src: "::top:: goto top"},
		{name: "loop_if", src: `local i, n = 0, 0 while true do i = i + 1 if i % 2 == 0 then n = n + 1 elseif i % 3 == 0 then n = n - 1 else n = n * 1 end end`},
		{name: "loop_locals", src: `while true do local a, b, c, d = 1, 2, 3, 4 local e = a * b + c * d end`},
		{name: "expr_long", src: `local a, s = 1.5, 0 while true do s = ` + repeatJoin("a", " + ", 150) + ` end`},
		{name: "expr_compare", src: `local a, b, s = 1, 2, 0 while true do s = (a < b) and (b > a) and (a <= b) and (a ~= b) and (a == a) end`},
		{name: "expr_index_chain", src: `local t = {a = {b = {c = {d = {e = 1}}}}} local s = 0 while true do s = t.a.b.c.d.e + t.a.b.c.d.e + t.a.b.c.d.e end`},
		{name: "call_builtin_nested", src: `while true do local x = ` + nested("math.abs", "1", 150) + ` end`},
		{name: "call_builtin_many", src: `while true do local x = {` + repeatJoin("type(1)", ", ", 150) + `} end`},
		{name: "call_lua", src: `local function f(x) return x end while true do f(1) f(2) f(3) end`},
		{name: "call_lua_nested", src: `local function f(x) return x end while true do local x = ` + nested("f", "1", 150) + ` end`},
		{name: "call_recursive", src: `local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end while true do f(150) end`},
		{name: "call_tail", src: `local function f(n) if n == 0 then return 0 end return f(n - 1) end while true do f(1000) end`},
		{name: "closure_make", src: `while true do local f = function() return 1 end end`},
		{name: "closure_upvalues", src: `local a, b, c, d, e, f, g, h = 1, 2, 3, 4, 5, 6, 7, 8 while true do local fn = function() return a, b, c, d, e, f, g, h end end`},
		{name: "pcall_loop", src: `local function f() end while true do pcall(f) end`},
		{name: "pcall_error", src: `while true do pcall(error, "x") end`},
		{name: "pcall_error_table", src: `local e = {} while true do pcall(error, e) end`},
		{name: "xpcall_loop", src: `local function f() error("x") end local function h(e) return e end while true do xpcall(f, h) end`},
		{name: "table_new", src: `while true do local t = {} end`},
		{name: "table_ctor", src: `while true do local t = {1, 2, 3, 4, 5, 6, 7, 8, x = 1, y = 2} end`},
		{name: "table_set_int", src: `local t = {} while true do for i = 1, 1000 do t[i] = i end end`},
		{name: "table_set_str", src: `local t, k = {}, {} for i = 1, 1000 do k[i] = "key" .. i end while true do for i = 1, 1000 do t[k[i]] = i end end`},
		{name: "table_get_int", src: `local t = {} for i = 1, 1000 do t[i] = i end local s = 0 while true do for i = 1, 1000 do s = s + t[i] end end`},
		{name: "table_get_str", src: `local t, k = {}, {} for i = 1, 1000 do k[i] = "key" .. i t[k[i]] = i end local s = 0 while true do for i = 1, 1000 do s = s + t[k[i]] end end`},
		{name: "table_len", src: `local t = {} for i = 1, 1000 do t[i] = i end local s = 0 while true do s = s + #t end`},
		{name: "table_len_holes", src: `local t = {} t[65536] = 1 t[65536] = nil local s = 0 while true do t[65536] = 1 t[65536] = nil s = s + #t end`},
		{name: "table_insert_end", src: `local t = {} while true do for i = 1, 1000 do table.insert(t, i) end for i = 1, 1000 do table.remove(t) end end`},
		{name: "table_insert_front", src: `local t = {} for i = 1, 65535 do t[i] = i end while true do table.insert(t, 1, 0) table.remove(t, 1) end`},
		{name: "table_concat", src: `local t = {} for i = 1, 65536 do t[i] = "x" end while true do local s = table.concat(t) end`},
		{name: "table_concat_numbers", src: `local t = {} for i = 1, 65536 do t[i] = i + 0.5 end while true do local s = table.concat(t, ",") end`},
		{name: "table_concat_sep", src: `local t = {} for i = 1, 65536 do t[i] = "" end local sep = string.rep(",", 15) while true do local s = table.concat(t, sep) end`},
		{name: "table_sort_numbers", src: `local t = {} while true do for i = 1, 4096 do t[i] = (i * 7919) % 4096 end table.sort(t) end`},
		{name: "table_sort_cmp", src: `local t = {} while true do for i = 1, 1024 do t[i] = (i * 7919) % 1024 end table.sort(t, function(a, b) return a > b end) end`},
		{name: "table_sort_long_strings", src: `local p = string.rep("a", 16384) local t = {} for i = 1, 64 do t[i] = p .. string.char(64 + i % 7, 64 + i) end while true do table.sort(t) end`},
		{name: "table_pack", src: vararg(65536, `while true do local p = table.pack(...) end`)},
		{name: "table_unpack", src: `local t = {} for i = 1, 65536 do t[i] = i end while true do local a = unpack(t) end`},
		{name: "table_unpack_range", src: `local t = {} while true do local a = unpack(t, 1, 65536) end`},
		{name: "next_loop", src: `local t = {} for i = 1, 1000 do t["k" .. i] = i end while true do for k, v in pairs(t) do end end`},
		{name: "ipairs_loop", src: `local t = {} for i = 1, 1000 do t[i] = i end while true do for i, v in ipairs(t) do end end`},
		{name: "next_long_keys", src: long + `local t = {[a] = 1, [b] = 2, [c] = 3} while true do for k, v in pairs(t) do end end`},
		{name: "next_removed_keys", src: `local t = {} for i = 1, 65536 do t["k" .. i] = i end for i = 1, 65535 do t["k" .. i] = nil end while true do local k = next(t) end`},
		{name: "next_array_holes", src: `local t = {} t[65536] = 1 while true do local k = next(t) end`},
		{name: "long_literal_key", src: `local t = {} local x while true do x = t["` + strings.Repeat("k", 4096) + `"] end`},
		{name: "index_chain", src: `local t = {x = 1} for i = 1, 15 do t = setmetatable({}, {__index = t}) end local s = 0 while true do s = s + t.x end`},
		{name: "newindex_chain", src: `local t = {} for i = 1, 14 do t = setmetatable({}, {__newindex = t}) end while true do t.x = 1 end`},
		{name: "meta_lt", src: `local mt = {__lt = function(a, b) return true end} local a, b = setmetatable({}, mt), setmetatable({}, mt) while true do local x = a < b end`},
		{name: "meta_eq", src: `local mt = {__eq = function(a, b) return true end} local a, b = setmetatable({}, mt), setmetatable({}, mt) while true do local x = a == b end`},
		{name: "meta_index_fn", src: `local t = setmetatable({}, {__index = function(t, k) return k end}) while true do local x = t.x end`},
		{name: "meta_call", src: `local t = setmetatable({}, {__call = function() return 1 end}) while true do t() end`},
		{name: "meta_tostring", src: `local t = setmetatable({}, {__tostring = function() return "t" end}) while true do local s = tostring(t) end`},
		{name: "setmetatable_loop", src: `local t, mt = {}, {} while true do setmetatable(t, mt) setmetatable(t, nil) local m = getmetatable(t) end`},

		// Varargs and calls with many values.
		{name: "vararg_select_65536", src: vararg(65536, `local n = 0 while true do n = n + select('#', ...) end`)},
		{name: "vararg_select_256", src: vararg(256, `local n = 0 while true do n = n + select('#', ...) end`)},
		{name: "vararg_select_8", src: vararg(8, `local n = 0 while true do n = n + select('#', ...) end`)},
		{name: "vararg_select_index", src: vararg(65536, `while true do local a = select(2, ...) end`)},
		{name: "vararg_pass", src: vararg(65536, `local function f(...) return ... end while true do f(...) end`)},
		{name: "vararg_pass_nontail", src: vararg(65536, `local function f(...) return 1, ... end while true do local a = f(...) end`)},
		{name: "vararg_table", src: vararg(4096, `while true do local x = {...} end`)},
		{name: "vararg_fixed", src: vararg(65536, `while true do local a, b, c = ... end`)},
		{name: "vararg_assert", src: vararg(65536, `while true do assert(...) end`)},
		{name: "vararg_max", src: vararg(65536, `while true do local m = math.max(...) end`)},
		{name: "vararg_min", src: vararg(65536, `while true do local m = math.min(...) end`)},
		{name: "vararg_char", src: `local t = {} for i = 1, 65536 do t[i] = 65 end local function g(...) while true do local s = string.char(...) end end g(unpack(t))`},
		{name: "vararg_print", src: vararg(64, `while true do print(...) end`)},
		{name: "vararg_tostring", src: vararg(65536, `while true do local s = tostring(...) end`)},
		{name: "vararg_type", src: vararg(65536, `while true do local s = type(...) end`)},
		{name: "vararg_pcall", src: vararg(65536, `local function f() end while true do pcall(f, ...) end`)},
		{name: "vararg_nested_ids", src: vararg(65536, `local function id(...) return ... end while true do local a = id(id(id(id(...)))) end`)},
		{name: "results_pcall", src: `local t = {} for i = 1, 65536 do t[i] = i end while true do pcall(unpack, t) end`},
		{name: "results_pcall_nested", src: `local t = {} for i = 1, 65536 do t[i] = i end while true do pcall(pcall, pcall, pcall, pcall, pcall, pcall, pcall, unpack, t) end`},
		{name: "results_return_chain", src: `local t = {} for i = 1, 65536 do t[i] = i end
local function f0() return 1, unpack(t) end
local function f1() return 1, f0() end
local function f2() return 1, f1() end
local function f3() return 1, f2() end
while true do local a = f3() end`},
		{name: "results_byte", src: `local s = string.rep("a", 65536) while true do local a = s:byte(1, -1) end`},
		{name: "results_gmatch", src: `local s = string.rep("a", 32) local p = string.rep("(a)", 32) while true do for a in s:gmatch(p) do end end`},

		// Long strings.
		{name: "str_eq", src: long + `local x while true do x = (a == c) end`},
		{name: "str_eq_differ_at_end", src: long + `local x while true do x = (a == b) end`},
		{name: "str_lt", src: long + `local x while true do x = (a < b) end`},
		{name: "str_le", src: long + `local x while true do x = (a <= c) end`},
		{name: "str_key_get", src: long + `local t = {[a] = 1} local x while true do x = t[c] end`},
		{name: "str_key_get_miss", src: long + `local t = {x = 1} local x while true do x = t[b] end`},
		{name: "str_key_set", src: long + `local t = {} while true do t[c] = 1 end`},
		{name: "str_key_ctor", src: long + `while true do local t = {[a] = 1} end`},
		{name: "str_method", src: long + `local x while true do x = a:len() end`},
		{name: "str_tonumber", src: `local s = string.rep("1", 1048576) local x while true do x = tonumber(s) end`},
		{name: "str_tonumber_hex", src: `local s = "0x" .. string.rep("f", 1048574) local x while true do x = tonumber(s) end`},
		{name: "str_tonumber_base", src: `local s = string.rep("z", 1048576) local x while true do x = tonumber(s, 36) end`},
		{name: "str_arith_coerce", src: `local s = string.rep(" ", 1048574) .. "1" local x while true do x = s + 1 end`},
		{name: "str_tostring", src: long + `local x while true do x = tostring(a) end`},
		{name: "str_len", src: long + `local x while true do x = #a + string.len(a) end`},
		{name: "str_sub", src: long + `local x while true do x = a:sub(2, -2) end`},
		{name: "str_sub_short", src: long + `local x while true do x = a:sub(5, 9) end`},
		{name: "str_upper", src: `local a = string.rep("a", 65536) local x while true do x = a:upper() end`},
		{name: "str_lower", src: `local a = string.rep("A", 65536) local x while true do x = a:lower() end`},
		{name: "str_reverse", src: `local a = string.rep("ab", 32768) local x while true do x = a:reverse() end`},
		{name: "str_rep", src: `local x while true do x = string.rep("ab", 32768) end`},
		{name: "str_rep_sep", src: `local x while true do x = string.rep("", 65536, "") end`},
		{name: "str_byte_one", src: long + `local x while true do x = a:byte(-1) end`},
		{name: "str_char", src: `local x while true do x = string.char(` + repeatJoin("65", ", ", 150) + `) end`},
		{name: "str_format_s", src: `local a = string.rep("a", 65536) local x while true do x = string.format("%s", a) end`},
		{name: "str_format_q", src: `local a = string.rep("\0", 65536) local x while true do x = string.format("%q", a) end`},
		{name: "str_format_many", src: `local f = string.rep("%d", 150) local x while true do x = string.format(f, ` + repeatJoin("1", ", ", 150) + `) end`},
		{name: "str_format_float", src: `local f = string.rep("%.99f", 100) local x while true do x = string.format(f, ` + repeatJoin("1e300", ", ", 100) + `) end`},
		{name: "str_format_g", src: `local f = string.rep("%g", 150) local x while true do x = string.format(f, ` + repeatJoin("0.1", ", ", 150) + `) end`},
		{name: "str_find_plain", src: long + `local x while true do x = a:find("ab", 1, true) end`},
		{name: "str_find_pattern", src: `local a = string.rep("a", 65536) local x while true do x = a:find("b") end`},
		{name: "str_match", src: `local a = string.rep("a", 65536) local x while true do x = a:match("(a*)") end`},
		{name: "str_gsub", src: `local a = string.rep("a", 65536) local x while true do x = a:gsub("a", "b") end`},
		{name: "str_gsub_fn", src: `local a = string.rep("a", 4096) local x while true do x = a:gsub("a", function(c) return c end) end`},
		{name: "str_gmatch", src: `local a = string.rep("a ", 32768) while true do for w in a:gmatch("%a+") do end end`},
		{name: "str_error_long", src: long + `while true do pcall(error, a) end`},
		{name: "str_error_long_level", src: long + `while true do pcall(error, a, 2) end`},
		{name: "str_assert_long", src: long + `while true do pcall(assert, false, a) end`},

		// Concatenation.
		{name: "cat_chain", src: `local a = "x" local x while true do x = ` + repeatJoin("a", " .. ", 150) + ` end`},
		{name: "cat_numbers", src: `local n = 1.5 local x while true do x = ` + repeatJoin("n", " .. ", 150) + ` end`},
		{name: "cat_ints", src: `local n = 123456789 local x while true do x = ` + repeatJoin("n", " .. ", 150) + ` end`},
		{name: "cat_empty", src: `local e = "" local x while true do x = ` + repeatJoin("e", " .. ", 150) + ` end`},
		{name: "cat_long", src: `local a = string.rep("a", 65536) local x while true do x = a .. a end`},
		{name: "tostring_numbers", src: `local i = 0 local x while true do i = i + 1 x = tostring(i + 0.5) end`},
		{name: "tonumber_short", src: `local x while true do x = tonumber("12345.5") end`},

		// Math and randomness.
		{name: "math_calls", src: `local x = 0 while true do x = math.floor(x + 1.5) + math.ceil(0.5) + math.abs(-1) + math.sqrt(4) + math.fmod(7, 3) end`},
		{name: "math_random", src: `local x while true do x = math.random(1, 1000000) + math.random() end`},
		{name: "pow_loop", src: `local x while true do x = 1.0000001 ^ 9007199254740991 end`},
		{name: "math_tointeger", src: `local x while true do x = math.tointeger(3) or math.type(3.5) end`},
		{name: "math_coerce", src: `local s = string.rep(" ", 65535) .. "1" local x while true do x = math.floor(s) + math.max(s, s) end`},

		// Crypto.
		{name: "crypto_digest", src: long + `local x while true do x = crypto.digest("sha256", a) end`},
		{name: "crypto_digest_short", src: `local x while true do x = crypto.digest("sha256", "abc") end`},
		{name: "crypto_hmac", src: long + `local x while true do x = crypto.hmac("sha256", a, a) end`},
		{name: "crypto_hmac_short", src: `local x while true do x = crypto.hmac("sha256", "k", "abc") end`},
		{name: "crypto_b64e", src: `local a = string.rep("a", 65536) local x while true do x = crypto.base64e(a) end`},
		{name: "crypto_b64d", src: `local a = crypto.base64e(string.rep("a", 65536)) local x while true do x = crypto.base64d(a) end`},
		{name: "crypto_verify", src: `local x while true do x = crypto.verify(pub, msg, sig) end`,
			globals: map[string]any{"pub": pub, "msg": msg, "sig": string(sig)}},
		{name: "crypto_verify_bad", src: `local x while true do x = crypto.verify(pub, msg, "x") end`,
			globals: map[string]any{"pub": pub, "msg": msg}},
		{name: "crypto_verify_long", src: long + `local x while true do x = crypto.verify(pub, a, sig) end`,
			globals: map[string]any{"pub": pub, "sig": string(sig)}},

		// Host functions and values that cross to Go.
		{name: "host_args_table", src: `local t = {} for i = 1, 65536 do t[i] = i end while true do f(t) end`,
			globals: map[string]any{"f": HostFunc(func([]any) ([]any, error) { return nil, nil })}},
		{name: "host_args_strings", src: `local t = {} for i = 1, 4096 do t["k" .. i] = "v" end while true do f(t) end`,
			globals: map[string]any{"f": HostFunc(func([]any) ([]any, error) { return nil, nil })}},
		{name: "host_args_removed", src: `local t = {} for i = 1, 65536 do t["k" .. i] = i end for i = 1, 65535 do t["k" .. i] = nil end while true do f(t) end`,
			globals: map[string]any{"f": HostFunc(func([]any) ([]any, error) { return nil, nil })}},
		{name: "host_results", src: `while true do local r = f() end`,
			globals: map[string]any{"f": HostFunc(func([]any) ([]any, error) { return []any{make([]any, 4096)}, nil })}},
	}
	for i := range fr {
		if fr[i].limits == (Limits{}) {
			fr[i].limits = calibrationLimits()
		}
	}
	return fr
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostileFragments is the hostile corpus as calibration fragments, run
// under the corpus's own limits.
func hostileFragments(tb testing.TB) []calFragment {
	files, err := filepath.Glob("testdata/hostile/*.lua")
	if err != nil {
		tb.Fatal(err)
	}
	var fr []calFragment
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		fr = append(fr, calFragment{name: "hostile/" + filepath.Base(f), src: string(src), limits: hostileLimits()})
	}
	return fr
}

// BenchmarkGasCalibration runs the hostile corpus and the generated
// fragments and reports, for each, the nanoseconds one gas unit buys
// (ns/gas: the process's CPU time for a run, less an empty run's, over the
// gas used), then, over the fragments that used at least calMinGas, each
// taken at the median of its samples, the worst and the median and their
// ratio, which must stay at most 10:
//
//	go test ./vp -run '^$' -bench GasCalibration -benchtime 3x -count 3
//
// (make calibrate). CPU time rather than the wall clock, so that other
// processes on a shared machine do not count; it includes the garbage
// collector's work on other threads. Each figure is measured on this
// machine in this run; repeat with -count for the noise.
func BenchmarkGasCalibration(b *testing.B) {
	frags := append(hostileFragments(b), calibrationFragments(b)...)
	pool := NewPool()
	run := func(b *testing.B, p *Program, f calFragment) (time.Duration, uint64) {
		var gas uint64
		start := cpuTime(b)
		for b.Loop() {
			res, _ := pool.Run(p, Call{Globals: f.globals, Limits: f.limits, Seed: 7})
			gas += res.GasUsed
		}
		return (cpuTime(b) - start) / time.Duration(b.N), gas / uint64(b.N)
	}
	var empty time.Duration
	b.Run("empty", func(b *testing.B) {
		empty, _ = run(b, mustCompile(b, "empty.lua", "return"), calFragment{limits: calibrationLimits()})
	})
	// Each fragment's figure is the median of its samples (one per -count).
	samples := map[string][]float64{}
	gasOf := map[string]uint64{}
	var names []string
	for _, f := range frags {
		p, err := Compile(f.name, []byte(f.src))
		if err != nil {
			continue // refused before it runs: no gas, no time
		}
		names = append(names, f.name)
		b.Run(f.name, func(b *testing.B) {
			per, gas := run(b, p, f)
			if gas == 0 {
				return
			}
			ns := float64(max(per-empty, 0)) / float64(gas)
			b.ReportMetric(ns, "ns/gas")
			b.ReportMetric(float64(gas), "gas/op")
			samples[f.name] = append(samples[f.name], ns)
			gasOf[f.name] = gas
		})
	}
	b.Run("ratio", func(b *testing.B) {
		type figure struct {
			name  string
			nsGas float64
		}
		var counted []figure
		for _, name := range names {
			if s := samples[name]; len(s) > 0 && gasOf[name] >= calMinGas {
				counted = append(counted, figure{name, median(s)})
			}
		}
		if len(counted) == 0 {
			b.Skip("no fragment used enough gas")
		}
		sort.Slice(counted, func(i, j int) bool { return counted[i].nsGas < counted[j].nsGas })
		worst, mid := counted[len(counted)-1], counted[len(counted)/2]
		for b.Loop() {
		}
		b.ReportMetric(worst.nsGas, "worst-ns/gas")
		b.ReportMetric(mid.nsGas, "median-ns/gas")
		b.ReportMetric(worst.nsGas/mid.nsGas, "worst/median")
		top := counted[max(0, len(counted)-5):]
		slices.Reverse(top)
		for _, f := range top {
			b.Logf("%-40s %8.1f ns/gas", f.name, f.nsGas)
		}
		b.Logf("median %s %.1f ns/gas, worst/median %.1f over %d fragments", mid.name, mid.nsGas, worst.nsGas/mid.nsGas, len(counted))
		if worst.nsGas > 10*mid.nsGas {
			b.Errorf("worst %s costs %.1f ns/gas, more than 10× the median %.1f", worst.name, worst.nsGas, mid.nsGas)
		}
	})
}

// median is the middle of xs (the upper one of an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
