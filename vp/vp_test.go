package vp

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

func mustCompile(t testing.TB, name, src string) *Program {
	t.Helper()
	p, err := Compile(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runSrc(t testing.TB, src string, globals map[string]any) (Result, error) {
	t.Helper()
	return NewPool().Run(mustCompile(t, "t.lua", src), Call{Globals: globals, Limits: DefaultLimits(), Seed: 42})
}

const seedSource = `-- the Smart Lua seed's balance example, unchanged
local balances = {
  ['HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE='] = 10,
  ['Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw='] = 10,
  ['ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM='] = 10,
}

function transfer(target, amount)
    assert(#signers == 1)
    local source = signers[1]
    assert(source ~= target)
    local source_bal = balances[source]
    assert(source_bal ~= nil)

    local target_bal = balances[target]
    assert(target_bal ~= nil)

    assert(math.type(amount) == 'integer')
    assert(source_bal >= amount)

    balances[source] = source_bal - amount
    balances[target] = target_bal + amount
end
`

func TestSeedBalanceExample(t *testing.T) {
	const a, b = "HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=", "Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw="
	signers := map[string]any{"signers": []string{a}}
	res, err := runSrc(t, seedSource+"transfer('"+b+"', 3)\ntransfer('"+b+"', 4.0)\nreturn balances['"+a+"'], balances['"+b+"']\n", signers)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Values, []any{int64(3), int64(17)}) {
		t.Fatalf("balances %v, want [3 17]", res.Values)
	}
	for _, bad := range []struct{ call, why string }{
		{"transfer('" + b + "', 1.5)", "t.lua:18: assertion failed!"},                           // not an integer
		{"transfer('" + b + "', 11)", "t.lua:19: assertion failed!"},                            // more than the balance
		{"transfer('" + a + "', 1)", "t.lua:11: assertion failed!"},                             // to oneself
		{"transfer('" + b + "', 2^53)", "t.lua:18: assertion failed!"},                          // outside ±(2^53−1)
		{"signers = {'" + a + "', '" + b + "'} transfer('x', 1)", "t.lua:9: assertion failed!"}, // two signers
	} {
		_, err := runSrc(t, seedSource+bad.call+"\n", signers)
		if err == nil || err.Error() != bad.why {
			t.Errorf("%s: got %v, want %s", bad.call, err, bad.why)
		}
	}
}

// TestExactGas pins the gas schedule: a change in metering must show here.
func TestExactGas(t *testing.T) {
	for _, c := range []struct {
		src string
		gas uint64
	}{
		// chunk: 1 + 3 statements; loop: 100 × (1 + 1 statement + 1 operator)
		{`local s = 0 for i = 1, 100 do s = s + i end return s`, 4 + 100*3},
		// chunk: 1 + 2 statements + the closure (static 1; 4 and 112 bytes:
		// 3); the loop 10 × (1 + 1 statement + a call 2); f's body 10 × (1 + 1)
		{`local function f(n) return n end for i = 1, 10 do f(i) end`, 4 + 7 + 10*4 + 10*2},
		// chunk: 1 + 2 statements + a call 2, an index 1, an operator 1;
		// rep 1 and 32 bytes built: 1; .. of 64 bytes: 2
		{`local s = string.rep("a", 32) return s .. s`, 7 + 1 + 1 + 2},
		{`return nil`, 2},
		// chunk 1 + 1 + the ^ 1; ^ with exponent n: 1 + ⌊log2 |n|⌋
		// squarings, the base and the sign of n do not count
		{`return 2^10`, 3 + 1 + 3},
		{`return 1^(2^53-1)`, 5 + (1 + 5) + (1 + 52)},
		{`return 3^-1`, 4 + 1},
		{`return 2^0.5`, 3 + 1},
		{`return 7^0`, 3 + 1},
		// a string comparison the compiler cannot bound: 1 per 64 bytes
		// compared; against a literal it can
		{`local a, b = string.rep("a", 640), string.rep("a", 640) return a == b, a == "x"`, 11 + 2*(1+20) + 10 + 0},
		// ... moved as a list: 1 per 8 values, and the stack's new high
		// (8 values of 16 bytes: 4); chunk 6, the closure 7, f's body 4
		{`local function f(...) return select("#", ...) end return f(1, 2, 3, 4, 5, 6, 7, 8)`, 6 + 7 + 4 + 1 + 4},
	} {
		res, err := runSrc(t, c.src, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.GasUsed != c.gas {
			t.Errorf("%s: gas %d, want %d", c.src, res.GasUsed, c.gas)
		}
	}
}

func TestOutOfGasIsExact(t *testing.T) {
	p := mustCompile(t, "loop.lua", "print('start')\nlocal i = 0\nwhile true do\n  i = i + 1\nend")
	lim := DefaultLimits()
	lim.Gas = 100_000
	res, err := NewPool().Run(p, Call{Limits: lim})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindGas || err.Error() != "loop.lua:3: out of gas (limit 100000)" {
		t.Fatalf("got %v", err)
	}
	if res.GasUsed != 100_000 || !reflect.DeepEqual(res.Log, []string{"start"}) {
		t.Fatalf("gas %d log %q", res.GasUsed, res.Log)
	}
}

func TestRuntimeErrorLine(t *testing.T) {
	_, err := runSrc(t, "local x = 1\n\nlocal y = x.field", nil)
	if err == nil || err.Error() != "t.lua:3: attempt to index a non-table object(number) with key 'field'" {
		t.Fatalf("got %v", err)
	}
	_, err = Compile("bad.lua", []byte("local x = \n\n)"))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindCompile || e.Line != 3 || !strings.HasPrefix(err.Error(), "bad.lua:3: syntax error") {
		t.Fatalf("got %#v", err)
	}
}

// TestSyntaxErrorOneLine: a syntax error is one line that says so once,
// names the line, and quotes the token it stopped at.
func TestSyntaxErrorOneLine(t *testing.T) {
	for src, want := range map[string]string{
		"local x = \n\n)":   `bad.lua:3: syntax error near ")"`,
		"local x = = 1\n":   `bad.lua:1: syntax error near "="`,
		"x = 1 +\n\n":       `bad.lua:1: syntax error at the end of the file`,
		"x = 1\nreturn x +": `bad.lua:2: syntax error at the end of the file`,
		"x = 'abc\n":        `bad.lua:2: syntax error: unterminated string near "abc"`,
		"x = '" + strings.Repeat("\x01", 50) + "\n": `bad.lua:2: syntax error: unterminated string near "` + strings.Repeat(`\x01`, 40) + `"...`,
	} {
		_, err := Compile("bad.lua", []byte(src))
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindCompile || err.Error() != want {
			t.Errorf("%q: got %v\nwant %s", src, err, want)
		}
	}
}

func TestPrintAndTostring(t *testing.T) {
	res, err := runSrc(t, `print("a", 1, 2.5, nil, true, {}, print, function() end, 2^53, -0.0)
		print(setmetatable({}, {__tostring = function() return "custom" end}))
		return tostring(12), string.format("%5.1f|%-3d|%x|%s|%g|%q", 3.14159, 7, 255, 1e15, 0.1, "a\"b")`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a\t1\t2.5\tnil\ttrue\ttable\tfunction: builtin\tfunction\t9007199254740992\t0", "custom"}
	if !reflect.DeepEqual(res.Log, want) {
		t.Errorf("log %q, want %q", res.Log, want)
	}
	if !reflect.DeepEqual(res.Values, []any{"12", `  3.1|7  |ff|1000000000000000|0.1|"a\"b"`}) {
		t.Errorf("values %q", res.Values)
	}
}

func TestLua53Helpers(t *testing.T) {
	res, err := runSrc(t, `local p = table.pack(1, nil, 3)
		return math.type(1), math.type(1.0), math.type(0.5), math.type(2^53), math.type("1"),
			math.tointeger(3.0), math.tointeger(3.5), math.maxinteger, math.mininteger,
			p.n, select('#', table.unpack({1, 2, 3})), select('#', unpack({}, 1, 3))`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"integer", "integer", "float", "float", nil, int64(3), nil, int64(maxInt), int64(-maxInt), int64(3), int64(3), int64(3)}
	if !reflect.DeepEqual(res.Values, want) {
		t.Fatalf("got %#v\nwant %#v", res.Values, want)
	}
}

func TestRandomIsSeeded(t *testing.T) {
	p := mustCompile(t, "r.lua", `return math.random(1000000), math.random(5, 6), math.random()`)
	pool := NewPool()
	a, _ := pool.Run(p, Call{Limits: DefaultLimits(), Seed: 1})
	b, _ := pool.Run(p, Call{Limits: DefaultLimits(), Seed: 1})
	c, _ := pool.Run(p, Call{Limits: DefaultLimits(), Seed: 2})
	if !reflect.DeepEqual(a.Values, b.Values) || reflect.DeepEqual(a.Values, c.Values) {
		t.Fatalf("seed 1: %v and %v; seed 2: %v", a.Values, b.Values, c.Values)
	}
	// SplitMix64 from seed 1: first output 0x910a2dec89025cc1.
	if a.Values[0] != int64(1+0x910a2dec89025cc1%1000000) {
		t.Fatalf("first draw %v", a.Values[0])
	}
}

func TestRunsAreIsolated(t *testing.T) {
	pool := NewPool()
	p := mustCompile(t, "g.lua", `local seen = leaked; leaked = "yes"; return seen`)
	for i := 0; i < 3; i++ {
		res, err := pool.Run(p, Call{Limits: DefaultLimits()})
		if err != nil || !reflect.DeepEqual(res.Values, []any{nil}) {
			t.Fatalf("run %d: %v %v", i, res.Values, err)
		}
	}
	// A refused run leaves the VM usable.
	bad := mustCompile(t, "bad.lua", `while true do end`)
	lim := DefaultLimits()
	lim.Gas = 1000
	if _, err := pool.Run(bad, Call{Limits: lim}); err == nil {
		t.Fatal("infinite loop not refused")
	}
	res, err := pool.Run(mustCompile(t, "ok.lua", `return 1`), Call{Limits: DefaultLimits()})
	if err != nil || res.Values[0] != int64(1) || res.GasUsed != 2 {
		t.Fatalf("after refusal: %v %v", res, err)
	}
}

func TestHostFunctions(t *testing.T) {
	calls := 0
	lib := map[string]any{
		"double": HostFunc(func(args []any) ([]any, error) {
			calls++
			n, err := Int(args[0])
			if err != nil {
				return nil, err
			}
			return []any{n * 2}, nil
		}),
		"deny": HostFunc(func(args []any) ([]any, error) {
			return nil, fmt.Errorf("read outside constraints: %w", ErrAbort)
		}),
	}
	res, err := runSrc(t, `return host.double(21), pcall(host.double, 1.5)`, map[string]any{"host": lib})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Values, []any{int64(42), false, "t.lua:1: vp: 1.5 is not an integer"}) {
		t.Fatalf("got %#v", res.Values)
	}
	_, err = runSrc(t, "local ok = pcall(host.deny)\nreturn 'swallowed'", map[string]any{"host": lib})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindAbort || !errors.Is(err, ErrAbort) || err.Error() != "t.lua:1: read outside constraints: aborted" {
		t.Fatalf("abort: %v", err)
	}
}

func TestValueModel(t *testing.T) {
	in := map[string]any{
		"n": int64(-5), "u": uint64(7), "i": 3, "f": 0.5, "s": "str", "b": []byte{0, 1}, "ok": true,
		"list": []any{int64(1), "two"}, "strs": []string{"x"}, "bytes": [][]byte{{9}}, "empty": []any{},
		"nested": map[string]any{"k": []any{map[string]any{"z": false}}},
	}
	res, err := runSrc(t, `return v`, map[string]any{"v": in})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"n": int64(-5), "u": int64(7), "i": int64(3), "f": 0.5, "s": "str", "b": "\x00\x01", "ok": true,
		"list": []any{int64(1), "two"}, "strs": []any{"x"}, "bytes": []any{"\x09"}, "empty": []any{},
		"nested": map[string]any{"k": []any{map[string]any{"z": false}}},
	}
	if !reflect.DeepEqual(res.Values, []any{want}) {
		t.Fatalf("got %#v", res.Values[0])
	}
	for _, c := range []struct {
		src  string
		glob any
		why  string
	}{
		{`return 1`, int64(1 << 53), "global g: vp: integer 9007199254740992 outside ±(2^53−1)"},
		{`return 1`, uint64(1 << 60), "global g: vp: integer 1152921504606846976 outside ±(2^53−1)"},
		{`return 1`, struct{}{}, "global g: cannot pass a struct {} to Lua"},
		{`return print`, nil, "return value 1: a function value cannot leave Lua"},
		{`return {1, 2, x = 3}`, nil, "return value 1: table is neither a sequence 1..n nor keyed by strings"},
		{`return {[1] = 1, [3] = 3}`, nil, "return value 1: table is neither a sequence 1..n nor keyed by strings"},
		{`local t = {} t.self = t return t`, nil, "return value 1: self: self: "},
	} {
		_, err := runSrc(t, c.src, map[string]any{"g": c.glob})
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s with %v: got %v, want %q", c.src, c.glob, err, c.why)
		}
	}
	for _, c := range []struct {
		v    any
		want int64
		why  string
	}{
		{int64(maxInt), maxInt, ""}, {-float64(maxInt), -maxInt, ""}, {1.5, 0, "vp: 1.5 is not an integer"},
		{float64(1 << 53), 0, "outside ±(2^53−1)"}, {"1", 0, "vp: expected an integer, got string"},
	} {
		got, err := Int(c.v)
		if (c.why == "" && (err != nil || got != c.want)) || (c.why != "" && (err == nil || !strings.Contains(err.Error(), c.why))) {
			t.Errorf("Int(%v) = %d, %v", c.v, got, err)
		}
	}
}

