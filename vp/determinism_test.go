package vp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorMessagesHaveNoAddresses: gopher-lua writes a key's address into
// "attempt to index a non-table object" errors; a program can catch the
// message and return it (into a note, a log, a state), so it must be the
// same in every run.
func TestErrorMessagesHaveNoAddresses(t *testing.T) {
	p := NewPool()
	for _, c := range []struct{ src, want string }{
		{"local ok, e = pcall(function() local x = 5; return x[{}] end) return e",
			"t:1: attempt to index a non-table object(number) with key 'table'"},
		{"local ok, e = pcall(function() local t = setmetatable({}, {__index = 5}); return t[print] end) return e",
			"t:1: attempt to index a non-table object(number) with key 'function'"},
		{"local ok, e = xpcall(function() local x = true; return x[{}] end, function(m) return 'h: ' .. m end) return e",
			"h: t:1: attempt to index a non-table object(boolean) with key 'table'"},
		{"local ok, e = pcall(error, 'table: 0x1f') return e", "t:1: table"},
	} {
		prog, err := Compile("t", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Run(prog, Call{Limits: DefaultLimits()})
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if len(res.Values) != 1 || res.Values[0] != c.want {
			t.Errorf("%s: got %v, want %q", c.src, res.Values, c.want)
		}
	}
	// Uncaught, the run's error is as free of addresses.
	prog, err := Compile("t", []byte("local x = 5; return x[{}]"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(prog, Call{Limits: DefaultLimits()})
	if err == nil || !strings.HasSuffix(err.Error(), "with key 'table'") {
		t.Fatalf("got %v", err)
	}
}

// TestRunStateCaughtErrorSameBytes: a state that keeps a caught error
// message has the same bytes in every run.
func TestRunStateCaughtErrorSameBytes(t *testing.T) {
	p := NewPool()
	_, s1, err := p.RunState([]byte("errs = {}\nfunction try(k) local ok, e = pcall(function() local n = 1; return n[k] end); errs[#errs+1] = e end\n"), nil, signers(pub1))
	if err != nil {
		t.Fatal(err)
	}
	var states [][]byte
	for range 2 {
		_, s, err := p.RunState([]byte("try({}) try(try)"), s1, signers(pub1))
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, s)
	}
	if !bytes.Equal(states[0], states[1]) {
		t.Fatal("the same step gave two states")
	}
	if !bytes.Contains(states[0], []byte("with key 'table'")) {
		t.Fatalf("state lacks the message: %q", states[0])
	}
}

// TestRunStateTableKeyInGlobalsRefused: a state that keeps its own global
// table lets a later step store a table key there; the read-only check
// refuses it (it used to panic sorting the keys) and names no address.
func TestRunStateTableKeyInGlobalsRefused(t *testing.T) {
	p := NewPool()
	_, s1, err := p.RunState([]byte("G = _G\n"), nil, signers(pub1))
	if err != nil {
		t.Fatal(err)
	}
	for frag, want := range map[string]string{
		"G[{}] = 1":    "globals are read-only after the initial state (assigning a table key)",
		"G[print] = 1": "globals are read-only after the initial state (assigning a function key)",
		"G.x = 1":      `globals are read-only after the initial state (assigning "x")`,
	} {
		_, out, err := p.RunState([]byte(frag), s1, signers(pub1))
		if err == nil || !strings.HasSuffix(err.Error(), want) || out != nil {
			t.Errorf("%s: got %v (state %d bytes), want %q", frag, err, len(out), want)
		}
	}
}

// stateChainSteps build a Smart Lua state with what could differ between
// processes: closures and shared upvalues, pairs order, caught error
// messages, number formatting, string keys added and removed.
var stateChainSteps = []string{
	`book = {}
	local n = 0
	function add(k, v) n = n + 1; book[k] = {v = v, at = n, f = function() return n end} end
	function drop(k) book[k] = nil end
	local tries = 0
	function try(k) tries = tries + 1; local ok, e = pcall(function() local x = 1; return x[k] end); book["err" .. tries] = e end
	function list() local s = {} for k, v in pairs(book) do s[#s+1] = k .. "=" .. tostring(type(v) == "table" and v.v or v) end print(table.concat(s, ",")) end`,
	`for i = 1, 40 do add("k" .. i, i / 7) end`,
	`for i = 1, 40, 3 do drop("k" .. i) end try({}) try(add) try("s")`,
	`add("x", 2^60) add("y", -0.0) list()`,
}

// runStateChain runs stateChainSteps and returns what each step gave.
func runStateChain() []string {
	p := NewPool()
	var st []byte
	var out []string
	for _, src := range stateChainSteps {
		res, next, err := p.RunState([]byte(src), st, signers(pub1, pub2))
		if err != nil {
			return append(out, "error: "+err.Error())
		}
		st = next
		out = append(out, fmt.Sprintf("%x gas=%d log=%q", sha256.Sum256(st), res.GasUsed, res.Log))
	}
	return out
}

// TestStateChainAcrossProcesses: the same chain of steps gives the same
// state bytes, gas and log in two fresh processes and in this one (whose
// chunk cache is warm).
func TestStateChainAcrossProcesses(t *testing.T) {
	if os.Getenv("VP_STATE_CHILD") == "1" {
		json.NewEncoder(os.Stdout).Encode(runStateChain())
		os.Exit(0)
	}
	runStateChain()
	here, _ := json.Marshal(runStateChain())
	if strings.Contains(string(here), "error: ") {
		t.Fatalf("chain failed: %s", here)
	}
	for i := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStateChainAcrossProcesses$")
		cmd.Env = append(os.Environ(), "VP_STATE_CHILD=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		if got := strings.TrimSpace(string(out)); got != string(here) {
			t.Fatalf("child %d differs:\n%s\nwant\n%s", i, got, here)
		}
	}
}

// TestRefusedKeyMessageIsStable: a table with keys of two refused types is
// refused naming the same one every time (Go's map order picked it).
func TestRefusedKeyMessageIsStable(t *testing.T) {
	p := NewPool()
	_, s1, err := p.RunState([]byte("G = _G\n"), nil, signers(pub1))
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		_, _, err := p.RunState([]byte("local f = function() end; t = {[{}] = 1, [f] = 2, [{}] = 3}"), nil, signers(pub1))
		if err == nil || !strings.HasSuffix(err.Error(), `_G["t"] has a function key; keys must be booleans, numbers or strings`) {
			t.Fatalf("initial state: got %v", err)
		}
		_, _, err = p.RunState([]byte("G[{}] = 1; G[print] = 2; G[{}] = 3"), s1, signers(pub1))
		if err == nil || !strings.HasSuffix(err.Error(), "(assigning a function key)") {
			t.Fatalf("later step: got %v", err)
		}
	}
}

