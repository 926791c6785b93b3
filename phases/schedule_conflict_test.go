package phases

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
)

func TestConflicts(t *testing.T) {
	app := strings.Repeat("aa", 32)
	own := strings.Repeat("bb", 32)
	k := func(key string) string { return "/" + app + "/" + own + "/" + key }
	tx := func(read, write []string) *Tx {
		var r, w notes.ConstraintSet
		for _, s := range read {
			r = append(r, mustPattern(t, s))
		}
		for _, s := range write {
			w = append(w, mustPattern(t, s))
		}
		return &Tx{Read: r, Write: w}
	}
	txs := []*Tx{
		0: tx([]string{k("0101")}, []string{k("0101")}),
		1: tx([]string{k("0102")}, []string{k("0102")}),      // independent of 0
		2: tx([]string{k("0101")}, nil),                      // reads what 0 writes
		3: tx(nil, []string{k("01*")}),                       // writes over 0, 1, 2's keys
		4: tx([]string{"*/*/*/*"}, nil),                      // reads everything: after 0, 1, 3
		5: tx([]string{k("0103")}, nil),                      // read-only beside read-only 4: no conflict with 4
		6: tx(nil, []string{"/" + app + "/" + own + "/ff*"}), // disjoint prefix, but 4 reads it
	}
	got := conflicts(txs, []int{0, 1, 2, 3, 4, 5, 6})
	want := map[int][]int{2: {0}, 3: {0, 1, 2}, 4: {0, 1, 3}, 5: {3}, 6: {4}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("conflicts = %v, want %v", got, want)
	}
	// Check against the definition, pair by pair.
	for i := range txs {
		for j := 0; j < i; j++ {
			def := txs[i].Write.Overlaps(txs[j].Read) || txs[i].Write.Overlaps(txs[j].Write) || txs[j].Write.Overlaps(txs[i].Read)
			has := false
			for _, d := range got[i] {
				has = has || d == j
			}
			if def != has {
				t.Errorf("tx %d vs %d: definition %v, scheduler %v", i, j, def, has)
			}
		}
	}
}

func TestOverlayScanOrder(t *testing.T) {
	base := newMemState()
	mk := func(key string) notes.Note { return notes.Note{Key: []byte(key), Value: []byte("v")} }
	for _, k := range []string{"a", "c", "e"} {
		base.put(mk(k))
	}
	ov := newOverlay(base)
	ov.apply(&Outcome{Spent: []notes.Note{mk("c")}, Created: []notes.Note{mk("b"), mk("f")}})
	ov.apply(&Outcome{Spent: []notes.Note{mk("e")}, Created: []notes.Note{{Key: []byte("e"), Value: []byte("new")}}})
	var got []string
	if err := ov.Scan(notes.AnyPattern(), func(n *notes.Note) error {
		got = append(got, string(n.Key)+"="+string(n.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=v", "b=v", "e=new", "f=v"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("scan = %v, want %v", got, want)
	}
	c := mk("c")
	if n, _ := ov.Get(c.StateKey()); n != nil {
		t.Fatal("spent note still visible")
	}
	if n, _ := base.Get(c.StateKey()); n == nil {
		t.Fatal("overlay changed the base")
	}
}

// wildcardBlock is n transactions that each read and write 256 patterns
// with an empty prefix (any provenance): every pattern nests with every
// other, the worst case of the prefix-sorted comparison.
func wildcardBlock(t testing.TB, n int) ([]*Tx, []int) {
	txs := make([]*Tx, n)
	idx := make([]int, n)
	for i := range txs {
		var set notes.ConstraintSet
		for j := 0; j < notes.MaxPatterns; j++ {
			set = append(set, mustPattern(t, fmt.Sprintf("*/*/*/%02x%02x", i, j)))
		}
		txs[i], idx[i] = &Tx{Read: set, Write: set}, i
	}
	return txs, idx
}

// TestConflictsBoundedWork: a block of all-nesting patterns costs at most
// the bound (8 transactions cost 8M comparisons, a full block hours before the
// bound), and the fallback still orders every conflicting pair.
func TestConflictsBoundedWork(t *testing.T) {
	txs, idx := wildcardBlock(t, 8)
	deps, work := conflictsWork(txs, idx, nil)
	if budget := conflictBaseWork + conflictWorkPerPattern*8*2*notes.MaxPatterns; work > budget+1 {
		t.Fatalf("conflict analysis made %d comparisons, bound %d", work, budget)
	}
	// before reports whether j runs before i finishes waiting (reachable).
	var before func(i, j int) bool
	before = func(i, j int) bool {
		for _, d := range deps[i] {
			if d == j || before(d, j) {
				return true
			}
		}
		return false
	}
	for i := range txs {
		for j := 0; j < i; j++ {
			if txs[i].Write.Overlaps(txs[j].Write) && !before(i, j) {
				t.Fatalf("tx %d does not wait for conflicting tx %d (deps %v)", i, j, deps[i])
			}
		}
	}
}

func BenchmarkConflictsWildcard(b *testing.B) {
	txs, idx := wildcardBlock(b, 256)
	b.ResetTimer()
	for range b.N {
		conflicts(txs, idx)
	}
}
