package fractal

import (
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/notes"
)

// NotesPage lists every matching note once, in order, whatever the page
// size and however short the scan budget cuts the pages; a page cut by the
// budget may be empty but says where to go on.
func TestNotesPage(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	var kv []string
	for i := 0; i < 40; i++ {
		kv = append(kv, fmt.Sprintf("k%02d", i), "v")
	}
	f.commit(t, f.mint(f.allow, f.allow, f.alice, kv...))
	for _, c := range []struct{ limit, budget int }{{1, 1000}, {5, 1000}, {100, 1000}, {2, 3}, {1, 1}} {
		var got []string
		after := ""
		for {
			page, next, h, err := f.in.NotesPage(notes.AnyPattern(), after, c.limit, c.budget)
			if err != nil || h != 1 {
				t.Fatalf("limit %d budget %d: height %d, %v", c.limit, c.budget, h, err)
			}
			if len(page) > c.limit {
				t.Fatalf("limit %d: a page of %d", c.limit, len(page))
			}
			for _, n := range page {
				got = append(got, n.StateKey().String())
			}
			if next == "" {
				break
			}
			if next <= after {
				t.Fatalf("limit %d budget %d: next %q does not move past %q", c.limit, c.budget, next, after)
			}
			after = next
		}
		if len(got) != 40 {
			t.Fatalf("limit %d budget %d: %d notes listed, want 40", c.limit, c.budget, len(got))
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("limit %d budget %d: out of order", c.limit, c.budget)
			}
		}
	}
	// A pattern with no literal prefix matching one key: the scan looks at
	// every note, three per page, and the pages before and after the match
	// come back empty with a token.
	one, err := notes.ParsePattern("*/*/*/" + fmt.Sprintf("%x", "k05"))
	if err != nil {
		t.Fatal(err)
	}
	var found []*notes.Note
	after, empty := "", 0
	for {
		page, next, _, err := f.in.NotesPage(one, after, 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			empty++
		}
		found = append(found, page...)
		if next == "" {
			break
		}
		after = next
	}
	if len(found) != 1 || string(found[0].Key) != "k05" || empty < 10 {
		t.Fatalf("one note of 40 by a scan budget of 3: found %d, %d empty pages", len(found), empty)
	}
}
