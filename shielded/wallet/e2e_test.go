package wallet_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// TestEndToEnd: shield 100, send 30 to a second wallet, both see 70 and 30
// after syncing, the second unshields 30 to Bob; the total supply
// (transparent + pool) stays 100 throughout.
func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	w.mint(w.alice.Public(), 100)
	a, b := w.newWallet(), w.newWallet()
	w.sync(a)
	check := func(step string, wantTransparent, wantPool uint64) {
		t.Helper()
		tr, pool := w.supply()
		if tr != wantTransparent || pool != wantPool || tr+pool != 100 {
			t.Fatalf("%s: transparent %d, pool %d; want %d and %d", step, tr, pool, wantTransparent, wantPool)
		}
	}
	check("minted", 100, 0)

	tx, err := a.Shield(w.t.Context(), w.pk, w.tok, 100, w.tokenNotes(w.alice.Public()), w.alice, a.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	w.mustAccept(tx)
	check("shielded", 0, 100)
	if n := len(w.tokenNotes(w.alice.Public())); n != 0 {
		t.Fatalf("alice still holds %d token notes", n)
	}
	if rep := w.sync(a); rep.Found != 1 || w.balance(a) != 100 {
		t.Fatalf("after shield: found %d, balance %d", rep.Found, w.balance(a))
	}

	tx, err = a.Transfer(w.t.Context(), w.pk, w.tok, 30, b.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	w.mustAccept(tx)
	check("transferred", 0, 100)
	ra, rb := w.sync(a), w.sync(b)
	if w.balance(a) != 70 || w.balance(b) != 30 || ra.Spent != 1 || ra.Found != 1 || rb.Found != 1 {
		t.Fatalf("after transfer: balances %d and %d, reports %+v %+v", w.balance(a), w.balance(b), ra, rb)
	}

	// A wallet reopened from its folder resumes after the last block it saw.
	again, err := wallet.Open(a.Dir)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	rep, err := again.Sync(w.in, func(done, total uint64) { calls++ })
	if err != nil || rep.From != again.State.Next || calls != 0 || w.balance(again) != 70 {
		t.Fatalf("resumed sync: %+v, %d progress calls, balance %d, %v", rep, calls, w.balance(again), err)
	}
	// A source that hands out other transactions than a block lists is
	// refused at that block.
	c := w.newWallet()
	if _, err := c.Sync(otherTxs{w.in}, nil); err == nil || !strings.Contains(err.Error(), "wallet: sync: block 1: transaction 0 given is not the one the block lists") {
		t.Fatalf("sync from a source that swaps transactions: %v", err)
	}
	if c.State.Next != 1 {
		t.Fatalf("the refused block moved the wallet to block %d", c.State.Next)
	}
	// It follows one instance only.
	stranger := newWorld(t)
	if _, err := again.Sync(stranger.in, nil); err == nil || !strings.Contains(err.Error(), "the wallet follows instance") {
		t.Fatalf("sync against another instance: %v", err)
	}

	tx, err = b.Unshield(w.t.Context(), w.pk, w.tok, 30, w.bob.Public(), w.sig)
	if err != nil {
		t.Fatal(err)
	}
	w.mustAccept(tx)
	check("unshielded", 30, 70)
	bobs := w.tokenNotes(w.bob.Public())
	if len(bobs) != 1 || string(bobs[0].Value) != w.tok.Name+":30" {
		t.Fatalf("bob's notes: %v", bobs)
	}
	w.sync(a)
	w.sync(b)
	if w.balance(a) != 70 || w.balance(b) != 0 {
		t.Fatalf("after unshield: balances %d and %d", w.balance(a), w.balance(b))
	}
	// The chain replays from genesis to the same roots, commitment-tree
	// roots included: a head block re-signed with another commitment root
	// is caught.
	if _, err := w.in.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	w.forgeHead(func(b *chain.Block) { b.CommitmentRoot[0] ^= 1 })
	if _, err := w.in.Verify(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "root: block says commitment-tree root") {
		t.Fatalf("verify of a forged commitment root: %v", err)
	}
}

// TestShieldChange: shielding 100 from notes of 60 and 70 spends both and
// returns 30 to the sender as a transparent note.
func TestShieldChange(t *testing.T) {
	w := newWorld(t)
	w.mint(w.alice.Public(), 60)
	w.mint(w.alice.Public(), 70)
	a := w.newWallet()
	w.sync(a)
	tx, err := a.Shield(w.t.Context(), w.pk, w.tok, 100, w.tokenNotes(w.alice.Public()), w.alice, a.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	w.mustAccept(tx)
	left := w.tokenNotes(w.alice.Public())
	if len(left) != 1 || string(left[0].Value) != w.tok.Name+":30" || !strings.HasSuffix(string(left[0].Key), ":2") {
		t.Fatalf("alice's notes after shielding: %v", left)
	}
	if tr, pool := w.supply(); tr != 30 || pool != 100 {
		t.Fatalf("supply %d + %d", tr, pool)
	}
	w.sync(a)
	if w.balance(a) != 100 {
		t.Fatalf("balance %d", w.balance(a))
	}
	// Shielding more than the notes hold is refused in calculation.
	tx, err = a.Shield(w.t.Context(), w.pk, w.tok, 31, left, w.alice, a.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	rc := w.seal(tx)[0]
	if rc.Status != phases.Refused || !strings.Contains(rc.Reason, "the transparent inputs hold 30 "+w.tok.Name+", cannot shield 31") {
		t.Fatalf("overdraft: %s %q", rc.Status, rc.Reason)
	}
}

// TestTwoShieldsOneBlock: two shields of one token in one block both grow
// the pool note (the scheduler orders them: both write it), and a
// shielded transfer in the same block runs beside them.
func TestTwoShieldsOneBlock(t *testing.T) {
	w, a := shieldedWorld(t)
	w.mint(w.alice.Public(), 40)
	w.mint(w.bob.Public(), 50)
	b := w.newWallet()
	w.sync(a)
	s1 := must(a.Shield(w.t.Context(), w.pk, w.tok, 40, w.tokenNotes(w.alice.Public()), w.alice, a.Keys.Address()))
	s2 := must(a.Shield(w.t.Context(), w.pk, w.tok, 50, w.tokenNotes(w.bob.Public()), w.bob, b.Keys.Address()))
	tr := must(a.Transfer(w.t.Context(), w.pk, w.tok, 25, b.Keys.Address()))
	w.mustAccept(s1, s2, tr)
	if tr, pool := w.supply(); tr != 0 || pool != 190 {
		t.Fatalf("supply %d + %d, want 0 + 190", tr, pool)
	}
	w.sync(a)
	w.sync(b)
	if w.balance(a) != 115 || w.balance(b) != 75 {
		t.Fatalf("balances %d and %d, want 115 and 75", w.balance(a), w.balance(b))
	}
	if _, err := w.in.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// otherTxs is a wallet.Chain that replaces the first transaction of every
// block with another one.
type otherTxs struct{ wallet.Chain }

func (c otherTxs) Transactions(b *chain.Block) ([]*phases.Tx, error) {
	txs, err := c.Chain.Transactions(b)
	if err == nil && len(txs) > 0 {
		txs[0] = &phases.Tx{GasLimit: 1}
	}
	return txs, err
}

// TestBundleVersions: a wallet builds version-2 bundles by default; a
// version-1 bundle (as wallets built before decision 168) is still
// accepted; the recipient finds the notes of both, and the chain verifies.
func TestBundleVersions(t *testing.T) {
	w, a := shieldedWorld(t)
	b := w.newWallet()
	for _, c := range []struct {
		version, want byte // BundleVersion, the version built
		amount        uint64
	}{{0, shielded.BundleV2, 30}, {shielded.BundleV1, shielded.BundleV1, 20}} {
		a.BundleVersion = c.version
		tx, err := a.Transfer(w.t.Context(), w.pk, w.tok, c.amount, b.Keys.Address())
		if err != nil {
			t.Fatal(err)
		}
		if v := must(shielded.Parse(tx)).Ciphertexts.Version; v != c.want {
			t.Fatalf("wallet with BundleVersion %d built a version-%d bundle, want %d", c.version, v, c.want)
		}
		w.mustAccept(tx)
		if rep := w.sync(b); rep.Found != 1 {
			t.Fatalf("version %d: the recipient found %d notes, want 1", c.want, rep.Found)
		}
		w.sync(a)
	}
	if w.balance(a) != 50 || w.balance(b) != 50 {
		t.Fatalf("balances %d and %d, want 50 and 50", w.balance(a), w.balance(b))
	}
	if _, err := w.in.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}
