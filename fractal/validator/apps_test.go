package validator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// through is a wallet's way to one validator of a testnet
// (wallet.Instance): it reads the validator's instance, and hands
// transactions and code to its mempool.
type through struct {
	tn *testnet
	i  int
}

func (v through) ID() [32]byte                         { return v.tn.nodes[v.i].Instance().ID() }
func (v through) Head() (*chain.Block, error)          { return v.tn.nodes[v.i].Instance().Head() }
func (v through) Block(h uint64) (*chain.Block, error) { return v.tn.nodes[v.i].Instance().Block(h) }
func (v through) Validators() *certify.ValidatorSet    { return v.tn.nodes[v.i].Instance().Validators() }
func (v through) Notes(p notes.Pattern) ([]*notes.Note, error) {
	return v.tn.nodes[v.i].Instance().Notes(p)
}
func (v through) Transactions(b *chain.Block) ([]*phases.Tx, error) {
	return v.tn.nodes[v.i].Instance().Transactions(b)
}

// Deploy hands the code in unless the validator holds it already.
func (v through) Deploy(src []byte) (notes.Hash, error) {
	h := sha256.Sum256(src)
	if _, err := v.tn.nodes[v.i].Instance().Code(h); err == nil {
		return h, nil
	}
	return v.tn.deploy(src), nil
}

func (v through) Submit(tx *phases.Tx) (notes.Hash, error) {
	v.tn.submit(v.i, tx.Encode())
	return tx.ID(), nil
}

// SealFor waits for the transaction's accepted receipt on the validator
// (a refused one leaves no receipt: the wait then fails the test).
func (v through) SealFor(_ context.Context, id notes.Hash) (*phases.Receipt, *chain.Block, error) {
	v.tn.committed(id)
	rc, err := v.tn.nodes[v.i].Instance().Receipt(id)
	if err != nil {
		return nil, nil, err
	}
	b, err := v.tn.nodes[v.i].Instance().Block(blockOf(v.tn.t, v.tn.nodes[v.i], id))
	return rc, b, err
}

