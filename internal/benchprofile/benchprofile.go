// Package benchprofile profiles the measured part of a benchmark alone:
// -test.cpuprofile also samples its setup and the background work the setup
// leaves (decision 042).
package benchprofile

import (
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

// Env names the path prefix the profiles are written under; unset, Window
// profiles nothing.
const Env = "FRACTAL_BENCH_PROFILE"

// Window starts profiling the part of a benchmark called name, when Env
// names a path prefix, until the returned stop is called: the CPU profile,
// badger's and the collector's goroutines included, goes to
// PREFIX-NAME.cpu; heap profiles at its start and end go to PREFIX-NAME.mem0
// and .mem1, for `go tool pprof -base PREFIX-NAME.mem0 PREFIX-NAME.mem1`
// (allocations made in between).
func Window(tb testing.TB, name string) (stop func()) {
	prefix := os.Getenv(Env)
	if prefix == "" {
		return func() {}
	}
	prefix += "-" + name
	heap := func(suffix string) {
		runtime.GC() // the heap profile counts allocations up to the last collection
		f, err := os.Create(prefix + suffix)
		if err == nil {
			err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	heap(".mem0")
	f, err := os.Create(prefix + ".cpu")
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
		heap(".mem1")
	}
}
