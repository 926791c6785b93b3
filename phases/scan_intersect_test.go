package phases

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// The alphabet of the scan tests: two state keys in three over it hold a
// note whose value is its index, so a scan's result reads as a list of
// values, and some scans find nothing.
var (
	scanProvs  = [][][]byte{nil, {{1}}, {{2}}}
	scanHashes = []notes.Hash{{1}, {2}}
	scanKeys   = []string{"", "a", "b", "aa", "ab", "ba", "bb", "aab"}
)

func scanState() *memState {
	st := newMemState()
	i := 0
	for _, p := range scanProvs {
		for _, a := range scanHashes {
			for _, o := range scanHashes {
				for _, k := range scanKeys {
					if i++; i%3 != 0 {
						st.put(notes.Note{Provenance: p, Application: a, Owner: o, Key: []byte(k), Value: []byte(fmt.Sprint(i))})
					}
				}
			}
		}
	}
	return st
}

func randomPattern(r *rand.Rand) notes.Pattern {
	p := notes.AnyPattern()
	if r.IntN(2) == 0 {
		p = p.WithProvenance(scanProvs[r.IntN(len(scanProvs))])
	}
	if r.IntN(2) == 0 {
		p = p.WithApplication(scanHashes[r.IntN(len(scanHashes))])
	}
	if r.IntN(2) == 0 {
		p = p.WithOwner(scanHashes[r.IntN(len(scanHashes))])
	}
	k := []byte(scanKeys[r.IntN(len(scanKeys))])
	if r.IntN(2) == 0 {
		return p.WithKey(k)
	}
	return p.WithKeyPrefix(k)
}

func randomConstraints(r *rand.Rand) notes.ConstraintSet {
	c := make(notes.ConstraintSet, 1+r.IntN(4))
	for i := range c {
		c[i] = randomPattern(r)
	}
	return c
}

// referenceScan is scan as it was before it read only the intersections:
// the whole pattern scanned, the notes outside read dropped. ok is false
// when the pattern shares no key with read (the scan aborts).
func referenceScan(st State, read notes.ConstraintSet, p notes.Pattern) (found []*notes.Note, ok bool) {
	if !read.Overlaps(notes.ConstraintSet{p}) {
		return nil, false
	}
	err := st.Scan(p, func(n *notes.Note) error {
		if read.Match(n.StateKey()) {
			found = append(found, n)
		}
		return nil
	})
	if err != nil {
		panic(err) // memState does not fail
	}
	return found, true
}

// fencedState fails the test when its Scan hands out a note outside read
// or p: what the store reads must lie inside the scan's intersection.
type fencedState struct {
	State
	t    *testing.T
	read notes.ConstraintSet
	p    notes.Pattern
}

func (s *fencedState) Scan(q notes.Pattern, fn func(*notes.Note) error) error {
	return s.State.Scan(q, func(n *notes.Note) error {
		if k := n.StateKey(); !s.read.Match(k) || !s.p.Match(k) {
			s.t.Fatalf("scan %s under %v read %s, outside them", s.p, s.read, k)
		}
		return fn(n)
	})
}

