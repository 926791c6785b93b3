package vp

import (
	"os"
	"strings"
	"testing"
)

// bigLimits leaves room for a whole corpus in one run.
func bigLimits() Limits {
	l := DefaultLimits()
	l.Gas = 100_000_000
	l.MaxMemory = 1 << 30
	return l
}

// TestPatternsAgreeWithLua51 runs the pattern corpus in the sandbox and
// compares every line with what Lua 5.1 itself printed for it
// (testdata/patterns/lua51.txt, made by `lua5.1 corpus.lua`).
func TestPatternsAgreeWithLua51(t *testing.T) {
	src, err := os.ReadFile("testdata/patterns/corpus.lua")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/patterns/lua51.txt")
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewPool().Run(mustCompile(t, "corpus.lua", string(src)), Call{Limits: bigLimits()})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(res.Log) != len(lines) || len(lines) < 600 {
		t.Fatalf("%d lines, Lua 5.1 printed %d", len(res.Log), len(lines))
	}
	for i, w := range lines {
		if res.Log[i] != w {
			t.Errorf("sandbox: %s\nLua 5.1: %s", res.Log[i], w)
		}
	}
}
