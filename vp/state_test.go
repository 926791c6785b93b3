package vp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

const (
	pub1 = "HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE="
	pub2 = "Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw="
	pub3 = "ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM="
)

func signers(keys ...string) Call {
	s := make([]any, len(keys))
	for i, k := range keys {
		s[i] = k
	}
	return Call{Globals: map[string]any{"signers": s}, Limits: DefaultLimits()}
}

func balancesState(t testing.TB) []byte {
	t.Helper()
	src, err := os.ReadFile("../examples/smartlua/balances.lua")
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := NewPool().RunState(src, nil, signers())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// step runs src on st and fails the test on error.
func runStep(t *testing.T, p *Pool, st []byte, src string, call Call) (Result, []byte) {
	t.Helper()
	res, out, err := p.RunState([]byte(src), st, call)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return res, out
}

func TestBalanceTransfer(t *testing.T) {
	p := NewPool()
	st := balancesState(t)
	_, st2 := runStep(t, p, st, "transfer('"+pub2+"', 3)", signers(pub1))
	if bytes.Equal(st, st2) {
		t.Fatal("transfer left the state unchanged")
	}
	for _, tc := range []struct {
		name, src string
		call      Call
		want      string
	}{
		{"two signers", "transfer('" + pub3 + "', 1)", signers(pub1, pub2), "assertion failed"},
		{"no signer", "transfer('" + pub3 + "', 1)", signers(), "assertion failed"},
		{"overdraft", "transfer('" + pub3 + "', 8)", signers(pub1), "assertion failed"},
		{"non-integer", "transfer('" + pub3 + "', 1.5)", signers(pub1), "assertion failed"},
		{"unknown target", "transfer('nobody', 1)", signers(pub1), "assertion failed"},
		{"to oneself", "transfer('" + pub1 + "', 1)", signers(pub1), "assertion failed"},
		{"assign global", "transfer = nil", signers(pub1), "globals are read-only"},
		{"assign new global", "x = 1", signers(pub1), "globals are read-only"},
		{"via _G", "_G.transfer = print", signers(pub1), "globals are read-only"},
		{"via _G index", "_G['y'] = 1", signers(pub1), "globals are read-only"},
		{"rawset on _G", "rawset(_G, 'x', 1)", signers(pub1), ":1: rawset is not allowed in the sandbox"},
		{"raw bytes in a name", "_G['a\\n\\0' .. string.rep('b', 60)] = 1", signers(pub1),
			`globals are read-only after the initial state (assigning "a\n\x00` + strings.Repeat("b", 37) + `"...)`},
	} {
		_, out, err := p.RunState([]byte(tc.src), st2, tc.call)
		if err == nil || !strings.Contains(err.Error(), tc.want) || out != nil {
			t.Errorf("%s: err %v, out %d bytes; want %q and no state", tc.name, err, len(out), tc.want)
		}
	}
}

func showText(t *testing.T, st []byte) string {
	t.Helper()
	v, err := ShowState(st)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	v.WriteText(&b)
	return b.String()
}

func TestShowBalances(t *testing.T) {
	p := NewPool()
	_, st := runStep(t, p, balancesState(t), "transfer('"+pub2+"', 3)", signers(pub1))
	got := showText(t, st)
	want := `_G = {
  ["transfer"] = function#1
}
function#1: function at line 10 of chunk 95d0cb58f7c96c7d6040d024261dc7fbea33efb055499e5c46801b3f6df3d762
  upvalue balances = table#3
table#3 = {
  ["ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM="] = 10
  ["HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE="] = 7
  ["Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw="] = 13
}
chunk 95d0cb58f7c96c7d6040d024261dc7fbea33efb055499e5c46801b3f6df3d762: 764 bytes
`
	if got != want {
		t.Fatalf("show:\n%s\nwant:\n%s", got, want)
	}
}

// Two programs that build the same state in different insertion orders
// give the same bytes, and pairs on the deserialized table visits the
// array part, then the other keys in canonical order.
func TestInsertionOrderIndependent(t *testing.T) {
	p := NewPool()
	progs := []string{
		`local t = {}; t.b = 1; t[2] = 'x'; t[true] = 0; t.a = 2; t[1] = 'y'; t[-1.5] = 3; t[3] = 'z'
		 function order() local s = '' for k in pairs(t) do s = s .. tostring(k) .. ' ' end return s end`,
		`local t = {}; t[3] = 'z'; t[-1.5] = 3; t.a = 2; t[1] = 'y'; t[true] = 0; t[2] = 'x'; t.b = 1
		 function order() local s = '' for k in pairs(t) do s = s .. tostring(k) .. ' ' end return s end`,
	}
	var states [][]byte
	for _, src := range progs {
		_, st := runStep(t, p, nil, src, signers())
		res, st2 := runStep(t, p, st, "return order()", signers())
		if got := res.Values[0]; got != "1 2 3 true -1.5 a b " {
			t.Errorf("pairs order %q", got)
		}
		states = append(states, st2)
	}
	// The chunk sources differ, so compare the shape: same object table.
	if a, b := showText(t, states[0]), showText(t, states[1]); strings.Replace(a, chunkHashOf(t, a), "", -1) != strings.Replace(b, chunkHashOf(t, b), "", -1) {
		t.Errorf("states differ:\n%s\n%s", a, b)
	}
	// Same program, same bytes, whatever process order: run twice.
	_, again := runStep(t, p, nil, progs[0], signers())
	_, first := runStep(t, p, nil, progs[0], signers())
	if !bytes.Equal(again, first) {
		t.Error("same program gave different bytes")
	}
}

func chunkHashOf(t *testing.T, show string) string {
	i := strings.Index(show, "chunk ")
	if i < 0 {
		t.Fatalf("no chunk in %s", show)
	}
	return show[i+6 : i+6+64]
}

// runChain runs fragments in turn, each on the state the previous left,
// and returns the last result.
func runChain(t *testing.T, frags ...string) (Result, []byte) {
	t.Helper()
	p := NewPool()
	var st []byte
	var res Result
	for _, f := range frags {
		res, st = runStep(t, p, st, f, signers())
	}
	return res, st
}

func TestStateSurvives(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frags []string
		want  []any
	}{
		{"cycles and shared tables", []string{
			`local t = {}; t.self = t; local x = {1}; t.a = x; t.b = x; holder = t`,
			`assert(holder.self == holder); assert(holder.a == holder.b); holder.a[1] = 5; return holder.b[1]`,
		}, []any{int64(5)}},
		{"shared upvalues", []string{
			`local n = 0; function inc() n = n + 1 end; function get() return n end`,
			`inc(); inc()`,
			`inc(); return get()`,
		}, []any{int64(3)}},
		{"closures made by later fragments", []string{
			`local reg = {}; function register(name, f) reg[name] = f end; function call(name, ...) return reg[name](...) end`,
			`local k = 0; register('count', function(by) k = k + by; return k end); register('double', function(x) return x * 2 end)`,
			`call('count', 5)`,
			`return call('count', 2), call('double', 21)`,
		}, []any{int64(7), int64(42)}},
		{"library functions by name", []string{
			`local ins, fmt = table.insert, string.format; local log = {}; function add(x) ins(log, fmt('%d', x)) end; function all() return table.concat(log, ',') end; lib = math`,
			`add(1); add(2)`,
			`return all(), lib.max(3, 4)`,
		}, []any{"1,2", int64(4)}},
		{"metatables", []string{
			`local mt = {__index = function(t, k) return k .. '!' end}; obj = setmetatable({}, mt)`,
			`return obj.x`,
		}, []any{"x!"}},
		{"varargs and select", []string{
			`function count(...) return select('#', ...) end; function pack(...) return table.pack(...).n end`,
			`return count(1, nil, 3), pack(nil, nil)`,
		}, []any{int64(3), int64(2)}},
		{"odd numbers", []string{
			`local z = 0; z = -z; local v = {0/0, 1/0, -1/0, z, 0.1, 2^53}; function get(i) return v[i] end`,
			`return tostring(get(1) ~= get(1)), get(2) == 1/0, 1/get(4) == -1/0, get(5)`,
		}, []any{"true", true, true, 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := runChain(t, tc.frags...)
			if len(res.Values) != len(tc.want) {
				t.Fatalf("values %v, want %v", res.Values, tc.want)
			}
			for i := range tc.want {
				if res.Values[i] != tc.want[i] {
					t.Errorf("value %d: %#v, want %#v", i, res.Values[i], tc.want[i])
				}
			}
		})
	}
}