func testNote() notes.Note {
	n := notes.Note{Provenance: [][]byte{{0xab, 0xcd}}, Key: []byte("balance/alice"), Value: []byte{0, 0xff}}
	n.Application[0], n.Owner[31] = 1, 2
	return n
}

func TestNoteValues(t *testing.T) {
	n := testNote()
	res, err := runSrc(t, `local n = note
		return n.provenance[1], n.application, n.key, #n.value, {note, inputs[1]}`, map[string]any{"note": n, "inputs": []notes.Note{n}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Values[0] != "abcd" || res.Values[1] != "01"+strings.Repeat("0", 62) || res.Values[2] != "balance/alice" || res.Values[3] != int64(2) {
		t.Fatalf("got %v", res.Values[:4])
	}
	for _, v := range res.Values[4].([]any) {
		back, err := NoteFromValue(v)
		if err != nil || !reflect.DeepEqual(back, n) {
			t.Fatalf("round trip: %v %v", back, err)
		}
	}
	good := NoteToValue(n)
	for _, c := range []struct {
		edit func(m map[string]any)
		why  string
	}{
		{func(m map[string]any) { m["extra"] = "x" }, `unknown field "extra"`},
		{func(m map[string]any) { delete(m, "key") }, "key: want a string, got nil"},
		{func(m map[string]any) { m["owner"] = strings.Repeat("AB", 32) }, "owner: want 64 lower-case hex digits"},
		{func(m map[string]any) { m["owner"] = "00" }, "owner: want 64 lower-case hex digits"},
		{func(m map[string]any) { m["value"] = int64(1) }, "value: want a string, got int64"},
		{func(m map[string]any) { m["provenance"] = []any{"zz"} }, "provenance[1]: want lower-case hex"},
		{func(m map[string]any) { m["provenance"] = "ab" }, "provenance: want a list"},
		{func(m map[string]any) { m["key"] = strings.Repeat("k", notes.MaxKey+1) }, "vp: note: notes:"},
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		c.edit(m)
		if _, err := NoteFromValue(m); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("got %v, want %q", err, c.why)
		}
	}
}

func TestCrypto(t *testing.T) {
	res, err := runSrc(t, `local d = crypto.digest('sha256', 'abc')
		return crypto.base64e(d), crypto.base64e(crypto.hmac('sha256', 'key', 'msg')), crypto.base64d('aGk='),
			crypto.verify('HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=', 'm', string.rep('x', 64)),
			pcall(crypto.digest, 'md5', 'x')`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", "LZPLwb4We8sWN6SiPL/wGnh48MUO6DOVTqUiG7G4xig=", "hi", false, false}
	if !reflect.DeepEqual(res.Values[:5], want) {
		t.Fatalf("got %#v", res.Values)
	}
	priv, err := keys.ParsePrivateKey("2KgXomoYNRdlBq+CPZcw+mze5UDUp/iCVDBuDIRLym0=")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := priv.Sign(rand.Reader, []byte("transfer 3"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = runSrc(t, `return crypto.verify(pub, 'transfer 3', sig), crypto.verify(pub, 'transfer 4', sig), crypto.verify('bad', 'x', sig)`,
		map[string]any{"pub": priv.Public().String(), "sig": sig})
	if err != nil || !reflect.DeepEqual(res.Values, []any{true, false, false}) {
		t.Fatalf("verify: %v %v", res.Values, err)
	}
}

func TestConcurrentRunsAgree(t *testing.T) {
	p := mustCompile(t, "c.lua", `local t = {} for i = 1, 200 do t[#t + 1] = math.random(100) end return table.concat(t, ",")`)
	pool := NewPool()
	want, err := pool.Run(p, Call{Limits: DefaultLimits(), Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := pool.Run(p, Call{Limits: DefaultLimits(), Seed: 9})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("concurrent run differs: %v %v", got, err)
			}
		}()
	}
	wg.Wait()
}

// determinismSource exercises what could differ between processes: table
// iteration, random numbers, number formatting, gas and the log.
const determinismSource = `
local t = {}
for i = 1, 50 do t["k" .. math.random(1000)] = i / 7 end
local keys = {}
for k, v in pairs(t) do keys[#keys + 1] = k .. "=" .. tostring(v) end
for k in pairs(string) do print(k) end
print(string.format("%.3f %g %e", 1/3, 2^60, 123.456))
return table.concat(keys, ";")
`

type outcome struct {
	Values []any
	Gas    uint64
	Log    []string
	Err    string
}

func runDeterminism() outcome {
	p, err := Compile("det.lua", []byte(determinismSource))
	if err != nil {
		return outcome{Err: err.Error()}
	}
	res, err := NewPool().Run(p, Call{Limits: DefaultLimits(), Seed: 12345})
	o := outcome{Values: res.Values, Gas: res.GasUsed, Log: res.Log}
	if err != nil {
		o.Err = err.Error()
	}
	return o
}

// TestDeterminismAcrossProcesses runs the same fragment in two child
// processes and here, and requires identical values, gas and log.
func TestDeterminismAcrossProcesses(t *testing.T) {
	if os.Getenv("VP_DETERMINISM_CHILD") == "1" {
		json.NewEncoder(os.Stdout).Encode(runDeterminism())
		os.Exit(0)
	}
	here, _ := json.Marshal(runDeterminism())
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeterminismAcrossProcesses$")
		cmd.Env = append(os.Environ(), "VP_DETERMINISM_CHILD=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		if got := strings.TrimSpace(string(out)); got != string(here) {
			t.Fatalf("child %d differs:\n%s\nwant\n%s", i, got, here)
		}
	}
	if !strings.Contains(string(here), `"Gas":`) || strings.Contains(string(here), `"Err":"det`) {
		t.Fatalf("unexpected outcome %s", here)
	}
}

// FuzzCompileRun feeds arbitrary sources to Compile and Run: nothing may
// panic, and every run ends within its gas.
func FuzzCompileRun(f *testing.F) {
	for _, s := range []string{seedSource, determinismSource, "while true do end", "return ('x'):rep(10)",
		"local t = setmetatable({}, {__newindex = function(t, k, v) t[k] = v end}) t.x = 1",
		"a, b.c, d[1] = 1, 2", "::l:: goto l", "return #{...}", "function a.b:c() return self end"} {
		f.Add(s)
	}
	pool := NewPool()
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile("fuzz.lua", []byte(src))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("compile error %T", err)
			}
			return
		}
		lim := DefaultLimits()
		lim.Gas = 20_000
		res, err := pool.Run(p, Call{Limits: lim})
		if res.GasUsed > lim.Gas {
			t.Fatalf("gas %d beyond limit", res.GasUsed)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("run error %T", err)
			}
		}
	})
}

// TestConcatManyOperands: one `..` chain of more operands than cat keeps on
// its stack (decision 183), numbers among them, gives the text and gas of
// the chain before that change.
func TestConcatManyOperands(t *testing.T) {
	res, err := runSrc(t, `local a, b = "ab", 1.5 return a .. b .. a .. 2 .. a .. b .. a .. 3 .. a .. b .. a .. 4, a .. b .. a`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"ab1.5ab2ab1.5ab3ab1.5ab4", "ab1.5ab"}
	if !reflect.DeepEqual(res.Values, want) || res.GasUsed != 34 {
		t.Fatalf("got %q, gas %d; want %q, gas %d", res.Values, res.GasUsed, want, 34)
	}
}
