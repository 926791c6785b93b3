package relay_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/relay"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// gold waits until the node holds a GOLD note whose provenance is want
// (instance IDs, most recent first) and returns it.
func gold(t *testing.T, c *client.Client, tk *nodetest.Token, want ...[32]byte) *notes.Note {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		list, err := c.Notes(context.Background(), fmt.Sprintf("*/%x/%x/*", tk.App, tk.Sig))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range list {
			if len(n.Provenance) != len(want) {
				continue
			}
			same := true
			for i := range want {
				same = same && hex.EncodeToString(n.Provenance[i]) == hex.EncodeToString(want[i][:])
			}
			if same {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no GOLD note with provenance %x on %s", want, c.URL)
	return nil
}

// TestTwoNodesFollow: two nodes that trust each other and two relayer
// daemons between them, one each way; a GOLD note moves a → b → a, and
// arrives back with provenance [b, a], every import signed by the
// relayers' own key.
func TestTwoNodesFollow(t *testing.T) {
	p := nodetest.StartPair(t, func(a, b *nodetest.Token) { a.Trust(t, b); b.Trust(t, a) })
	a, alice, seed, ida, idb, na, nb := p.A, p.Alice, p.Seed, p.IDA, p.IDB, p.NA, p.NB

	relayer := nodetest.Key(t) // the relayers' key: neither instance's
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	passes := make(chan *fractal.RelayResult, 100)
	done := make(chan error, 2)
	for _, ends := range [][2]*client.Client{{na.Client, nb.Client}, {nb.Client, na.Client}} {
		r := relay.New(ends[0], ends[1], relayer, quiet)
		go func() {
			done <- r.Follow(ctx, func(res *fractal.RelayResult) {
				if res.Pending > 0 {
					passes <- res
				}
			})
		}()
	}

	out, err := na.Client.Submit(ctx, nodetest.ExportTx(t, alice, idb, seed.Key, 1), true)
	if err != nil || out.Receipt.Err() != nil {
		t.Fatalf("export a → b: %v %+v", err, out)
	}
	onB := gold(t, nb.Client, a, ida)
	out, err = nb.Client.Submit(ctx, nodetest.ExportTx(t, alice, ida, onB.StateKey(), 1), true)
	if err != nil || out.Receipt.Err() != nil {
		t.Fatalf("export b → a: %v %+v", err, out)
	}
	back := gold(t, na.Client, a, idb, ida)
	if string(back.Value) != seed.Value || string(back.Key) != string(seed.Key.Key) {
		t.Fatalf("the note came back as %q at %q, left as %q at %q", back.Value, back.Key, seed.Value, seed.Key.Key)
	}
	// The import on a (its last block) was signed by the relayer's key.
	head, err := na.Client.Block(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := na.Client.API.GetTransaction(ctx, connect.NewRequest(&v1.GetTransactionRequest{TxId: hex.EncodeToString(head.TxIDs[0][:])}))
	if err != nil {
		t.Fatal(err)
	}
	imp, err := phases.DecodeTx(r.Msg.Transaction.Encoding)
	if err != nil || !phases.IsImport(imp) || len(imp.Signers) != 1 || imp.Signers[0] != relayer.Public() {
		t.Fatalf("the import on a: %v, signers %v, want the relayer's key", err, imp.Signers)
	}
	// A relayer reports its pass once the import's receipt reached it,
	// which may be after the note is seen on the destination.
	imports := 0
	count := func(res *fractal.RelayResult) {
		if len(res.Refused) > 0 {
			t.Fatalf("a relay pass had refusals: %v", res.Refused[0].Err())
		}
		imports += len(res.Imported)
	}
	for deadline := time.After(30 * time.Second); imports < 2; {
		select {
		case res := <-passes:
			count(res)
		case <-deadline:
			t.Fatalf("%d imports reported in 30 s, want 2", imports)
		}
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for len(passes) > 0 {
		count(<-passes)
	}
	if imports != 2 {
		t.Fatalf("%d imports reported, want 2", imports)
	}
	// Relaying again moves nothing.
	res, err := relay.New(na.Client, nb.Client, relayer, quiet).Once(context.Background())
	if err != nil || res.Pending != 0 {
		t.Fatalf("second relay: %+v %v", res, err)
	}
}

// A destination that does not trust the source is refused before anything
// is submitted.
func TestUntrustedSource(t *testing.T) {
	a, b := nodetest.NewToken(t), nodetest.NewToken(t)
	a.Close(t)
	b.Close(t)
	na, nb := nodetest.Start(t, a.Home, nodetest.Config()), nodetest.Start(t, b.Home, nodetest.Config())
	_, err := relay.New(na.Client, nb.Client, nodetest.Key(t), quiet).Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is not in the destination's trust file (fractal peers add)") {
		t.Fatalf("relay to a node that does not trust the source: %v", err)
	}
}