// Closures from earlier states are metered like any code.
func TestDeserializedClosuresAreMetered(t *testing.T) {
	p := NewPool()
	_, st := runStep(t, p, nil, `function spin(n) local x = 0 for i = 1, n do x = x + 1 end return x end`, signers())
	_, _, err := p.RunState([]byte(`spin(1e9)`), st, signers())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindGas {
		t.Fatalf("err %v, want out of gas", err)
	}
	a, _ := runStep(t, p, st, `spin(100)`, signers())
	b, _ := runStep(t, p, st, `spin(200)`, signers())
	if b.GasUsed <= a.GasUsed {
		t.Errorf("gas %d for 200 iterations, %d for 100", b.GasUsed, a.GasUsed)
	}
}

func TestReadOnlyGlobals(t *testing.T) {
	p := NewPool()
	_, st := runStep(t, p, nil, `reg = _G; counter = {n = 0}; function bump() counter.n = counter.n + 1 end; function sneak() reg.y = 1 end; function setg() z = 1 end`, signers())
	for _, src := range []string{
		"x = 1", "bump = nil", "_G.x = 1", "_G['bump'] = print", "reg.x = 1", "table.insert(_G, 5)",
		"table.insert(reg, 5)", "sneak()", "setg()", "setmetatable(_G, nil)", "getmetatable(_G).__newindex = nil",
	} {
		_, out, err := p.RunState([]byte(src), st, signers())
		if err == nil || out != nil {
			t.Errorf("%s: accepted", src)
			continue
		}
		if !strings.Contains(err.Error(), "read-only") && !strings.Contains(err.Error(), "protected metatable") && !strings.Contains(err.Error(), "index a boolean") {
			t.Errorf("%s: %v", src, err)
		}
	}
	// Changing tables reached through globals is how state changes.
	_, st2 := runStep(t, p, st, "bump()", signers())
	res, _ := runStep(t, p, st2, "return counter.n", signers())
	if res.Values[0] != int64(1) {
		t.Errorf("counter %v", res.Values[0])
	}
	// signers and _G are host globals, never state.
	_, st3 := runStep(t, p, nil, "x = 1", signers(pub1))
	_, st4 := runStep(t, p, nil, "x = 1", signers(pub2))
	if !bytes.Equal(st3, st4) {
		t.Error("signers leaked into the state")
	}
}

