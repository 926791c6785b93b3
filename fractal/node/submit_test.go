package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// TestRefusalKinds: what SubmitAll refuses inside its write gets the kind
// the API answers with and the node's message: a full mempool is
// Exhausted (resource_exhausted) whichever check saw it first, the node's
// count or the instance's own bound; a transaction queued already is
// Exists; a bad signature is Invalid.
func TestRefusalKinds(t *testing.T) {
	cfg := fractal.DefaultConfig()
	cfg.MaxQueue = 1
	n, in, key := newTestNode(t, cfg)
	tx := func(i int) *phases.Tx {
		tx := &phases.Tx{GasLimit: 1000, Lookup: []byte("return {}"), Calculation: []byte(fmt.Sprintf("return {} -- %d", i))}
		if err := tx.SignAll(rand.Reader, []keys.PrivateKey{key}); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	first, second := tx(1), tx(2)
	forged := tx(3)
	forged.Signatures[0][0] ^= 1
	short := func(tx *phases.Tx) []byte { id := tx.ID(); return id[:8] }
	errs := in.SubmitAll([]*phases.Tx{first, second, first, forged})
	if errs[0] != nil {
		t.Fatalf("the first submission: %v", errs[0])
	}
	for i, c := range []struct {
		tx   *phases.Tx
		kind Kind
		want string
	}{
		{second, Exhausted, fmt.Sprintf("fractal: submit %x: mempool full (1 queued, max_queue 1)", short(second))},
		{first, Exists, fmt.Sprintf("transaction %x is already queued", short(first))},
		{forged, Invalid, fmt.Sprintf("fractal: submit %x: signature of signer 1 (%s) does not verify", short(forged), key.Public())},
	} {
		got := n.refusal(&submission{tx: c.tx, id: c.tx.ID()}, errs[i+1])
		if got.Kind != c.kind || got.Error() != c.want {
			t.Errorf("submission %d: kind %d %q, want kind %d %q", i+2, got.Kind, got.Error(), c.kind, c.want)
		}
	}
}

// TestPrecheckResent: Precheck (a validator's API runs it before CheckTx)
// refuses a resend of a transaction a block refused in lookup, as Submit
// does, with Precondition and the lookup's reason; a transaction the node
// does not remember refused passes (decision 170).
func TestPrecheckResent(t *testing.T) {
	n, in, key := newTestNode(t, fractal.DefaultConfig())
	missing := notes.StateKey{Application: notes.Hash{1}, Owner: notes.Hash{2}, Key: []byte("k")}
	spend := func(nonce uint64) *phases.Tx {
		tx := &phases.Tx{Nonce: nonce, GasLimit: 100_000, Read: notes.ConstraintSet{notes.ExactPattern(missing)},
			Write: notes.ConstraintSet{notes.ExactPattern(missing)}, Lookup: []byte(fmt.Sprintf("return {%q}", missing.String())),
			Calculation: []byte("return {}")}
		if err := tx.SignAll(rand.Reader, []keys.PrivateKey{key}); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	tx, other := spend(1), spend(2)
	if _, err := in.Submit(tx); err != nil {
		t.Fatal(err)
	}
	s, err := in.Seal(context.Background())
	if err != nil || len(s.Receipts) != 1 || s.Receipts[0].Phase != phases.PhaseLookup {
		t.Fatalf("seal: %+v %v, want one receipt refused in lookup", s, err)
	}
	n.Announce(s, nil) // as the seal loop, or a validator's commit, does
	id := tx.ID()
	want := fmt.Sprintf("transaction %x was refused in lookup in a recent block and would be again: %s", id[:8], s.Receipts[0].Reason)
	var ne *Error
	if err := n.Precheck(tx); !errors.As(err, &ne) || ne.Kind != Precondition || err.Error() != want {
		t.Fatalf("precheck of the resend: %v, want Precondition %q", err, want)
	}
	if err := n.Precheck(other); err != nil {
		t.Fatalf("precheck of a transaction never refused: %v", err)
	}
}

// newTestNode is a node on a fresh instance of cfg in a temporary folder
// (closed when the test ends), the instance, and a fresh key to sign with.
func newTestNode(t *testing.T, cfg fractal.Config) (*Node, *fractal.Instance, keys.PrivateKey) {
	t.Helper()
	in, err := fractal.Init(filepath.Join(t.TempDir(), "home"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(in, DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return n, in, key
}
