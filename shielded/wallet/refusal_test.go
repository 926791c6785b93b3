package wallet_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/circuits"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
	"github.com/fractalvm/fractal/zk"
)

// shieldedWorld is a world where wallet a holds 100 TOK in one shielded
// note and signs with a known key (so tests can re-sign what they tamper).
func shieldedWorld(t *testing.T) (*world, *wallet.Wallet) {
	t.Helper()
	w := newWorld(t)
	w.mint(w.alice.Public(), 100)
	a := w.newWallet()
	signer := genKey(t)
	a.Signer = &signer
	w.sync(a)
	tx, err := a.Shield(w.t.Context(), w.pk, w.tok, 100, w.tokenNotes(w.alice.Public()), w.alice, a.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	w.mustAccept(tx)
	w.sync(a)
	return w, a
}

// tamper changes the bundle of tx as an attacker would: f edits it, then
// the Binding is recomputed for the changed transaction (unless f returns
// false) and the transaction is re-signed by the wallet's signer.
func tamper(t *testing.T, a *wallet.Wallet, tx *phases.Tx, f func(*shielded.Bundle, *phases.Tx) bool) *phases.Tx {
	t.Helper()
	bd, err := shielded.Parse(tx)
	if err != nil {
		t.Fatal(err)
	}
	cp := *tx
	rebind := f(bd, &cp)
	if cp.Extradata, err = bd.Extradata(); err != nil {
		t.Fatal(err)
	}
	if rebind {
		h, err := shielded.BindingHash(&cp)
		if err != nil {
			t.Fatal(err)
		}
		bd.Public.Binding = circuits.BindingOf(h)
		if cp.Extradata, err = bd.Extradata(); err != nil {
			t.Fatal(err)
		}
	}
	cp.Signatures = nil
	if err := cp.Sign(rand.Reader, *a.Signer); err != nil {
		t.Fatal(err)
	}
	return &cp
}

// refused seals tx alone and checks that it is refused at admission with
// want in its reason and that the whole store is as before.
func (w *world) refused(tx *phases.Tx, want string) {
	w.t.Helper()
	before := w.dump()
	rc := w.seal(tx)[0]
	if rc.Status != phases.Refused || rc.Phase != phases.PhaseAdmission || !strings.Contains(rc.Reason, want) {
		w.t.Fatalf("receipt %s at %s: %q; want refused at admission with %q", rc.Status, rc.Phase, rc.Reason, want)
	}
	sameStore(w.t, before, w.dump())
}

func TestRefusals(t *testing.T) {
	w, a := shieldedWorld(t)
	b := w.newWallet()
	good, err := a.Transfer(w.t.Context(), w.pk, w.tok, 30, b.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.Transfer(w.t.Context(), w.pk, w.tok, 40, b.Keys.Address())
	if err != nil {
		t.Fatal(err)
	}
	otherProof := must(shielded.Parse(other)).Proof
	foreign := foreignProof(t)
	cases := []struct {
		name string
		f    func(*shielded.Bundle, *phases.Tx) bool
		want string
	}{
		{"wrong root", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Public.Root.SetUint64(7); return true },
			"is not one of the 2 recent commitment-tree roots (wrong or stale anchor)"},
		{"same nullifier twice in one transaction", func(b *shielded.Bundle, _ *phases.Tx) bool {
			b.Public.Nullifiers[1] = b.Public.Nullifiers[0]
			return true
		}, "double spend: both inputs have the same nullifier"},
		{"flipped byte in the proof", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Proof[60] ^= 1; return true }, "shielded: proof"},
		{"proof moved from another transaction", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Proof = otherProof; return true },
			"shielded: proof does not verify"},
		{"nullifiers reordered", func(b *shielded.Bundle, _ *phases.Tx) bool {
			b.Public.Nullifiers[0], b.Public.Nullifiers[1] = b.Public.Nullifiers[1], b.Public.Nullifiers[0]
			return true
		}, "shielded: proof does not verify"},
		{"commitments reordered", func(b *shielded.Bundle, _ *phases.Tx) bool {
			b.Public.Commitments[0], b.Public.Commitments[1] = b.Public.Commitments[1], b.Public.Commitments[0]
			return true
		}, "shielded: proof does not verify"},
		{"net raised: outputs worth more than inputs", func(b *shielded.Bundle, _ *phases.Tx) bool {
			b.Net, b.Public.Net = 1000, 1000
			return true
		}, "shielded: proof does not verify"},
		{"proof for another circuit's key", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Proof = foreign; return true },
			"shielded: proof does not verify"},
		{"binding of another transaction", func(b *shielded.Bundle, tx *phases.Tx) bool { tx.Nonce++; return false },
			"binding is not this transaction's hash"},
		// The ephemeral key, the view tags and the sealed notes are covered
		// by the binding (decision 168): changed, they no longer match it;
		// with the binding recomputed, the proof no longer verifies.
		{"ephemeral key changed", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Ciphertexts.EPKs[0][3] ^= 1; return false },
			"binding is not this transaction's hash"},
		{"view tag changed", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Ciphertexts.Tags[1] ^= 1; return false },
			"binding is not this transaction's hash"},
		{"sealed note changed", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Ciphertexts.Sealed[0][17] ^= 1; return false },
			"binding is not this transaction's hash"},
		{"ephemeral key changed, binding recomputed", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Ciphertexts.EPKs[0][3] ^= 1; return true },
			"shielded: proof does not verify"},
		{"fee", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Public.Fee = 1; return true }, "fee 1 not accepted"},
		{"another pool predicate", func(b *shielded.Bundle, _ *phases.Tx) bool { b.Pool = w.sig; return true }, "header names pool"},
		{"own calculation code", func(b *shielded.Bundle, tx *phases.Tx) bool {
			tx.Calculation = []byte("return {}")
			return true
		}, "lookup and calculation code must be the pool's"},
		{"asset of another token", func(b *shielded.Bundle, _ *phases.Tx) bool {
			b.Token = w.issuer.Public().String() + ":OTHER"
			return true
		},
			"the proof's asset is not the header's token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			w.refused(tamper(t, a, good, c.f), c.want)
		})
	}
	w.t = t
	// The untampered transaction still goes through afterwards.
	w.mustAccept(good)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// nine is a circuit with as many public inputs as the transfer circuit.
