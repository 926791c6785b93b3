package vp

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// BenchmarkPredicate is a pooled predicate call that checks one table field.
func BenchmarkPredicate(b *testing.B) {
	p := mustCompile(b, "pred.lua", `return note.owner == owner`)
	pool := NewPool()
	note := map[string]any{"owner": "abc", "key": "k"}
	call := Call{Globals: map[string]any{"note": note, "owner": "abc"}, Limits: DefaultLimits()}
	b.ReportAllocs()
	for b.Loop() {
		res, err := pool.Run(p, call)
		if err != nil || res.Values[0] != true {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkPredicateSession is the same check as a transaction's
// predicates run it: in a session whose note and owner were converted once.
func BenchmarkPredicateSession(b *testing.B) {
	p := mustCompile(b, "pred.lua", `return note.owner == owner`)
	s := NewPool().NewSession(DefaultLimits().MaxDepth, map[string]any{"note": map[string]any{"owner": "abc", "key": "k"}, "owner": "abc"})
	defer s.Close()
	call := Call{Limits: DefaultLimits()}
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Run(p, call)
		if err != nil || res.Values[0] != true {
			b.Fatal(res, err)
		}
	}
}

const loopSource = `local s = 0 for i = 1, 100000 do s = s + i % 7 end return s`

// BenchmarkLoopInstrumented and BenchmarkLoopBare compare a tight loop with
// and without gas instrumentation.
func BenchmarkLoopInstrumented(b *testing.B) {
	p := mustCompile(b, "loop.lua", loopSource)
	pool := NewPool()
	lim := DefaultLimits()
	lim.Gas = 1 << 40
	for b.Loop() {
		if _, err := pool.Run(p, Call{Limits: lim}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoopBare(b *testing.B) {
	chunk, err := parse.Parse(strings.NewReader(loopSource), "loop.lua")
	if err != nil {
		b.Fatal(err)
	}
	proto, err := lua.Compile(chunk, "loop.lua")
	if err != nil {
		b.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	for b.Loop() {
		L.Push(L.NewFunctionFromProto(proto))
		L.Call(0, 1)
		L.Pop(1)
	}
}

// BenchmarkCompile measures parsing, instrumenting and compiling the seed.
func BenchmarkCompile(b *testing.B) {
	for b.Loop() {
		mustCompile(b, "seed.lua", seedSource)
	}
}

// BenchmarkPredicateBare is the same call on a bare gopher-lua state with
// the same fresh globals and note table, for comparison.
func BenchmarkPredicateBare(b *testing.B) {
	chunk, err := parse.Parse(strings.NewReader(`return note.owner == owner`), "pred.lua")
	if err != nil {
		b.Fatal(err)
	}
	proto, err := lua.Compile(chunk, "pred.lua")
	if err != nil {
		b.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	b.ReportAllocs()
	for b.Loop() {
		G := L.CreateTable(0, 3)
		note := L.CreateTable(0, 2)
		note.RawSetString("key", lua.LString("k"))
		note.RawSetString("owner", lua.LString("abc"))
		G.RawSetString("note", note)
		G.RawSetString("owner", lua.LString("abc"))
		fn := L.NewFunctionFromProto(proto)
		fn.Env = G
		L.Push(fn)
		if err := L.PCall(0, 1, nil); err != nil || L.Get(-1) != lua.LTrue {
			b.Fatal(err)
		}
		L.Pop(1)
	}
}

// BenchmarkHostCall is 1,000 host calls in a loop, plain and charging the
// run's meter: what a HostCall costs beyond the call itself.
func BenchmarkHostCall(b *testing.B) {
	p := mustCompile(b, "host.lua", `for i = 1, 1000 do f(i) end`)
	for _, c := range []struct {
		name string
		f    any
	}{
		{"plain", HostFunc(func(args []any) ([]any, error) { return nil, nil })},
		{"charging", HostFuncCtx(func(c *HostCall, args []any) ([]any, error) {
			_ = c.Remaining()
			return nil, c.Charge(10)
		})},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool := NewPool()
			call := Call{Globals: map[string]any{"f": c.f}, Limits: DefaultLimits()}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pool.Run(p, call); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
