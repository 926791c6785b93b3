package fractal

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// feeFixture is a fixture whose instance charges fees in the issuer's
// GOLD, notes of testdata/allow.lua as application and owner (the host
// moves fee notes itself; the predicates matter only for the notes
// transactions write), and, with reward set, mints a reward note of 50 to
// each block's producer.
type feeFixture struct {
	*fixture
	issuer keys.PrivateKey
	token  *phases.FeeToken
}

func newFeeFixture(t testing.TB, cfg Config, reward bool) *feeFixture {
	t.Helper()
	allow := codeHash(t, "testdata/allow.lua")
	issuer := genKey(t)
	rules := chain.Rules{Fee: &phases.FeeToken{Application: allow, Owner: allow, Token: issuer.Public().String() + ":GOLD"}}
	if reward {
		rules.Reward = &chain.Reward{Application: allow, Owner: allow, Amount: 50}
	}
	return &feeFixture{fixture: newFixture(t, cfg, WithRules(rules)), issuer: issuer, token: rules.Fee}
}

// gold is a GOLD note of owner at "<owner>:<tag>" holding amount.
func (f *feeFixture) gold(owner keys.PublicKey, tag string, amount uint64) (key, value string) {
	return owner.String() + ":" + tag, f.token.Token + ":" + strconv.FormatUint(amount, 10)
}

// feeKey is the state key of owner's GOLD note at tag.
func (f *feeFixture) feeKey(owner keys.PublicKey, tag string) notes.StateKey {
	k, _ := f.gold(owner, tag, 1)
	return notes.StateKey{Application: f.token.Application, Owner: f.token.Owner, Key: []byte(k)}
}

// paying makes tx offer owner's fee note at tag at price, signed again by
// signers.
func (f *feeFixture) paying(tx *phases.Tx, owner keys.PublicKey, tag string, price uint64, signers ...keys.PrivateKey) *phases.Tx {
	tx.Fee = &phases.Fee{Note: f.feeKey(owner, tag), Price: price}
	return f.sign(tx, signers...)
}

// goldOf sums the GOLD held by notes whose keys start with owner's key.
func (f *feeFixture) goldOf(t testing.TB, owner keys.PublicKey) uint64 {
	t.Helper()
	list, err := f.in.Notes(notes.PatternFromKeyPrefix(notes.StateKey{Application: f.token.Application, Owner: f.token.Owner, Key: []byte(owner.String() + ":")}))
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, n := range list {
		amount, ok := strings.CutPrefix(string(n.Value), f.token.Token+":")
		if !ok {
			continue
		}
		a, err := strconv.ParseUint(amount, 10, 64)
		if err != nil {
			t.Fatal(fmt.Errorf("note %s: %w", n.Key, err))
		}
		sum += a
	}
	return sum
}

