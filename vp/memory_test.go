package vp

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// heapInUse is the Go heap's live bytes after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryCountTracksHeap builds 20 000 objects of each shape a fragment
// can keep and compares the memory the sandbox counts for them (a model that
// never reads the heap) with what the Go heap grew by: they must agree
// within a factor of 2 either way. The heap is read here only to check the
// model.
func TestMemoryCountTracksHeap(t *testing.T) {
	const n = 20000
	garbage := `local g1, g2, g3, g4, g5, g6, g7, g8 = i + 0.1, i + 0.2, i + 0.3, i + 0.4, i + 0.5, i + 0.6, i + 0.7, i + 0.8 `
	heap := HostFunc(func([]any) ([]any, error) { return []any{int64(heapInUse())}, nil })
	for _, c := range []struct{ name, build string }{
		{"empty tables", `k[i] = {}`},
		{"arrays a store starts", `local t = {} t[1] = i k[i] = t`},
		{"arrays from constructors", `k[i] = {i, i, i}`},
		{"a string key a store adds", `local t = {} t.x = i k[i] = t`},
		{"string keys from constructors", `k[i] = {x = i, y = i}`},
		{"eight string keys", `local t = {} t.a, t.b, t.c, t.d, t.e, t.f, t.g, t.h = 1, 2, 3, 4, 5, 6, 7, 8 k[i] = t`},
		{"a number key", `local t = {} t[i + 0.5] = i k[i] = t`},
		{"one table of string keys", `k["key" .. i] = i`},
		{"numbers among garbage", garbage + `k[i] = i + 0.5`},
		{"closures", `k[i] = function() return i end`},
		{"closures keeping four", `local a, b, c, d = i, i, i, i k[i] = function() return a, b, c, d end`},
		{"closures sharing one", `local x = i k[i] = {function() return x end, function() return x end}`},
		{"closures keeping a number", `local x = i + 0.5 ` + garbage + `k[i] = function() return x end`},
		{"short strings", `k[i] = "x" .. i`},
		{"strings of 100 bytes", `k[i] = string.rep("x", 100) .. i`},
	} {
		run := func(count int) (Result, error) {
			src := fmt.Sprintf(`local k = {}
local before = heap()
for i = 1, %d do %s end
local after = heap()
local keep = k
return after - before`, count, c.build)
			lim := DefaultLimits()
			lim.Gas, lim.MaxMemory, lim.MaxTable = 1<<40, 1<<40, 1<<20
			return NewPool().Run(mustCompile(t, "mem.lua", src), Call{Globals: map[string]any{"heap": heap}, Limits: lim})
		}
		none, err := run(0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := run(n)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		counted := float64(res.Memory - none.Memory)
		real := float64(res.Values[0].(int64))
		t.Logf("%-30s counted %6.0f, heap %6.0f bytes each (%.2f)", c.name, counted/n, real/n, real/counted)
		if real > 2*counted || counted > 2*real {
			t.Errorf("%s: counted %.0f bytes, the heap grew by %.0f: not within 2×", c.name, counted, real)
		}
	}
}

// TestProgramSizeTracksHeap: a compiled program holds about what Size says
// (within 2× of the heap it keeps), functions included: gopher-lua leaves
// 16 KiB of buffers in each prototype, which Compile trims.
func TestProgramSizeTracksHeap(t *testing.T) {
	for name, unit := range map[string]string{
		"functions":  "do local function f(a) return a end end\n",
		"statements": "do local x = a + b * c - d end\n",
		"calls":      "f(1, 2, 3)\n",
	} {
		src := []byte(strings.Repeat(unit, 1000))
		before := heapInUse()
		p, err := Compile(name, src)
		if err != nil {
			t.Fatal(err)
		}
		real := float64(heapInUse() - before)
		runtime.KeepAlive(p)
		t.Logf("%-10s %d source bytes: Size %d, heap %.0f", name, len(src), p.Size(), real)
		if real > 2*float64(p.Size()) || float64(p.Size()) > 2*real {
			t.Errorf("%s: Size %d, the heap grew by %.0f: not within 2×", name, p.Size(), real)
		}
	}
}
