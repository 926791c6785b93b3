package vp

import (
	"bytes"
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
		"G.x = 1":      "globals are read-only after the initial state (assigning x)",
	} {
		_, out, err := p.RunState([]byte(frag), s1, signers(pub1))
		if err == nil || !strings.HasSuffix(err.Error(), want) || out != nil {
			t.Errorf("%s: got %v (state %d bytes), want %q", frag, err, len(out), want)
		}
	}
}
