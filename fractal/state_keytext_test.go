package fractal

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/notes"
)

// TestNoteStoreKeysAndRefusals pins the store keys of notes and the text of
// the store path's refusals, which name state keys: they are built into
// buffers of the caller's (decision 183) and must read as the key's String.
// The key is long enough to pass the 256-byte stack buffers.
func TestNoteStoreKeysAndRefusals(t *testing.T) {
	n := &notes.Note{Application: notes.Hash{1}, Owner: notes.Hash{2}, Key: []byte(strings.Repeat("k", 100)), Value: []byte("v")}
	other := *n
	other.Key = []byte("elsewhere")
	for _, note := range []*notes.Note{n, &other} {
		k := note.StateKey()
		sk := k.String()
		if got := noteKeyOf(&k); !bytes.Equal(got, noteKey(sk)) {
			t.Fatalf("noteKeyOf = %q, want %q", got, noteKey(sk))
		}
	}
	sk, otherSK := n.StateKey().String(), other.StateKey().String()

	m := kv.Map{}
	if err := writeNote(m, n, true); err != nil {
		t.Fatal(err)
	}
	if raw := m[string(noteKey(sk))]; !bytes.Equal(raw, n.Encode()) {
		t.Fatalf("stored %x, want the note's encoding", raw)
	}
	got, err := snapshot{m}.Get(n.StateKey())
	if err != nil || got == nil || !bytes.Equal(got.Encode(), n.Encode()) {
		t.Fatalf("Get = %v, %v; want the note", got, err)
	}
	changed := *n
	changed.Value = []byte("w")
	occupied, notLive, differs := writeNote(m, n, true), writeNote(m, &other, false), writeNote(m, &changed, false)
	// A note stored at another note's key is reported, not believed.
	m[string(noteKey(otherSK))] = n.Encode()
	_, misplaced := snapshot{m}.Get(other.StateKey())
	delete(m, string(noteKey(otherSK)))
	refusals := []struct {
		err  error
		want string
	}{
		{occupied, "output key " + sk + " is occupied"},
		{notLive, "input " + otherSK + " is not live"},
		{differs, "input " + sk + " differs from the live note"},
		{misplaced, "fractal: note stored at " + otherSK + " belongs at " + sk},
	}
	for _, r := range refusals {
		if r.err == nil || r.err.Error() != r.want {
			t.Errorf("got %v, want %q", r.err, r.want)
		}
	}
	if raw := m[string(noteKey(sk))]; !bytes.Equal(raw, n.Encode()) {
		t.Fatal("a refused write changed the stored note")
	}
	if len(m) != 1 {
		t.Fatalf("the store holds %d keys, want the one note", len(m))
	}
}
