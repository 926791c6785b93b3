package fractal

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// TestFollowAcrossTwoTransactions: transaction 1 labels its outputs "pay"
// and "change"; transaction 2, in a later block, finds "pay" with
// follow(txid of 1) and spends it; transaction 3 follows 2's "next" to
// spend what 2 made. follow of an unknown transaction, or of one whose
// labelled outputs lie outside the read constraints, refuses the
// transaction in lookup with the reason, and nothing is stored.
func TestFollowAcrossTwoTransactions(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	labelled := func(key, label string) string {
		return strings.TrimSuffix(luaNote(f.allow, f.allow, key, "1"), "}") + ", label=" + fmt.Sprintf("%q", label) + "}"
	}
	first := f.mint(f.allow, f.allow, f.alice)
	first.Calculation = []byte("return {" + labelled("p", "pay") + ", " + labelled("c", "change") + "}")
	f.commit(t, f.sign(first, f.alice))
	follows := func(id notes.Hash, label, key string, read notes.Pattern) *phases.Tx {
		tx := f.mint(f.allow, f.allow, f.alice)
		tx.Read = notes.ConstraintSet{read}
		tx.Lookup = []byte(fmt.Sprintf("return {follow(%q)[%q]}", hex.EncodeToString(id[:]), label))
		tx.Calculation = []byte("return {" + labelled(key, "next") + "}")
		return f.sign(tx, f.alice)
	}
	all := appPattern(f.allow, f.allow)
	second := follows(first.ID(), "pay", "n", all)
	s := f.commit(t, second)
	if rc := s.Receipts[0]; len(rc.Inputs) != 1 || string(rc.Inputs[0].Key.Key) != "p" || fmt.Sprint(rc.Labels) != "[{1 next}]" {
		t.Fatalf("second: %+v", rc)
	}
	f.commit(t, follows(second.ID(), "next", "m", all))
	if got := strings.Join(liveKeys(t, f.in), " "); got != "c=1 m=1" {
		t.Fatalf("live notes %q", got)
	}
	onlyC := notes.ExactPattern(notes.StateKey{Application: f.allow, Owner: f.allow, Key: []byte("z")})
	for _, c := range []struct {
		tx   *phases.Tx
		want string
	}{
		{follows(notes.Hash{7}, "pay", "x", all), "follow 0700000000000000000000000000000000000000000000000000000000000000: no earlier block committed this transaction with labelled outputs"},
		{follows(first.ID(), "change", "y", onlyC), fmt.Sprintf("follow %x: its labelled outputs are outside the read constraints", first.ID())},
	} {
		before := dumpStore(t, f.in)
		rc, _, err := f.in.Simulate(t.Context(), c.tx, false)
		if err != nil || rc.Phase != phases.PhaseLookup || !strings.Contains(rc.Reason, c.want) {
			t.Fatalf("simulate: %+v %v, want %q", rc, err, c.want)
		}
		if dumpStore(t, f.in) != before {
			t.Fatal("Simulate changed the store")
		}
	}
	if _, err := f.in.Verify(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
}
