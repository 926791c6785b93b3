//go:build !unix

package circuits

import (
	"testing"
	"time"
)

// processCPU is not measured on this system; the benchmarks report 0.
func processCPU(*testing.B) time.Duration { return 0 }