type nine struct {
	X [9]frontend.Variable `gnark:",public"`
}

func (c *nine) Define(api frontend.API) error {
	for i := 1; i < len(c.X); i++ {
		api.AssertIsEqual(api.Mul(c.X[i-1], 1), c.X[i-1])
	}
	return nil
}

// foreignProof is a valid proof for another circuit's key.
func foreignProof(t *testing.T) [zk.ProofSize]byte {
	cc, err := zk.CompileNamed("nine", &nine{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := zk.Cache{Dir: t.TempDir()}.DevSetup(cc)
	if err != nil {
		t.Fatal(err)
	}
	var c nine
	for i := range c.X {
		c.X[i] = i
	}
	p, err := zk.Prove(k, &c)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return [zk.ProofSize]byte(raw)
}

// TestDoubleSpend: one note spent by two transactions, in one block and in
// two blocks; the second is refused each time and the pool stays whole.
func TestDoubleSpend(t *testing.T) {
	w, a := shieldedWorld(t)
	b := w.newWallet()
	tx1 := must(a.Transfer(w.t.Context(), w.pk, w.tok, 10, b.Keys.Address()))
	tx2 := must(a.Transfer(w.t.Context(), w.pk, w.tok, 20, b.Keys.Address()))
	tx3 := must(a.Transfer(w.t.Context(), w.pk, w.tok, 30, b.Keys.Address()))
	rcs := w.seal(tx1, tx2)
	if rcs[0].Status != phases.Accepted || rcs[1].Status != phases.Refused ||
		!strings.Contains(rcs[1].Reason, "double spend: nullifier 1 is spent by an earlier transaction in this block") {
		t.Fatalf("same block: %s, %s %q", rcs[0].Status, rcs[1].Status, rcs[1].Reason)
	}
	w.refused(tx3, "double spend: nullifier 1 was spent in block 3")
	w.sync(a)
	w.sync(b)
	if w.balance(a) != 90 || w.balance(b) != 10 {
		t.Fatalf("balances %d and %d, want 90 and 10", w.balance(a), w.balance(b))
	}
}

// TestCircuitRefusesCheats: a wallet cannot build, and a prover cannot
// prove, a transfer creating value, wrapping around 2^64, or spending with
// the wrong key.
func TestCircuitRefusesCheats(t *testing.T) {
	w, a := shieldedWorld(t)
	o := a.State.Notes[0]
	path, err := a.State.Tree.Witness(o.Position)
	if err != nil {
		t.Fatal(err)
	}
	root := a.State.Tree.Root()
	asset := w.tok.Asset()
	spend := circuits.Spend{Key: a.Keys.Spend, Note: o.Note, Path: path}
	dummy := must(circuits.NewDummySpend(rand.Reader, asset))
	owner := a.Keys.Spend.Owner()
	other := must(note.NewSpendingKey(rand.Reader))
	cases := []struct {
		name  string
		in    [2]circuits.Spend
		out   [2]uint64
		want  error
		force func(*circuits.Transfer)
	}{
		{"outputs worth more than inputs", [2]circuits.Spend{spend, dummy}, [2]uint64{100, 1}, circuits.ErrUnbalanced,
			func(c *circuits.Transfer) { c.Out[1].Value = 1 }},
		{"2^64 wrap-around", [2]circuits.Spend{spend, dummy}, [2]uint64{101, 1<<64 - 1}, circuits.ErrUnbalanced,
			func(c *circuits.Transfer) { c.Out[0].Value, c.Out[1].Value = 101, uint64(1<<64-1) }},
		{"wrong spending key", [2]circuits.Spend{{Key: other, Note: o.Note, Path: path}, dummy}, [2]uint64{100, 0}, circuits.ErrWrongKey,
			func(c *circuits.Transfer) { c.In[0].Ask = other.AuthorizingKey() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs := [2]circuits.Output{{Owner: owner, Value: c.out[0]}, {Owner: owner, Value: c.out[1]}}
			if _, err := circuits.NewTransferWitness(root, c.in, outs, asset, 0, 0, root); err == nil || !strings.Contains(err.Error(), c.want.Error()) {
				t.Fatalf("witness: %v, want %v", err, c.want)
			}
			// A prover that skips the native checks: start from an honest
			// witness and change the assignment.
			honest := must(circuits.NewTransferWitness(root, [2]circuits.Spend{spend, dummy},
				[2]circuits.Output{{Owner: owner, Value: 100}, {Owner: owner}}, asset, 0, 0, root))
			c.force(honest.Assignment)
			if _, err := zk.Prove(w.pk, honest.Assignment); err == nil {
				t.Fatal("proved a cheating assignment")
			}
		})
	}
}
