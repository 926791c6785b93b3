package wallet_test

// Tests of the pool component (package shielded) that need real proofs;
// they live here to share the package's one development setup.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// poolDB is a bare store for the pool component alone: the component sees
// its storage only through package kv.
func poolDB(t testing.TB) kv.Map { return kv.Map{} }

// sealPool runs one block of txs through the pool (all taken as accepted by
// phases 1–3) and returns Admit's errors.
func sealPool(t testing.TB, db kv.Map, p *shielded.Pool, height uint64, txs ...*phases.Tx) []error {
	t.Helper()
	b, err := p.Begin(db)
	if err != nil {
		t.Fatal(err)
	}
	errs := b.Admit(txs)
	for _, tx := range txs {
		if err := b.Apply(tx); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Write(db, height); err != nil {
		t.Fatal(err)
	}
	return errs
}

// shieldFromNowhere builds a shield transaction anchored at the empty tree
// (a wallet that never synced) spending a made-up token note; the pool
// component alone never runs its Lua code.
func shieldFromNowhere(t testing.TB, w *world, wl *wallet.Wallet) *phases.Tx {
	t.Helper()
	n := &notes.Note{Application: w.app, Owner: w.sig, Key: []byte(w.alice.Public().String() + ":x"), Value: []byte(w.tok.Name + ":5")}
	tx, err := wl.Shield(w.t.Context(), w.pk, w.tok, 5, []*notes.Note{n}, w.alice, wl.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestStaleAnchor: with a window of two roots, a root two tree-changing
// blocks old is refused.
func TestStaleAnchor(t *testing.T) {
	w := newWorld(t)
	_, dir := zkKeys(t)
	db, p := poolDB(t), shielded.New(dir, 2)
	wl := w.newWallet()
	t1, t2, t3 := shieldFromNowhere(t, w, wl), shieldFromNowhere(t, w, wl), shieldFromNowhere(t, w, wl)
	for h, tx := range []*phases.Tx{t1, t2} {
		if errs := sealPool(t, db, p, uint64(h+1), tx); errs[0] != nil {
			t.Fatalf("block %d: %v", h+1, errs[0])
		}
	}
	errs := sealPool(t, db, p, 3, t3)
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "is not one of the 2 recent commitment-tree roots (wrong or stale anchor)") {
		t.Fatalf("stale anchor: %v", errs[0])
	}
	// A transparent transaction is not the pool's business.
	plain := &phases.Tx{GasLimit: 1, Extradata: []byte("fractal-shielded/0 no")}
	if errs := sealPool(t, db, p, 4, plain); errs[0] != nil {
		t.Fatalf("transparent transaction: %v", errs[0])
	}
}

// TestPoolNoteNeedsProof: a transparent transaction cannot move the pool
// note, and a transaction that claims to be shielded without a valid
// bundle is refused before it runs.
func TestPoolNoteNeedsProof(t *testing.T) {
	w, _ := shieldedWorld(t)
	pool := notes.StateKey{Application: w.app, Owner: shielded.PoolOwner, Key: []byte("shielded-pool:" + w.tok.Name)}
	steal := func(extradata string) *phases.Tx {
		tx := &phases.Tx{GasLimit: 1_000_000, Nonce: 9,
			Lookup: read(t, "../../examples/token/lookup.lua"), Calculation: read(t, "../../examples/token/transfer.lua"),
			Read:      notes.ConstraintSet{notes.ExactPattern(pool)},
			Write:     notes.ConstraintSet{notes.ExactPattern(pool), notes.AnyPattern().WithProvenance(nil).WithApplication(w.app)},
			Extradata: []byte(extradata), Signers: []keys.PublicKey{w.bob.Public()}}
		if err := tx.Sign(rand.Reader, w.bob); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	before := w.dump()
	rc := w.seal(steal(fmt.Sprintf("%s 100 %s", w.bob.Public(), pool)))[0]
	if rc.Status != phases.Refused || rc.Phase != phases.PhaseValidity ||
		!strings.Contains(rc.Reason, "pool notes change only in a shielded transaction with a proof") {
		t.Fatalf("transparent theft: %s at %s: %q", rc.Status, rc.Phase, rc.Reason)
	}
	sameStore(t, before, w.dump())
	w.refused(steal(shielded.Magic+"forged\n"), "shielded: header line has fewer than 5 fields")
	if tr, p := w.supply(); tr != 0 || p != 100 {
		t.Fatalf("supply %d + %d", tr, p)
	}
}

// BenchmarkAdmit measures the instance's check of shielded transactions:
// reading the pool state, parsing, the binding hash, proof verification (one
// batch per block) and the nullifier lookups; for one transaction and for a
// block of 16.
func BenchmarkAdmit(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("txs=%d", n), func(b *testing.B) { benchmarkAdmit(b, n) })
	}
}

func benchmarkAdmit(b *testing.B, n int) {
	w := newWorld(b)
	_, dir := zkKeys(b)
	db, p := poolDB(b), shielded.New(dir, shielded.DefaultWindow)
	wl := w.newWallet()
	var txs []*phases.Tx
	for range n {
		txs = append(txs, shieldFromNowhere(b, w, wl))
	}
	b.ResetTimer()
	for b.Loop() {
		blk, err := p.Begin(db)
		if err == nil {
			err = errors.Join(blk.Admit(txs)...)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1e6, "ms/tx")
}