// mintFeeNotes commits, without fees, n GOLD notes of amount each to
// owner, at tags "f1" .. "fN", 250 to a transaction.
func (f *feeFixture) mintFeeNotes(t testing.TB, owner keys.PublicKey, n int, amount uint64) {
	t.Helper()
	app := hex.EncodeToString(f.allow[:])
	var txs []*phases.Tx
	for base := 0; base < n; base += 250 {
		f.nonce++
		txs = append(txs, f.sign(&phases.Tx{
			Nonce: f.nonce, GasLimit: 5_000_000,
			Write: notes.ConstraintSet{appPattern(f.allow, f.allow)},
			Calculation: []byte(fmt.Sprintf(`local out = {}
for i = %d, %d do out[#out+1] = {application=%q, owner=%q, key=%q .. i, value=%q} end
return out`, base+1, min(base+250, n), app, app, owner.String()+":f", f.token.Token+":"+strconv.FormatUint(amount, 10))),
		}, f.alice))
	}
	for _, err := range f.in.SubmitAll(txs) {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.sealAll(t)
}

// sealAll seals until the queue is empty and returns every receipt.
func (f *fixture) sealAll(t testing.TB) []*phases.Receipt {
	t.Helper()
	var out []*phases.Receipt
	for {
		s, err := f.in.Seal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.Block == nil {
			return out
		}
		out = append(out, s.Receipts...)
	}
}

// TestFeeFlood: 10,000 transactions that fail in validity each pay their
// fee (gas used × price): the sender's GOLD drops by exactly the sum of
// the fees, the producer's rises by it, the supply does not change, and
// verify replays the chain. One key sends them all, so the per-key limit
// is off (it would spread them over thousands of blocks).
func TestFeeFlood(t *testing.T) {
	const n = 10_000
	f := newFeeFixture(t, oneKeyConfig(), false)
	f.mintFeeNotes(t, f.alice.Public(), n, 1_000_000)
	producer := f.in.Executor()
	before, supply := f.goldOf(t, f.alice.Public()), f.goldOf(t, f.alice.Public())+f.goldOf(t, producer)
	if before != n*1_000_000 {
		t.Fatalf("alice holds %d GOLD", before)
	}
	f.in.cfg.MinGasPrice = 2
	var txs []*phases.Tx
	for i := 1; i <= n; i++ {
		tx := f.mint(f.deny, f.deny, f.alice, "x"+strconv.Itoa(i), "1")
		tx.GasLimit = 100_000
		txs = append(txs, f.paying(tx, f.alice.Public(), "f"+strconv.Itoa(i), 3, f.alice))
	}
	for i := 0; i < n; i += 1000 {
		for _, err := range f.in.SubmitAll(txs[i : i+1000]) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	var fees uint64
	for _, rc := range f.sealAll(t) {
		if rc.Status != phases.Refused || rc.Phase != phases.PhaseValidity || rc.Fee == nil || rc.Fee.Amount != rc.Gas.Total()*3 {
			t.Fatalf("receipt %+v, fee %+v", rc, rc.Fee)
		}
		stored, err := f.in.Receipt(rc.TxID)
		if err != nil || !bytes.Equal(stored.Encode(), rc.Encode()) {
			t.Fatalf("stored receipt %+v %v", stored, err)
		}
		fees += rc.Fee.Amount
	}
	after, got := f.goldOf(t, f.alice.Public()), f.goldOf(t, producer)
	if fees == 0 || before-after != fees || got != fees || after+got != supply {
		t.Fatalf("fees %d: alice %d → %d, producer %d, supply %d", fees, before, after, got, supply)
	}
	if _, err := f.in.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestFeeRefusals: admission refuses, with its reason and changing
// nothing, a fee note the signers do not own, a price below min_gas_price,
// no fee at all under a positive minimum, a fee note too small for gas
// limit × price, one that is not of the fee token, a fee note another
// queued transaction already offers (two in one block), and a submitted
// reward transaction. Simulate refuses the same with the same reasons.
func TestFeeRefusals(t *testing.T) {
	f := newFeeFixture(t, DefaultConfig(), false)
	f.mintFeeNotes(t, f.alice.Public(), 2, 10_000_000)
	f.in.cfg.MinGasPrice = 2
	note := f.feeKey(f.alice.Public(), "f1")
	tx := func(k string) *phases.Tx { return f.mint(f.allow, f.allow, f.alice, k, "1") }
	queued := f.paying(tx("q"), f.alice.Public(), "f1", 2, f.alice)
	if _, err := f.in.Submit(queued); err != nil {
		t.Fatal(err)
	}
	reward := &chain.Reward{Application: f.allow, Owner: f.allow, Amount: 1}
	for _, c := range []struct {
		name string
		tx   *phases.Tx
		want string
	}{
		{"not the signers' note", f.paying(f.mint(f.allow, f.allow, f.bob, "b", "1"), f.alice.Public(), "f2", 2, f.bob),
			fmt.Sprintf("fee: fee note %s belongs to %s, who is not a signer", f.feeKey(f.alice.Public(), "f2"), f.alice.Public())},
		{"price below the minimum", f.paying(tx("p"), f.alice.Public(), "f2", 1, f.alice), "fee: gas price 1 is below the minimum 2 (min_gas_price)"},
		{"no fee", tx("n"), "no fee offered, and this instance's minimum gas price is 2 (min_gas_price): name a fee note and a gas price"},
		{"too small", f.paying(tx("s"), f.alice.Public(), "f2", 11, f.alice),
			fmt.Sprintf("fee: fee note %s holds 10000000, less than gas limit 1000000 × price 11 = 11000000", f.feeKey(f.alice.Public(), "f2"))},
		{"not of the fee token", func() *phases.Tx {
			t := tx("o")
			t.Fee = &phases.Fee{Note: notes.StateKey{Application: f.deny, Owner: f.allow, Key: note.Key}, Price: 2}
			return f.sign(t, f.alice)
		}(), "is not a note of the fee token"},
		{"fee note of a queued transaction", f.paying(tx("twice"), f.alice.Public(), "f1", 3, f.alice),
			fmt.Sprintf("fee: fee note %s is the fee of queued transaction %x", note, queued.ID())},
		{"reward submitted", f.sign(reward.RewardTx(f.alice.Public(), 2), f.alice), "a reward transaction is made by the block's producer, never submitted (decision 143)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := dumpStore(t, f.in)
			_, err := f.in.Submit(c.tx)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("submit: %v, want %q", err, c.want)
			}
			if !errors.Is(err, ErrRefused) { // a node answers it as the transaction's fault, not the store's
				t.Fatalf("submit: %v is not ErrRefused", err)
			}
			if dumpStore(t, f.in) != before {
				t.Fatal("a refused submission changed the store")
			}
			if c.name == "fee note of a queued transaction" {
				return // Simulate looks at the committed state, not the queue
			}
			if _, _, err := f.in.Simulate(context.Background(), c.tx, false); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("simulate: %v, want %q", err, c.want)
			}
		})
	}
	// Two transactions offering one fee note in one call: the second is
	// refused, the first queued.
	a, b := f.paying(tx("a"), f.alice.Public(), "f2", 2, f.alice), f.paying(tx("b"), f.alice.Public(), "f2", 2, f.alice)
	errs := f.in.SubmitAll([]*phases.Tx{a, b})
	if errs[0] != nil || errs[1] == nil || !strings.Contains(errs[1].Error(), fmt.Sprintf("is the fee of queued transaction %x", a.ID())) {
		t.Fatalf("submit all: %v", errs)
	}
}

