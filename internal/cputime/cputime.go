// Package cputime reads the CPU time the process has used, for benchmarks
// on a shared machine: other processes' load changes wall-clock figures far
// more than CPU time, and CPU time over wall-clock time is how many cores
// the process kept busy.
package cputime

import (
	"syscall"
	"time"
)

// Process is the CPU time (user and system) the process has used: every
// goroutine, the garbage collector and badger's included. It is 0 where
// the system does not say.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
