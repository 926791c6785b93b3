package vp

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

var benchSubject = strings.Repeat("ab12 ", 38)

// BenchmarkPatternMatch is string.match(s, "^(%x+) (%x+) ") on 190 bytes in
// the sandbox, one pooled run per iteration.
func BenchmarkPatternMatch(b *testing.B) {
	prog := mustCompile(b, "m.lua", `return string.match(s, "^(%x+) (%x+) ")`)
	pool := NewPool()
	call := Call{Globals: map[string]any{"s": benchSubject}, Limits: DefaultLimits()}
	for b.Loop() {
		if _, err := pool.Run(prog, call); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPatternMatchGopher is the same call on gopher-lua's unmetered
// matcher in a bare state, for comparison.
func BenchmarkPatternMatchGopher(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	fn, err := L.LoadString(`return string.match(s, "^(%x+) (%x+) ")`)
	if err != nil {
		b.Fatal(err)
	}
	L.SetGlobal("s", lua.LString(benchSubject))
	for b.Loop() {
		L.Push(fn)
		L.Call(0, lua.MultRet)
		L.SetTop(0)
	}
}

// BenchmarkPatternGsub hex-encodes 32 bytes with a replacement function, as
// the examples do.
func BenchmarkPatternGsub(b *testing.B) {
	prog := mustCompile(b, "g.lua", `return (string.gsub(s, ".", function(c) return string.format("%02x", string.byte(c)) end))`)
	pool := NewPool()
	call := Call{Globals: map[string]any{"s": strings.Repeat("\x01\xfe", 16)}, Limits: DefaultLimits()}
	for b.Loop() {
		if _, err := pool.Run(prog, call); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPatternBacktrack runs a backtracking find until it is out of
// 1 000 000 gas: the time a hostile pattern can take.
func BenchmarkPatternBacktrack(b *testing.B) {
	prog := mustCompile(b, "bt.lua", `return string.find(string.rep("a", 5000), string.rep("a-", 8) .. "b")`)
	pool := NewPool()
	for b.Loop() {
		if _, err := pool.Run(prog, Call{Limits: DefaultLimits()}); err == nil {
			b.Fatal("not refused")
		}
	}
}