// TestAppsOnValidators: the Smart Lua chain of examples/smartlua and the
// shielded pool work unchanged on four validators: a chain's initial
// state and a verified successor commit on all four; a shield and a
// shielded transfer (proofs checked in CheckTx) commit, the wallets sync
// from a validator and hold the amounts; two transfers spending one
// nullifier both enter the mempools, block order takes one and the other
// never commits.
func TestAppsOnValidators(t *testing.T) {
	if os.Getenv("FRACTAL_DEVNET_LONG") == "" {
		t.Skip("a minute of blocks and Groth16 proofs: make devnet-long runs it")
	}
	pk, zkDir := nodetest.ShieldedKeys(t)
	tn := newTestnet(t, 4, DevnetOptions{ZK: zkDir}, nil)
	ctx := context.Background()
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	k1, err := keys.ParsePrivateKey("2KgXomoYNRdlBq+CPZcw+mze5UDUp/iCVDBuDIRLym0=")
	if err != nil {
		t.Fatal(err)
	}
	sig := tn.deploy(read("../../examples/sig/sig.lua"))

	// Smart Lua: the seed's balance chain in a note, then a transfer of 3.
	app := tn.deploy(read("../../examples/smartlua/smartlua.lua"))
	pool := vp.NewPool()
	record := func(prev *smartlua.Record, fragment string, signers ...keys.PrivateKey) *smartlua.Record {
		tr := &smartlua.Transition{Version: smartlua.Version, Fragment: []byte(fragment)}
		var prevState []byte
		if prev != nil {
			tr.Prev, prevState = &prev.Hash, prev.State
		}
		for _, k := range signers {
			tr.Keys = append(tr.Keys, k.Public())
		}
		out, err := smartlua.Execute(pool, tr, prevState)
		if err != nil {
			t.Fatal(err)
		}
		sigs, err := smartlua.Sign(rand.Reader, out.Hash, signers)
		if err != nil {
			t.Fatal(err)
		}
		return &smartlua.Record{Hash: out.Hash, Transition: tr, State: out.State, Sigs: sigs}
	}
	chainKey := notes.StateKey{Application: app, Owner: sig, Key: []byte(k1.Public().String() + ":bank")}
	pattern := notes.AnyPattern().WithProvenance(nil).WithApplication(app).WithOwner(sig)
	var nonce uint64
	step := func(spend bool, value []byte) *phases.Tx {
		nonce++
		tx := &phases.Tx{Nonce: nonce, GasLimit: 1_000_000, Extradata: value, Write: notes.ConstraintSet{pattern},
			Calculation: fmt.Appendf(nil, "return {{provenance={}, application=%q, owner=%q, key=%q, value=extradata}}",
				fmt.Sprintf("%x", app), fmt.Sprintf("%x", sig), chainKey.Key),
			Signers: []keys.PublicKey{k1.Public()}}
		if spend {
			tx.Read = notes.ConstraintSet{pattern}
			tx.Lookup = fmt.Appendf(nil, "return {%q}", chainKey.String())
		}
		if err := tx.Sign(rand.Reader, k1); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	init := record(nil, string(read("../../examples/smartlua/balances.lua")))
	next := record(init, "transfer('Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw=', 3)", k1)
	start := step(false, smartlua.EncodeRecord(init))
	tn.submit(0, start.Encode())
	tn.committed(start.ID())
	move := step(true, smartlua.EncodeRecord(next))
	tn.submit(1, move.Encode())
	tn.committed(move.ID())
	for _, i := range tn.running() {
		if n := live(t, tn.nodes[i].Instance(), chainKey); n == nil || string(n.Value) != string(smartlua.EncodeRecord(next)) {
			t.Fatalf("v%d: the chain's note does not hold the successor", i)
		}
	}

	// The shielded pool: mint, shield 100, send 30.
	token := tn.deploy(read("../../examples/token/token.lua"))
	if h := tn.deploy(shielded.PoolPredicate); h != shielded.PoolOwner {
		t.Fatalf("pool predicate deployed as %x", h)
	}
	issuer, alice := newWorld(t).alice, newWorld(t).alice
	tok := wallet.Token{App: token, Name: issuer.Public().String() + ":TOK"}
	nonce++
	mint := &phases.Tx{Nonce: nonce, GasLimit: 1_000_000, Calculation: read("../../examples/token/mint.lua"),
		Write:     notes.ConstraintSet{notes.PatternFromKeyPrefix(notes.StateKey{Application: token, Owner: sig, Key: []byte(alice.Public().String() + ":")})},
		Extradata: fmt.Appendf(nil, "%x %x %s TOK %d", token, sig, alice.Public(), 100), Signers: []keys.PublicKey{issuer.Public()}}
	if err := mint.Sign(rand.Reader, issuer); err != nil {
		t.Fatal(err)
	}
	tn.submit(2, mint.Encode())
	tn.committed(mint.ID())
	a, err := wallet.Create(t.TempDir() + "/a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := wallet.Create(t.TempDir() + "/b")
	if err != nil {
		t.Fatal(err)
	}
	balance := func(w *wallet.Wallet) uint64 {
		if _, err := w.Sync(through{tn, 3}, nil); err != nil {
			t.Fatal(err)
		}
		for _, bl := range w.Balances() {
			if bl.Name == fmt.Sprintf("%x/%s", tok.App, tok.Name) {
				return bl.Value
			}
		}
		return 0
	}
	if _, err := a.SendShield(ctx, through{tn, 0}, pk, tok, 100, alice, a.Keys.Address(), wallet.Progress{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendTransfer(ctx, through{tn, 1}, pk, tok, 30, b.Keys.Address(), wallet.Progress{}); err != nil {
		t.Fatal(err)
	}
	if x, y := balance(a), balance(b); x != 70 || y != 30 {
		t.Fatalf("balances %d and %d, want 70 and 30", x, y)
	}

	// One nullifier, two transactions in the mempools: one commits.
	tx1, err := a.Transfer(ctx, pk, tok, 5, b.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	tx2, err := a.Transfer(ctx, pk, tok, 6, b.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	tn.submit(2, tx1.Encode())
	tn.submit(3, tx2.Encode())
	h := tn.decided(0)
	tn.waitFor(30*time.Second, "three more blocks", func() bool { return tn.decided(0) >= h+3 })
	won := 0
	for _, id := range []notes.Hash{tx1.ID(), tx2.ID()} {
		if rc, err := tn.nodes[0].Instance().Receipt(id); err == nil && rc.Status == phases.Accepted {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d of two transfers spending one nullifier committed", won)
	}
	for _, i := range tn.running() {
		if n := tn.nodes[i].Comet().Mempool().Size(); n != 0 {
			t.Fatalf("v%d's mempool still holds %d transactions", i, n)
		}
	}
	if x, y := balance(a), balance(b); x+y != 100 || (y != 35 && y != 36) {
		t.Fatalf("balances %d and %d after the race", x, y)
	}
	tn.agree()
}
