package wallet_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// TestPickTokenNotes: notes of the token are taken in the order given until
// they cover the amount, at most MaxShieldIns of them; the pool's note and
// values of other tokens or without an amount are skipped; too little is
// refused, saying how much was found.
func TestPickTokenNotes(t *testing.T) {
	owner := genKey(t).Public()
	tok := wallet.Token{Name: "ISSUER:TOK"}
	note := func(value string, o notes.Hash) *notes.Note {
		return &notes.Note{Owner: o, Key: []byte(owner.String() + ":" + value), Value: []byte(value)}
	}
	all := []*notes.Note{
		note("ISSUER:TOK:5", notes.Hash{1}),
		note("OTHER:TOK:50", notes.Hash{1}),
		note("ISSUER:TOK:500", shielded.PoolOwner),
		note("ISSUER:TOK:x", notes.Hash{1}),
		note("ISSUER:TOK:7", notes.Hash{1}),
		note("ISSUER:TOK:9", notes.Hash{1}),
	}
	values := func(ns []*notes.Note) string {
		var out []string
		for _, n := range ns {
			out = append(out, string(n.Value))
		}
		return strings.Join(out, " ")
	}
	if got, err := wallet.PickTokenNotes(all, tok, owner, 12); err != nil || values(got) != "ISSUER:TOK:5 ISSUER:TOK:7" {
		t.Fatalf("12: %q, %v", values(got), err)
	}
	if got, err := wallet.PickTokenNotes(all, tok, owner, 21); err != nil || values(got) != "ISSUER:TOK:5 ISSUER:TOK:7 ISSUER:TOK:9" {
		t.Fatalf("21: %q, %v", values(got), err)
	}
	want := fmt.Sprintf("%s holds 21 ISSUER:TOK in its first 3 notes, 22 wanted", owner)
	if _, err := wallet.PickTokenNotes(all, tok, owner, 22); err == nil || err.Error() != want {
		t.Fatalf("22: %v, want %q", err, want)
	}
	var many []*notes.Note
	for range 10 {
		many = append(many, note("ISSUER:TOK:1", notes.Hash{1}))
	}
	want = fmt.Sprintf("%s holds %d ISSUER:TOK in its first %d notes, 10 wanted", owner, shielded.MaxShieldIns, shielded.MaxShieldIns)
	if _, err := wallet.PickTokenNotes(many, tok, owner, 10); err == nil || err.Error() != want {
		t.Fatalf("more notes than one shield spends: %v, want %q", err, want)
	}
	if got := wallet.TokenNotes(tok, owner); !got.Match(notes.StateKey{Application: tok.App, Owner: notes.Hash{9}, Key: []byte(owner.String() + ":1")}) ||
		got.Match(notes.StateKey{Application: tok.App, Key: []byte(genKey(t).Public().String() + ":1")}) {
		t.Fatalf("pattern %s", got)
	}
}

// TestSendThroughInstance: shield, transfer and unshield through an
// instance as the CLI does: each is proven, submitted and sealed, and the
// wallet is synced after, so it holds its change without a sync of its
// own. A transaction the instance refuses comes back with its receipt and
// changes nothing; one the wallet cannot build, or a done context, submits
// nothing.
func TestSendThroughInstance(t *testing.T) {
	w := newWorld(t)
	w.mint(w.alice.Public(), 60)
	w.mint(w.alice.Public(), 40)
	a, b := w.newWallet(), w.newWallet()
	var proving []bool
	syncs := 0
	pr := wallet.Progress{Prove: func(done bool) { proving = append(proving, done) }, Sync: func(_, _ uint64) { syncs++ }}

	sent, err := a.SendShield(t.Context(), w.in, w.pk, w.tok, 100, w.alice, a.Keys.Address(), pr)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Receipt.Status != phases.Accepted || sent.Block == nil || sent.Block.TxIDs[0] != sent.TxID || sent.Proving <= 0 {
		t.Fatalf("shield: %v, block %v, proving %v", sent.Receipt.Err(), sent.Block, sent.Proving)
	}
	if fmt.Sprint(proving) != "[false true]" || syncs == 0 || w.balance(a) != 100 {
		t.Fatalf("proving reports %v, %d sync reports, balance %d", proving, syncs, w.balance(a))
	}
	if n := len(w.tokenNotes(w.alice.Public())); n != 0 {
		t.Fatalf("alice still holds %d token notes: both should have been shielded", n)
	}

	sent, err = a.SendTransfer(t.Context(), w.in, w.pk, w.tok, 30, b.Keys.Address(), wallet.Progress{})
	if err != nil || sent.Receipt.Status != phases.Accepted || w.balance(a) != 70 {
		t.Fatalf("transfer: %v %v, balance %d", err, sent.Receipt.Err(), w.balance(a))
	}

	deny := w.deploy([]byte("return false"))
	before := w.dump()
	sent, err = a.SendUnshield(t.Context(), w.in, w.pk, w.tok, 10, w.bob.Public(), deny, wallet.Progress{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := sent.Receipt; rc.Status == phases.Accepted || rc.Phase != phases.PhaseValidity || sent.Block != nil {
		t.Fatalf("unshield to a refusing owner: %v, block %v", rc.Err(), sent.Block)
	}
	sameStore(t, before, w.dump())
	if w.balance(a) != 70 {
		t.Fatalf("balance %d after a refused unshield, want 70", w.balance(a))
	}

	if _, err := a.SendTransfer(t.Context(), w.in, w.pk, w.tok, 1000, b.Keys.Address(), wallet.Progress{}); err == nil ||
		!strings.Contains(err.Error(), "insufficient shielded balance") {
		t.Fatalf("too much: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.SendTransfer(ctx, w.in, w.pk, w.tok, 5, b.Keys.Address(), wallet.Progress{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if q, err := w.in.Queued(); err != nil || len(q) != 0 {
		t.Fatalf("queued %d, %v: nothing should have been submitted", len(q), err)
	}
	sameStore(t, before, w.dump())
}
