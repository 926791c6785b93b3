package fractal

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/phases"
)

func TestPersistenceAcrossRestart(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	mint := f.mint(f.allow, f.allow, f.alice, "a", "1")
	f.commit(t, mint)
	queued := f.mint(f.allow, f.allow, f.alice, "q", "2")
	if _, err := f.in.Submit(queued); err != nil {
		t.Fatal(err)
	}
	head, _ := f.in.Head()
	before := dumpStore(t, f.in)
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}

	in, err := Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f.in = in
	if dumpStore(t, in) != before {
		t.Fatal("store differs after reopening")
	}
	if h, _ := in.Head(); h.Hash() != head.Hash() {
		t.Fatal("head differs after reopening")
	}
	if _, err := in.Submit(mint); err == nil || !strings.Contains(err.Error(), "replayed transaction: already executed in block 1") {
		t.Fatalf("replay after restart: %v", err)
	}
	// The queue survived: sealing now commits the queued transaction, and
	// code deployed before the restart is found (compiled again).
	s, err := in.Seal(context.Background())
	if err != nil || s.Block == nil || s.Block.Height != 2 || s.Block.TxIDs[0] != queued.ID() {
		t.Fatalf("seal after restart: %+v, %v", s, err)
	}
	if got := strings.Join(liveKeys(t, in), " "); got != "a=1 q=2" {
		t.Fatalf("live notes %q", got)
	}
}

// TestSchedulerMatchesSerial seals one mixed workload (independent mints,
// chains of spends, conflicts, refusals) on an instance using the scheduler
// and on one running serially: receipts, per-transaction roots and notes
// must be byte-identical.
func TestSchedulerMatchesSerial(t *testing.T) {
	serialCfg := oneKeyConfig() // 40 transactions of two keys in one block
	serialCfg.Serial = true
	par, ser := newFixture(t, oneKeyConfig()), newFixture(t, serialCfg)
	ser.alice, ser.bob = par.alice, par.bob

	var txs []*phases.Tx
	for _, f := range []*fixture{par, ser} {
		txs = txs[:0]
		for i := 0; i < 8; i++ {
			k := string(rune('a' + i))
			txs = append(txs, f.mint(f.allow, f.allow, f.alice, k, "1"))        // independent keys, one app
			txs = append(txs, f.move(f.allow, f.allow, f.alice, k, k+"2", "2")) // spends the note just made
			txs = append(txs, f.mint(f.allow, f.signed, f.bob, k, f.bob.Public().String()))
			txs = append(txs, f.mint(f.deny, f.allow, f.alice, k, "x"))         // refused
			txs = append(txs, f.move(f.allow, f.allow, f.alice, k, k+"3", "3")) // refused: a is gone
		}
		for _, tx := range txs {
			if _, err := f.in.Submit(tx); err != nil {
				t.Fatal(err)
			}
		}
	}
	sp, err := par.in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := ser.in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.Receipts) != 40 || len(ss.Receipts) != 40 {
		t.Fatalf("%d and %d receipts", len(sp.Receipts), len(ss.Receipts))
	}
	accepted := 0
	for i := range sp.Receipts {
		if !bytes.Equal(sp.Receipts[i].Encode(), ss.Receipts[i].Encode()) {
			t.Fatalf("receipt %d differs", i)
		}
		if sp.Receipts[i].Status == phases.Accepted {
			accepted++
		}
	}
	if accepted != 24 {
		t.Fatalf("%d accepted, want 24", accepted)
	}
	if len(sp.Block.Roots) != 24 {
		t.Fatalf("%d roots", len(sp.Block.Roots))
	}
	for i := range sp.Block.Roots {
		if sp.Block.Roots[i] != ss.Block.Roots[i] || sp.Block.TxIDs[i] != ss.Block.TxIDs[i] {
			t.Fatalf("root or transaction %d differs", i)
		}
	}
	if a, b := strings.Join(liveKeys(t, par.in), " "), strings.Join(liveKeys(t, ser.in), " "); a != b {
		t.Fatalf("notes differ:\n%s\n%s", a, b)
	}
}
