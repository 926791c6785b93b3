package cputime

import "testing"

// TestProcessGrows: spinning for a while shows as CPU time.
func TestProcessGrows(t *testing.T) {
	start := Process()
	x := 0
	for i := 0; Process()-start < 1e6 && i < 1e9; i++ { // 1 ms of CPU at most a few seconds' spin
		x += i
	}
	if Process() <= start {
		t.Fatalf("CPU time did not grow (%d)", x)
	}
}
