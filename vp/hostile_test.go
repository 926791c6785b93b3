package vp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileLimits are the limits the hostile corpus runs under.
func hostileLimits() Limits {
	l := DefaultLimits()
	l.Gas = 1_000_000
	l.MaxMemory = 4 << 20
	l.MaxTable = 10_000
	return l
}

var kindNames = map[string]Kind{"compile": KindCompile, "runtime": KindRuntime, "gas": KindGas, "limit": KindLimit, "abort": KindAbort}

// TestHostile runs every fragment in testdata/hostile. The first line of each
// says what must happen: "-- want: KIND: text" (refused with an error of that
// kind whose message contains text) or "-- want: ok: text" (returns text).
func TestHostile(t *testing.T) {
	files, err := filepath.Glob("testdata/hostile/*.lua")
	if err != nil || len(files) < 30 {
		t.Fatalf("hostile corpus: %d files, %v", len(files), err)
	}
	pool := NewPool()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(src), "\n")
			want, ok := strings.CutPrefix(first, "-- want: ")
			if !ok {
				t.Fatalf("first line %q does not say what is wanted", first)
			}
			kind, text, _ := strings.Cut(want, ": ")
			name := filepath.Base(f)
			prog, err := Compile(name, src)
			if err == nil {
				var res Result
				res, err = pool.Run(prog, Call{Limits: hostileLimits(), Seed: 7})
				if kind == "ok" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if len(res.Values) != 1 || res.Values[0] != text {
						t.Fatalf("got %v, want %q", res.Values, text)
					}
					return
				}
				if res.GasUsed > hostileLimits().Gas {
					t.Errorf("gas used %d beyond the limit", res.GasUsed)
				}
			}
			if err == nil {
				t.Fatalf("not refused, want %s: %s", kind, text)
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T, want *Error", err)
			}
			if e.Kind != kindNames[kind] || !strings.Contains(e.Msg, text) {
				t.Fatalf("got kind %d %q, want %s containing %q", e.Kind, e.Error(), kind, text)
			}
			if e.Chunk != name || !strings.HasPrefix(e.Error(), name+":") {
				t.Fatalf("error %q does not name the chunk", e.Error())
			}
		})
	}
}
