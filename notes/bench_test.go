package notes

import (
	"testing"
)

func BenchmarkEncode(b *testing.B) {
	n := goldenNote()
	for b.Loop() {
		n.Encode()
	}
}

func BenchmarkDecode(b *testing.B) {
	enc := goldenNote().Encode()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkID(b *testing.B) {
	n := goldenNote()
	for b.Loop() {
		n.ID()
	}
}

func BenchmarkStateKeyString(b *testing.B) {
	k := goldenNote().StateKey()
	for b.Loop() {
		_ = k.String()
	}
}

func BenchmarkParseStateKey(b *testing.B) {
	for b.Loop() {
		if _, err := ParseStateKey(goldenStateKey); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPatternMatch(b *testing.B) {
	p := PatternFromKeyPrefix(goldenNote().StateKey()).WithKeyPrefix([]byte("ke"))
	k := goldenNote().StateKey()
	for b.Loop() {
		if !p.Match(k) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkConstraintSetOverlaps is the scheduler's conflict check between
// two transactions with 16 patterns each that do not overlap (the worst case:
// every pair is compared).
func BenchmarkConstraintSetOverlaps(b *testing.B) {
	var x, y ConstraintSet
	for i := range 16 {
		k := goldenNote().StateKey()
		x = append(x, PatternFromKeyPrefix(k).WithKeyPrefix([]byte{'a', byte(i)}))
		y = append(y, PatternFromKeyPrefix(k).WithKeyPrefix([]byte{'b', byte(i)}))
	}
	for b.Loop() {
		if x.Overlaps(y) {
			b.Fatal("overlap")
		}
	}
}