func TestRefusedValues(t *testing.T) {
	p := NewPool()
	for src, want := range map[string]string{
		`it = ipairs({})`:                         `_G["it"] is a host function that is not part of the sandbox`,
		`t = {[{}] = 1}`:                          `_G["t"] has a table key`,
		`local f = function() end; t = {[f] = 1}`: `_G["t"] has a function key`,
		`t = {a = {b = {c = ipairs({})}}}`:        `_G["t"]["a"]["b"]["c"] is a host function`,
	} {
		_, out, err := p.RunState([]byte(src), nil, signers())
		if err == nil || !strings.Contains(err.Error(), want) || out != nil {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

func TestTamperedStates(t *testing.T) {
	p := NewPool()
	st := balancesState(t)
	// Every single-byte change is refused or gives a different state; none
	// panics, and none is accepted as the original.
	for i := range st {
		bad := bytes.Clone(st)
		bad[i] ^= 0x01
		_, out, err := p.RunState(nil, bad, signers())
		if err == nil && bytes.Equal(out, st) {
			t.Fatalf("byte %d: tampered state accepted as the original", i)
		}
		if err == nil && !bytes.Equal(out, bad) {
			t.Fatalf("byte %d: accepted state does not re-serialize to itself", i)
		}
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{2}, st[1:]...),
		"truncated": st[:len(st)-1],
		"trailing":  append(bytes.Clone(st), 0),
	} {
		if _, _, err := p.RunState(nil, b, signers()); name != "empty" && !errors.Is(err, ErrState) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add(balancesState(f))
	for _, src := range []string{`local t = {}; t.t = t; x = t`, `local n = 0; function f() n = n + 1 end; function g() return n end`, `a = {1, 2, 3, x = true}`} {
		_, st, err := NewPool().RunState([]byte(src), nil, signers())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(st)
	}
	p := NewPool()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		_, out, err := p.RunState(nil, b, signers())
		if err == nil && !bytes.Equal(out, b) {
			t.Fatal("accepted state does not re-serialize to itself")
		}
	})
}

// TestHugeStateCounts: a state claiming, or holding, more objects or table
// entries than a decoder may hold is refused while it is read, naming the
// count, before the parser allocates for them.
func TestHugeStateCounts(t *testing.T) {
	header := []byte{stateVersion, 0, 0, 0, 0} // no chunks
	count := func(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }
	// 2^22 upvalue cells holding nil: 2 bytes each, 8 MiB in all.
	cells := append(append(bytes.Clone(header), count(1<<22)...), bytes.Repeat([]byte{kindCell, tagNil}, 1<<22)...)
	// One table claiming 2^22 + 1 entries of two nil values.
	table := append(append(append(bytes.Clone(header), count(1)...), kindTable), count(1<<22+1)...)
	table = append(table, make([]byte, 2*(1<<22+1)+1)...)
	p := NewPool()
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"objects": {cells, "objects: count 4194304 exceeds limit 2097152"},
		"entries": {table, "table entries: count 4194305 exceeds limit 4194304"},
	} {
		_, out, err := p.RunState(nil, c.b, signers())
		if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), c.want) || out != nil {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
