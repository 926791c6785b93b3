package vp

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
)

// sessionShared is what a transaction's predicates share.
func sessionShared() map[string]any {
	n := testNote()
	return map[string]any{"inputs": []notes.Note{n}, "outputs": []notes.Note{n, n}, "signers": []any{"k1", "k2"}, "txid": "ab"}
}

// TestSessionReadOnly: every table the host passes in a session is
// read-only, by every route that changes a table, and a refused change
// leaves the table as it was for the next run.
func TestSessionReadOnly(t *testing.T) {
	pool := NewPool()
	s := pool.NewSession(DefaultLimits().MaxDepth, sessionShared())
	defer s.Close()
	for _, c := range []struct{ src, want string }{
		{`inputs[1].value = "x"`, "cannot modify a read-only table passed by the host"},
		{`inputs[2] = inputs[1]`, "cannot modify a read-only table passed by the host"},
		{`outputs[1].provenance[1] = "00"`, "cannot modify a read-only table passed by the host"},
		{`table.insert(signers, "k3")`, "cannot modify a read-only table passed by the host"},
		{`table.remove(outputs)`, "cannot modify a read-only table passed by the host"},
		{`table.sort(signers, function(a, b) return a > b end)`, "cannot modify a read-only table passed by the host"},
		{`setmetatable(inputs, {__index = function() return 1 end})`, "cannot change the metatable of a read-only table passed by the host"},
		{`note.key = "x"`, "cannot modify a read-only table passed by the host"},
		{`string.x = 1`, "cannot modify a library table"},
	} {
		p := mustCompile(t, "ro.lua", c.src)
		_, err := s.Run(p, Call{Globals: map[string]any{"note": testNote()}, Limits: DefaultLimits()})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.src, err, c.want)
		}
	}
	check := mustCompile(t, "check.lua", `
return inputs[1].value, #inputs, #outputs, outputs[1].provenance[1], signers[1], signers[2], #signers, getmetatable(inputs)`)
	res, err := s.Run(check, Call{Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{string(testNote().Value), int64(1), int64(2), "abcd", "k1", "k2", int64(2), nil}
	if !reflect.DeepEqual(res.Values, want) {
		t.Fatalf("after refused changes got %#v, want %#v", res.Values, want)
	}
}

// TestSessionMatchesPoolRun: a run in a session gives the values, log and
// gas of the same run through Pool.Run, globals visited in the same order,
// on the first run and on later ones.
func TestSessionMatchesPoolRun(t *testing.T) {
	src := `
local names = {}
for k in pairs(_G) do names[#names + 1] = k end
print(table.concat(names, ","))
local n = 0
for _, x in ipairs(outputs) do n = n + #x.key + #x.value end
print(role, index, note and note.owner, #inputs, n, #signers, txid)
return n, role`
	p := mustCompile(t, "same.lua", src)
	pool := NewPool()
	s := pool.NewSession(DefaultLimits().MaxDepth, sessionShared())
	defer s.Close()
	for i, own := range []map[string]any{
		{"role": "application", "index": int64(0)},
		{"role": "input", "index": int64(1), "note": testNote()},
		{"role": "output", "index": int64(2), "note": &[]notes.Note{testNote()}[0]},
	} {
		call := Call{Globals: own, Limits: DefaultLimits(), Seed: uint64(i)}
		got, gerr := s.Run(p, call)
		all := sessionShared()
		for k, v := range own {
			all[k] = v
		}
		call.Globals = all
		want, werr := pool.Run(p, call)
		if gerr != nil || werr != nil {
			t.Fatal(gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: session %+v, Pool.Run %+v", i, got, want)
		}
	}
}

// TestSessionRefusals: a shared value that cannot be converted fails each
// run as Pool.Run would; a per-run global may not shadow a shared one; the
// depth is the session's.
func TestSessionRefusals(t *testing.T) {
	p := mustCompile(t, "p.lua", `return true`)
	pool := NewPool()
	bad := pool.NewSession(DefaultLimits().MaxDepth, map[string]any{"x": 1.5, "y": struct{}{}})
	_, err := bad.Run(p, Call{Limits: DefaultLimits()})
	bad.Close()
	if err == nil || err.Error() != "p.lua: global y: cannot pass a struct {} to Lua" {
		t.Fatalf("bad shared value: %v", err)
	}
	s := pool.NewSession(DefaultLimits().MaxDepth, sessionShared())
	defer s.Close()
	if _, err := s.Run(p, Call{Globals: map[string]any{"inputs": "x"}, Limits: DefaultLimits()}); err == nil || !strings.Contains(err.Error(), "global inputs: also shared by the session") {
		t.Fatalf("shadowed shared global: %v", err)
	}
	lim := DefaultLimits()
	lim.MaxDepth = 10
	if _, err := s.Run(p, Call{Limits: lim}); err == nil || !strings.Contains(err.Error(), "call depth limit 10: the session was opened for 200") {
		t.Fatalf("other depth: %v", err)
	}
	if res, err := s.Run(p, Call{Limits: DefaultLimits()}); err != nil || res.Values[0] != true {
		t.Fatalf("session after refusals: %v %v", res, err)
	}
}

// TestPoolRunGlobalsStayWritable: outside a session, a fragment may change
// the tables it was given (lookup and calculation code do).
func TestPoolRunGlobalsStayWritable(t *testing.T) {
	res, err := runSrc(t, `inputs[1].key = "changed" table.insert(inputs, 1) return inputs[1].key, #inputs`, map[string]any{"inputs": []notes.Note{testNote()}})
	if err != nil || !reflect.DeepEqual(res.Values, []any{"changed", int64(2)}) {
		t.Fatalf("got %v %v", res.Values, err)
	}
}

// TestSessionNoteIsItsSharedTable: a run's note that points into a shared
// []notes.Note is the very table of that place in the shared list; any
// other note is converted on its own.
func TestSessionNoteIsItsSharedTable(t *testing.T) {
	ins := []notes.Note{testNote(), testNote()}
	ins[1].Key = []byte("second")
	s := NewPool().NewSession(DefaultLimits().MaxDepth, map[string]any{"inputs": ins})
	defer s.Close()
	p := mustCompile(t, "same.lua", `return note == inputs[1], note == inputs[2], note.key`)
	for _, c := range []struct {
		note any
		want []any
	}{
		{&ins[1], []any{false, true, "second"}},
		{&ins[0], []any{true, false, "balance/alice"}},
		{ins[0], []any{false, false, "balance/alice"}},
	} {
		res, err := s.Run(p, Call{Globals: map[string]any{"note": c.note}, Limits: DefaultLimits()})
		if err != nil || !reflect.DeepEqual(res.Values, c.want) {
			t.Fatalf("note %v: got %v %v, want %v", c.note, res.Values, err, c.want)
		}
	}
}

// TestSessionReuse: a session made after another closed (which reuses its
// maps) sees none of the first one's shared globals, and its tables are
// writable outside a session again; closing twice hands the session out
// once.
func TestSessionReuse(t *testing.T) {
	pool := NewPool()
	a := pool.NewSession(DefaultLimits().MaxDepth, sessionShared())
	a.Close()
	a.Close()
	b := pool.NewSession(DefaultLimits().MaxDepth, map[string]any{"txid": "cd"})
	c := pool.NewSession(DefaultLimits().MaxDepth, map[string]any{"txid": "ef"})
	if b == c {
		t.Fatal("a session closed twice was handed out twice")
	}
	defer c.Close()
	defer b.Close()
	p := mustCompile(t, "reuse.lua", `return txid, inputs, signers`)
	res, err := b.Run(p, Call{Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{"cd", nil, nil}; !reflect.DeepEqual(res.Values, want) {
		t.Fatalf("got %#v, want %#v", res.Values, want)
	}
	// The first session's tables were read-only there; Pool.Run may change its own.
	w := mustCompile(t, "write.lua", `inputs[1].value = "x" return inputs[1].value`)
	res, err = pool.Run(w, Call{Globals: sessionShared(), Limits: DefaultLimits()})
	if err != nil || !reflect.DeepEqual(res.Values, []any{"x"}) {
		t.Fatalf("Pool.Run after sessions: %v, %v", res.Values, err)
	}
}
