package procmem

import (
	"runtime"
	"testing"
)

// TestPeakRSSGrows: the peak covers memory the process touched.
func TestPeakRSSGrows(t *testing.T) {
	before, err := PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = 1
	}
	after, err := PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(buf)
	if after < before+32<<20 {
		t.Fatalf("peak %d after touching 64 MiB, %d before", after, before)
	}
}
