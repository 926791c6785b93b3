// Package procmem reads the process's own memory figures from /proc, for
// benchmarks that report peak memory. Nothing may decide on them: what the
// sandbox counts is deterministic, the process's memory is not.
package procmem

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakRSS is the most resident memory the process has held (VmHWM in
// /proc/self/status), in bytes.
func PeakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("procmem: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procmem: VmHWM %q: %w", rest, err)
		}
		return kb << 10, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("procmem: %w", err)
	}
	return 0, fmt.Errorf("procmem: no VmHWM in /proc/self/status")
}