// TestCaughtErrorCostHasNoAddress: a caught error whose message names a
// table or function costs the same gas and memory whatever the address
// gopher-lua wrote into it. Go 1.26 places the heap at a random base in
// each process, so "table: 0x…" has 10 to 12 hex digits depending on the
// process; charging the message before the address was dropped made one
// step of TestStateChainAcrossProcesses cost 350 gas in some processes and
// 351 in others. Each fragment below raises, with pcall and with xpcall, a
// message written as gopher-lua writes one, with an address of another
// length; all must cost what the first does and return the same text.
func TestCaughtErrorCostHasNoAddress(t *testing.T) {
	p := NewPool()
	for _, c := range []struct{ form, want string }{
		{`local ok, e = pcall(error, "attempt to index a non-table object(number) with key '%s: 0x%s'") return e`,
			"t:1: attempt to index a non-table object(number) with key '%s'"},
		{`local ok, e = xpcall(function() error("with key '%s: 0x%s'") end, function(m) return m end) return e`,
			"t:1: with key '%s'"},
	} {
		for _, kind := range []string{"table", "function"} {
			const firstAddr = "c000012345"
			var first Result
			for i, addr := range []string{firstAddr, "1", "4b19b40e0", "1c000012345", "3f5edef6c0e0", strings.Repeat("f", 40)} {
				src := fmt.Sprintf(c.form, kind, addr)
				prog, err := Compile("t", []byte(src))
				if err != nil {
					t.Fatal(err)
				}
				res, err := p.Run(prog, Call{Limits: DefaultLimits()})
				if err != nil {
					t.Fatalf("%s: %v", src, err)
				}
				if want := fmt.Sprintf(c.want, kind); len(res.Values) != 1 || res.Values[0] != want {
					t.Fatalf("%s: returned %v, want %q", src, res.Values, want)
				}
				if i == 0 {
					first = res
					continue
				}
				if res.GasUsed != first.GasUsed || res.Memory != first.Memory {
					t.Errorf("%s, address 0x%s: gas %d, memory %d; address 0x%s: gas %d, memory %d",
						kind, addr, res.GasUsed, res.Memory, firstAddr, first.GasUsed, first.Memory)
				}
			}
		}
	}
}

// TestRunSameOnFreshAndReusedVM: a program gives the same values, log,
// gas, memory count and error on a VM of its own and on a pooled VM that
// ran the rest of the hostile corpus before it (runs that ran out of gas,
// hit limits, grew the stack, raised errors mid-call). The pool keeps VMs
// between runs, so nothing a run leaves on one may change what the next
// run on it is charged.
func TestRunSameOnFreshAndReusedVM(t *testing.T) {
	files, err := filepath.Glob("testdata/hostile/*.lua")
	if err != nil || len(files) < 30 {
		t.Fatalf("hostile corpus: %d files, %v", len(files), err)
	}
	var progs []*Program
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := Compile(filepath.Base(f), src); err == nil {
			progs = append(progs, p)
		}
	}
	lim := hostileLimits()
	lim.Gas = 100_000 // enough for every fragment to do what it tries, or to run out
	run := func(p *Pool, prog *Program) string {
		res, err := p.Run(prog, Call{Limits: lim, Seed: 7})
		return fmt.Sprintf("gas %d, memory %d, values %v, log %q, error %v", res.GasUsed, res.Memory, res.Values, res.Log, err)
	}
	fresh := make([]string, len(progs))
	for i, prog := range progs {
		fresh[i] = run(NewPool(), prog)
	}
	reused := NewPool()
	for i := len(progs) - 1; i >= 0; i-- {
		if got := run(reused, progs[i]); got != fresh[i] {
			t.Errorf("%s on a reused VM: %s\non a fresh VM: %s", progs[i].Name, got, fresh[i])
		}
	}
}
