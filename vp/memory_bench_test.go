package vp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/internal/procmem"
)

// BenchmarkHostileMemory runs the hostile corpus under its limits and
// reports the process's peak resident memory; then runs the fragments that
// build memory (memory_*.lua) under the default limits with 10^8 gas, the
// most a transaction may have, and reports the peak again. The peak only
// grows, so the second covers the first. Run it alone, in a process of its
// own:
//
//	go test ./vp -run '^$' -bench HostileMemory -benchtime 1x
func BenchmarkHostileMemory(b *testing.B) {
	files, err := filepath.Glob("testdata/hostile/*.lua")
	if err != nil {
		b.Fatal(err)
	}
	type fragment struct {
		prog   *Program
		memory bool
	}
	var frags []fragment
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if p, err := Compile(filepath.Base(f), src); err == nil {
			frags = append(frags, fragment{p, strings.HasPrefix(filepath.Base(f), "memory_")})
		}
	}
	peak := func(unit string) {
		rss, err := procmem.PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rss)/(1<<20), unit)
	}
	pool := NewPool()
	for b.Loop() {
		for _, f := range frags {
			pool.Run(f.prog, Call{Limits: hostileLimits(), Seed: 7})
		}
	}
	peak("corpus-peak-MiB")
	lim := DefaultLimits()
	lim.Gas = 100_000_000
	for _, f := range frags {
		if f.memory {
			if _, err := pool.Run(f.prog, Call{Limits: lim}); err == nil || err.(*Error).Kind != KindLimit {
				b.Fatalf("%s: %v, want the memory limit", f.prog.Name, err)
			}
		}
	}
	peak("default-limits-peak-MiB")
}
