package notes

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/internal/enc"
)

// FuzzDecode: whatever Decode accepts re-encodes to the same bytes and is a
// valid note.
func FuzzDecode(f *testing.F) {
	f.Add(goldenNote().Encode())
	f.Add((&Note{}).Encode())
	f.Add((&Note{Provenance: [][]byte{{1}, {}}}).Encode())
	f.Add((&Note{Key: make([]byte, MaxKey+1)}).Encode())
	f.Add([]byte{})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Decode(b)
		if err != nil {
			if n != nil {
				t.Fatal("refused decode returned a note")
			}
			return
		}
		if !bytes.Equal(n.Encode(), b) {
			t.Fatalf("decode→encode changed the bytes")
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("decoded note is invalid: %v", err)
		}
	})
}

// FuzzParseStateKey: whatever ParseStateKey accepts renders back to the same
// text, is valid and is matched by its exact pattern.
func FuzzParseStateKey(f *testing.F) {
	f.Add(goldenStateKey)
	f.Add("/" + appHex + "/" + ownerHex + "/")
	f.Add("ab,,cd/" + appHex + "/" + ownerHex + "/6b")
	f.Add("AB/" + appHex + "/" + ownerHex + "/6b")
	f.Add("*/*/*/*")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseStateKey(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "notes: state key: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if got := k.String(); got != s {
			t.Fatalf("String(Parse(%q)) = %q", s, got)
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("parsed key is invalid: %v", err)
		}
		if p := ExactPattern(k); !p.Match(k) || p.String() != s || p.Prefix() != s {
			t.Fatalf("exact pattern %s does not fit %s", p, s)
		}
	})
}

// FuzzParsePattern: whatever ParsePattern accepts renders back to the same
// text and survives the binary form unchanged.
func FuzzParsePattern(f *testing.F) {
	f.Add("*/*/*/*")
	f.Add(goldenPattern)
	f.Add(goldenStateKey)
	f.Add(pat("ab,*", "*", "*", "6b*"))
	f.Add(pat("*", "*", "*", "6b6*"))
	f.Add(pat("", appHex, "*", "**"))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePattern(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "notes: pattern: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if got := p.String(); got != s {
			t.Fatalf("String(Parse(%q)) = %q", s, got)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed pattern is invalid: %v", err)
		}
		if !Overlap(p, p) || !strings.HasPrefix(s, p.Prefix()) {
			t.Fatalf("%s: no self-overlap or bad prefix %q", s, p.Prefix())
		}
		w := enc.NewWriter(0)
		p.Encode(w)
		r := enc.NewReader(w.Bytes())
		if back := DecodePattern(r); r.Finish() != nil || back.String() != s {
			t.Fatalf("binary round trip of %s gave %s, %v", s, back, r.Finish())
		}
	})
}

// FuzzDecodeConstraintSet: whatever DecodeConstraintSet accepts re-encodes to
// the same bytes.
func FuzzDecodeConstraintSet(f *testing.F) {
	w := enc.NewWriter(0)
	ConstraintSet{AnyPattern(), ExactPattern(goldenNote().StateKey()), PatternFromKeyPrefix(goldenNote().StateKey())}.Encode(w)
	f.Add(w.Bytes())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1, 2})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := enc.NewReader(b)
		c := DecodeConstraintSet(r)
		if r.Finish() != nil {
			return
		}
		w := enc.NewWriter(len(b))
		c.Encode(w)
		if !bytes.Equal(w.Bytes(), b) {
			t.Fatal("decode→encode changed the bytes")
		}
		for _, p := range c {
			if err := p.Validate(); err != nil {
				t.Fatalf("decoded pattern %s is invalid: %v", p, err)
			}
		}
	})
}

// FuzzIntersect: for any two parsed patterns and any state key, the
// intersection matches the key exactly when both patterns do, it exists
// exactly when they overlap, and it is a valid pattern whose text parses back.
func FuzzIntersect(f *testing.F) {
	f.Add("*/*/*/*", goldenPattern, goldenStateKey)
	f.Add(pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6b6c*"), pat("", appHex, appHex, "6b6c6d"))
	f.Add(pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6b"), pat("", appHex, appHex, "6b"))
	f.Add(pat("0a", "*", "*", "*"), pat("0a,0b", "*", "*", "*"), pat("0a", appHex, appHex, ""))
	f.Fuzz(func(t *testing.T, as, bs, ks string) {
		a, errA := ParsePattern(as)
		b, errB := ParsePattern(bs)
		if errA != nil || errB != nil {
			return
		}
		p, ok := Intersect(a, b)
		if ok != Overlap(a, b) {
			t.Fatalf("Intersect(%s, %s) ok = %v, Overlap disagrees", as, bs, ok)
		}
		if ok {
			if err := p.Validate(); err != nil {
				t.Fatalf("Intersect(%s, %s) = %s is invalid: %v", as, bs, p, err)
			}
			if back, err := ParsePattern(p.String()); err != nil || back.String() != p.String() {
				t.Fatalf("Intersect(%s, %s) = %s does not parse back: %v", as, bs, p, err)
			}
		}
		k, err := ParseStateKey(ks)
		if err != nil {
			return
		}
		if got, want := ok && p.Match(k), a.Match(k) && b.Match(k); got != want {
			t.Fatalf("Intersect(%s, %s) = %s (%v) matches %s: %v, both match: %v", as, bs, p, ok, ks, got, want)
		}
	})
}
