package fractal

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// TestSealForWaitsForItsBlock: with blocks of two, the fifth queued
// transaction is decided in the third seal; SealFor seals the two before it
// as usual and returns its receipt with the third block.
func TestSealForWaitsForItsBlock(t *testing.T) {
	cfg := oneKeyConfig() // alice signs every transaction
	cfg.MaxBlockTxs = 2
	f := newFixture(t, cfg)
	var ids []notes.Hash
	for i := range 5 {
		id, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, fmt.Sprint("k", i), "v"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rc, b, err := f.in.SealFor(t.Context(), ids[4])
	if err != nil {
		t.Fatal(err)
	}
	if rc.TxID != ids[4] || rc.Status != phases.Accepted || b == nil || b.Height != 3 || len(b.TxIDs) != 1 || b.TxIDs[0] != ids[4] {
		t.Fatalf("receipt %x %v, block %+v; want the fifth accepted in block 3", rc.TxID[:8], rc.Status, b)
	}
	if got := fmt.Sprint(liveKeys(t, f.in)); got != "[k0=v k1=v k2=v k3=v k4=v]" {
		t.Fatalf("live keys %s", got)
	}
}

// TestSealForRefusedAndMissing: a refused transaction's receipt comes with
// no block and leaves no trace; an ID not queued, and a done context, are
// refused without sealing anything.
func TestSealForRefusedAndMissing(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	before := dumpStore(t, f.in)
	id, err := f.in.Submit(f.mint(f.deny, f.allow, f.alice, "k", "v"))
	if err != nil {
		t.Fatal(err)
	}
	rc, b, err := f.in.SealFor(t.Context(), id)
	if err != nil || rc.Status == phases.Accepted || rc.Phase != phases.PhaseValidity || b != nil {
		t.Fatalf("receipt %v, block %v, err %v; want refused in validity, no block", rc.Err(), b, err)
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("the refused transaction changed the store")
	}

	if _, _, err := f.in.SealFor(t.Context(), notes.Hash{1, 2, 3}); err == nil || err.Error() != "transaction 0102030000000000 was not sealed" {
		t.Fatalf("err %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	id, err = f.in.Submit(f.mint(f.allow, f.allow, f.alice, "k", "v"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.in.SealFor(ctx, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if q, err := f.in.Queued(); err != nil || len(q) != 1 || q[0] != id {
		t.Fatalf("queue %x, %v: want the transaction still queued", q, err)
	}
}

// TestSealUntilPlaced: an encrypted transaction queued behind a plaintext
// one is placed in a fixed batch by the seals that first run the plaintext
// one; a second one, behind the batch that now waits for shares, is left
// queued and reported waiting.
func TestSealUntilPlaced(t *testing.T) {
	f := newEncFixture(t, 3, 2, false)
	plain, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, "plain", "1"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := f.in.SubmitEncryptedTx(f.mint(f.allow, f.allow, f.alice, "secret", "1"))
	if err != nil {
		t.Fatal(err)
	}
	seals, fixed, err := f.in.SealUntilPlaced(t.Context(), pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(seals) != 2 || len(seals[0].Receipts) != 1 || seals[0].Receipts[0].TxID != plain || fixed == nil ||
		fixed.State != BatchFixed || len(fixed.Batch.PayloadIDs) != 1 || fixed.Batch.PayloadIDs[0] != pid {
		t.Fatalf("%d seals, batch %+v; want the plaintext block, then a batch fixed with the payload", len(seals), fixed)
	}
	later, err := f.in.SubmitEncryptedTx(f.mint(f.allow, f.allow, f.alice, "later", "1"))
	if err != nil {
		t.Fatal(err)
	}
	seals, fixed, err = f.in.SealUntilPlaced(t.Context(), later)
	if err != nil || fixed != nil || len(seals) != 1 || seals[0].Encrypted == nil || seals[0].Encrypted.State != BatchWaiting {
		t.Fatalf("%d seals, batch %+v, %v; want one seal reporting the waiting batch", len(seals), fixed, err)
	}
	if q, err := f.in.QueuedEncrypted(); err != nil || len(q) != 1 {
		t.Fatalf("queued encrypted %d, %v; want the later one", len(q), err)
	}
}