func TestScanMergedMatchesReference(t *testing.T) {
	st := scanState()
	r := rand.New(rand.NewPCG(41, 1))
	aborts, empty, found := 0, 0, 0
	for range 3000 {
		read, p := randomConstraints(r), randomPattern(r)
		want, ok := referenceScan(st, read, p)
		parts := intersections(read, p)
		if ok != (len(parts) > 0) {
			t.Fatalf("scan %s under %v: %d intersections, reference overlap %v", p, read, len(parts), ok)
		}
		if !ok {
			aborts++
			continue
		}
		var got []*notes.Note
		if err := scanMerged(&fencedState{State: st, t: t, read: read, p: p}, parts, func(n *notes.Note) error {
			got = append(got, n)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("scan %s under %v: got %s, reference %s", p, read, values(got), values(want))
		}
		if len(want) == 0 {
			empty++
		} else {
			found++
		}
	}
	// The cases must reach aborts, empty and non-empty results.
	if aborts < 100 || empty < 100 || found < 500 {
		t.Fatalf("weak case mix: %d aborts, %d empty, %d found", aborts, empty, found)
	}
}

func values(ns []*notes.Note) string {
	var vs []string
	for _, n := range ns {
		vs = append(vs, string(n.Value))
	}
	return strings.Join(vs, ",")
}

// TestScanThroughLookupMatchesReference runs random scans as lookups: the
// notes, their order and the gas are the reference's, plus LookupCallGas for
// each intersection beyond the first.
func TestScanThroughLookupMatchesReference(t *testing.T) {
	w := newWorld(t)
	st := scanState()
	alice := testKey(t, 1)
	r := rand.New(rand.NewPCG(41, 2))
	merged := 0 // accepted scans of more than one intersection, finding notes
	for i := range 60 {
		read, p := randomConstraints(r), randomPattern(r)
		want, ok := referenceScan(st, read, p)
		src := fmt.Sprintf("for i, n in ipairs(scan(%q)) do print(n.value) end return {}", p.String())
		out, err := Execute(st, w.code, w.pool, lookupTx(t, alice, read, src, 1_000_000))
		if err != nil {
			t.Fatal(err)
		}
		rc := out.Receipt
		if !ok {
			if wantReason := fmt.Sprintf("lookup:1: aborted: scan %s: outside the read constraints", p); rc.Status != Refused || rc.Reason != wantReason {
				t.Fatalf("case %d: %s %q, want refused %q", i, rc.Status, rc.Reason, wantReason)
			}
			continue
		}
		accepted(t, out)
		var logs []string
		for _, n := range want {
			logs = append(logs, "lookup: "+string(n.Value))
		}
		if !slices.Equal(rc.Log, logs) {
			t.Fatalf("case %d: scan %s under %v logged %q, want %q", i, p, read, rc.Log, logs)
		}
		parts := len(intersectionsByOverlap(read, p))
		if parts > 1 && len(want) > 0 {
			merged++
		}
		gas := LookupCallGas * uint64(parts)
		var ret []any
		for _, n := range want {
			gas += LookupNoteGas + spans(len(n.Key)+len(n.Value)+len(n.Provenance)) // provenance entries are 1 byte
			ret = append(ret, n)
		}
		if got := rc.Gas.Lookup - luaGas(t, w, src, ret); got != gas {
			t.Fatalf("case %d: scan %s under %v charged %d, want %d", i, p, read, got, gas)
		}
	}
	if merged < 5 {
		t.Fatalf("only %d cases merge intersections", merged)
	}
}

// intersectionsByOverlap is the read patterns p overlaps, counted without
// Intersect.
func intersectionsByOverlap(read notes.ConstraintSet, p notes.Pattern) []notes.Pattern {
	var out []notes.Pattern
	for _, q := range read {
		if notes.Overlap(p, q) {
			out = append(out, q)
		}
	}
	return out
}

// A pattern matching everything under one exact read constraint reads one
// note, not the store (an attacker's "*/*/*/*" costs what it returns).
func TestScanAnyUnderExactConstraintReadsOneNote(t *testing.T) {
	w := newWorld(t)
	alice := testKey(t, 1)
	for i := range 300 {
		w.st.put(w.gold(alice.Public(), alice.Public(), 1, fmt.Sprintf("%03d", i)))
	}
	target := w.gold(alice.Public(), alice.Public(), 1, "150")
	st := &countingState{State: w.st}
	src := `local found = scan("*/*/*/*") assert(#found == 1) print(found[1].key) return {}`
	out, err := Execute(st, w.code, w.pool, lookupTx(t, alice, notes.ConstraintSet{notes.ExactPattern(target.StateKey())}, src, 1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, out)
	if seen := st.seen.Load(); seen != 1 {
		t.Fatalf("scan read %d notes, want 1", seen)
	}
	if want := "lookup: " + string(target.Key); !slices.Equal(out.Receipt.Log, []string{want}) {
		t.Fatalf("log %q, want %q", out.Receipt.Log, want)
	}
	want := LookupCallGas + LookupNoteGas + spans(len(target.Key)+len(target.Value))
	if got := out.Receipt.Gas.Lookup - luaGas(t, w, src, []any{&target}); got != want {
		t.Fatalf("charged %d, want %d", got, want)
	}
}

// liveState counts the store scans still running, and fails the scan of
// one pattern after its first note.
type liveState struct {
	State
	live    atomic.Int64
	failing string
}

var errDisk = errors.New("disk on fire")

func (s *liveState) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	s.live.Add(1)
	defer s.live.Add(-1)
	first := true
	return s.State.Scan(p, func(n *notes.Note) error {
		if p.String() == s.failing && !first {
			return errDisk
		}
		first = false
		return fn(n)
	})
}

// A consumer that stops, or a store scan that fails, ends every scan.
func TestScanMergedStops(t *testing.T) {
	st := &liveState{State: scanState()}
	app1 := notes.AnyPattern().WithApplication(scanHashes[0])
	owner2 := notes.AnyPattern().WithOwner(scanHashes[1])
	errEnough := errors.New("enough")
	taken := 0
	err := scanMerged(st, []notes.Pattern{app1, owner2}, func(*notes.Note) error {
		if taken++; taken == 5 {
			return errEnough
		}
		return nil
	})
	if err != errEnough || st.live.Load() != 0 {
		t.Fatalf("stopped consumer: err %v, %d scans still running", err, st.live.Load())
	}
	st.failing = owner2.String()
	taken = 0
	err = scanMerged(st, []notes.Pattern{app1, owner2}, func(*notes.Note) error { taken++; return nil })
	if !errors.Is(err, errDisk) || st.live.Load() != 0 || taken == 0 {
		t.Fatalf("failing store: err %v after %d notes, %d scans still running", err, taken, st.live.Load())
	}
}

// BenchmarkScanMerged4 is BenchmarkScan1024's 1,024 notes spread over four
// owners, scanned with "*/*/*/*" under the four owners' prefixes: four
// store scans merged.
func BenchmarkScanMerged4(b *testing.B) {
	w := newWorld(b)
	var read notes.ConstraintSet
	for o := range 4 {
		owner := testKey(b, byte(o+1)).Public()
		for i := range MaxScanNotes / 4 {
			note := w.gold(owner, owner, 1, fmt.Sprintf("%04d", i))
			note.Value = bytes.Repeat([]byte("x"), 1024)
			w.st.put(note)
		}
		read = append(read, w.ownerPrefix(owner))
	}
	alice := testKey(b, 1)
	tx := signed(b, &Tx{Nonce: 1, GasLimit: 10_000_000, Read: read, Write: read,
		Lookup: []byte(`local found = scan("*/*/*/*") assert(#found == 1024) return {}`), Signers: []keys.PublicKey{alice.Public()}}, alice)
	var gas uint64
	for b.Loop() {
		out, err := Execute(w.st, w.code, w.pool, tx)
		if err != nil || out.Receipt.Status != Accepted {
			b.Fatal(err, out.Receipt.Err())
		}
		gas = out.Receipt.Gas.Lookup
	}
	b.ReportMetric(float64(gas), "gas/op")
}
