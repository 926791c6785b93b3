package enc

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := NewWriter(0)
	w.U8(7)
	w.Bool(true)
	w.U32(0xdeadbeef)
	w.U64(1 << 40)
	w.Var([]byte("abc"))
	w.String("")
	w.Fixed([]byte{1, 2})
	r := NewReader(w.Bytes())
	if r.U8() != 7 || !r.Bool() || r.U32() != 0xdeadbeef || r.U64() != 1<<40 {
		t.Fatal("integers did not round-trip")
	}
	if got := r.Var(3, "v"); !bytes.Equal(got, []byte("abc")) {
		t.Fatalf("var = %q", got)
	}
	if got := r.String(0, "s"); got != "" {
		t.Fatalf("string = %q", got)
	}
	if got := r.Fixed(2); !bytes.Equal(got, []byte{1, 2}) {
		t.Fatalf("fixed = %v", got)
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestRefusals(t *testing.T) {
	w := NewWriter(0)
	w.Var([]byte("abcd"))
	full := w.Bytes()

	if err := finish(full[:len(full)-1], 4); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
	if err := finish(append(append([]byte{}, full...), 0), 4); err == nil || err.Error() != "1 trailing bytes" {
		t.Fatalf("trailing: %v", err)
	}
	if err := finish(full, 3); err == nil || err.Error() != "v: length 4 exceeds limit 3" {
		t.Fatalf("oversize: %v", err)
	}
	r := NewReader([]byte{2})
	r.Bool()
	if err := r.Finish(); err == nil {
		t.Fatal("boolean 2 accepted")
	}
}

func finish(b []byte, max int) error {
	r := NewReader(b)
	r.Var(max, "v")
	return r.Finish()
}

// TestScratch: Sum256 and Copy give the hash and bytes of a fresh Writer's
// encoding, whatever a reused buffer held before (a longer encoding, one
// too large to keep), and Copy's slice is exactly as long as the encoding.
func TestScratch(t *testing.T) {
	for _, n := range []int{3, 100_000, 0, 70, maxScratch + 1, 5} {
		write := func(w *Writer) {
			w.U64(uint64(n))
			w.Var(bytes.Repeat([]byte{byte(n)}, n))
		}
		want := NewWriter(0)
		write(want)
		if got := Sum256(write); got != sha256.Sum256(want.Bytes()) {
			t.Fatalf("%d bytes: Sum256 differs from the SHA-256 of the encoding", n)
		}
		got := Copy(write)
		if !bytes.Equal(got, want.Bytes()) || cap(got) != len(got) {
			t.Fatalf("%d bytes: Copy gave %d bytes (capacity %d), want %d", n, len(got), cap(got), len(want.Bytes()))
		}
	}
}
