package node

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/keys"
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
	in, err := fractal.Init(filepath.Join(t.TempDir(), "home"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(in, DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
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