// TestSimulateWithFee: simulate reports exactly the gas and fee the
// committed execution then uses, on the same state. The transaction runs
// two predicates of unequal cost, so a gas limit equal to the gas used is
// not enough (each predicate may use half of what calculation left);
// EstimateGas finds the smallest limit that is, plus GasMargin percent.
func TestSimulateWithFee(t *testing.T) {
	f := newFeeFixture(t, DefaultConfig(), false)
	f.mintFeeNotes(t, f.alice.Public(), 1, 10_000_000)
	f.commit(t, f.paying(f.mint(f.allow, f.signed, f.alice, "coin", f.alice.Public().String()), f.alice.Public(), "f1", 0, f.alice))
	tx := f.paying(f.move(f.allow, f.signed, f.alice, "coin", "paid", f.bob.Public().String()), f.alice.Public(), "f1", 5, f.alice)
	est, err := f.in.EstimateGas(context.Background(), tx, 0)
	if err != nil || est.Receipt.Err() != nil {
		t.Fatalf("estimate: %+v %v", est, err)
	}
	rc, limit := est.Receipt, est.Limit
	used := rc.Gas.Total()
	tx.GasLimit = used
	if sim, _, err := f.in.Simulate(context.Background(), f.sign(tx, f.alice), false); err != nil || !strings.Contains(sim.Reason, "out of gas") {
		t.Fatalf("a limit of the gas used (%d): %+v %v", used, sim, err)
	}
	smallest := limit * 100 / (100 + GasMargin)
	for _, c := range []struct {
		limit uint64
		ok    bool
	}{{smallest - 1, false}, {smallest, true}} {
		tx.GasLimit = c.limit
		sim, _, err := f.in.Simulate(context.Background(), f.sign(tx, f.alice), false)
		if err != nil || (sim.Err() == nil) != c.ok {
			t.Fatalf("limit %d (estimate %d for gas %d): %+v %v", c.limit, limit, used, sim, err)
		}
	}
	if limit != smallest+(smallest*GasMargin+99)/100 || rc.Fee == nil || rc.Fee.Amount != used*5 {
		t.Fatalf("estimate: limit %d (smallest %d) for gas %d, fee %+v", limit, smallest, used, rc.Fee)
	}
	tx.GasLimit = limit
	tx = f.sign(tx, f.alice)
	sim, _, err := f.in.Simulate(context.Background(), tx, false)
	if err != nil {
		t.Fatal(err)
	}
	s := f.commit(t, tx)
	if !bytes.Equal(s.Receipts[0].Encode(), sim.Encode()) || sim.Gas.Total() != used {
		t.Fatalf("committed %+v, simulated %+v", s.Receipts[0], sim)
	}
}

// TestFeeChainReseals: a chain with fees paid by accepted and refused
// transactions and a block reward in every block, re-sealed from its
// transactions on an instance with its genesis, gives byte-identical
// blocks and store (signatures aside), and verifies.
func TestFeeChainReseals(t *testing.T) {
	f := newFeeFixture(t, DefaultConfig(), true)
	f.mintFeeNotes(t, f.alice.Public(), 3, 10_000_000)
	f.commit(t, f.paying(f.mint(f.allow, f.allow, f.alice, "k", "v"), f.alice.Public(), "f1", 2, f.alice))
	refused := f.paying(f.mint(f.deny, f.deny, f.alice, "no", "v"), f.alice.Public(), "f2", 3, f.alice)
	if _, err := f.in.Submit(refused); err != nil {
		t.Fatal(err)
	}
	if rcs := f.sealAll(t); len(rcs) != 2 || rcs[1].Phase != phases.PhaseValidity || rcs[1].Fee == nil {
		t.Fatalf("refused with a fee: %+v", rcs)
	}
	clone := genesisClone(t, f.in)
	reseal(t, f.in, clone)
	if got, want := unsignedDump(t, clone), unsignedDump(t, f.in); got != want {
		t.Fatalf("re-sealed store differs:\n%s", firstDiff(got, want))
	}
	if _, err := clone.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}
