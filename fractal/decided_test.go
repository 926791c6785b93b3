package fractal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// newValidatorSetFixture creates a validator-set instance of one validator
// (its blocks come from decide, as a consensus engine hands them in) with
// allow.lua deployed by a decided block at height 1.
func newValidatorSetFixture(t testing.TB) *fixture { return newValidatorSetFixtureKey(t, nil, 0) }

// newValidatorSetFixtureKey is newValidatorSetFixture with pk, when not
// nil, attached as the genesis threshold key with the expiry window.
func newValidatorSetFixtureKey(t testing.TB, pk *tfhe.PublicKey, window uint64) *fixture {
	t.Helper()
	var v certify.Validator
	copy(v.PubKey[:], ed25519.GenPrivKey().PubKey().Bytes())
	v.Power, v.Name = 10, "v0"
	vs, err := certify.NewValidatorSet([]certify.Validator{v})
	if err != nil {
		t.Fatal(err)
	}
	var salt [32]byte
	if _, err := rand.Read(salt[:]); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir() + "/inst"
	in, err := InitValidatorSet(home, DefaultConfig(), vs, salt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.db.Close() })
	if pk != nil {
		if err := in.AttachGenesisThresholdKey(pk, window); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{in: in, home: home, alice: genKey(t), bob: genKey(t)}
	src, err := os.ReadFile("testdata/allow.lua")
	if err != nil {
		t.Fatal(err)
	}
	dc := decide(t, in, 1, nil, DeployTx(src))
	f.allow = *dc.Results[0].Deployed
	return f
}

// decide executes and commits the decided block at height holding raws,
// with the misbehaviour records given.
func decide(t testing.TB, in *Instance, height uint64, misbehavior [][]byte, raws ...[]byte) *Decision {
	t.Helper()
	dc, err := in.ExecuteDecided(context.Background(), &DecidedBlock{Height: height, Txs: raws, Misbehavior: misbehavior})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dc
}

// TestDecidedBlockResults: a decided block's raw transactions each get a
// result in order: accepted with the state root after it, a replay of an
// earlier block's transaction and a repeat within the block refused in
// admission, undecodable bytes refused; the app hash is the head block's
// hash and the engine's height is recorded.
func TestDecidedBlockResults(t *testing.T) {
	f := newValidatorSetFixture(t)
	mint := f.mint(f.allow, f.allow, f.alice, "a", "1").Encode()
	dc := decide(t, f.in, 2, nil, mint)
	if r := dc.Results[0]; r.Receipt == nil || r.Receipt.Status != phases.Accepted || r.Root != dc.Sealed.Block.StateRoot {
		t.Fatalf("mint: %+v", r)
	}
	if h := dc.Sealed.Block.Hash(); dc.AppHash != h {
		t.Fatalf("app hash %x, head block %x", dc.AppHash, h)
	}
	other := f.mint(f.allow, f.allow, f.alice, "b", "2").Encode()
	dc = decide(t, f.in, 5, nil, mint, other, other, []byte("junk"))
	want := []string{"already executed in block 1", "", "appears earlier in this block", "decode transaction"}
	for i, r := range dc.Results {
		got := ""
		switch {
		case r.Refused != nil:
			got = r.Refused.Error()
		case r.Receipt.Status != phases.Accepted:
			got = r.Receipt.Reason
		}
		if (want[i] == "") != (got == "") || !strings.Contains(got, want[i]) {
			t.Errorf("result %d: %q, want %q", i, got, want[i])
		}
	}
	h, hash, err := f.in.Decided()
	if err != nil || h != 5 || hash != dc.Sealed.Block.Hash() {
		t.Fatalf("decided %d %x %v", h, hash, err)
	}
	if at, _, err := f.in.DecidedAt(dc.Sealed.Block.Height); err != nil || at != 5 {
		t.Fatalf("decided at %d %v", at, err)
	}
	// A block that accepts nothing leaves the app hash as it was.
	if empty := decide(t, f.in, 6, nil); empty.AppHash != dc.AppHash || empty.Sealed.Block != nil {
		t.Fatalf("empty block moved the app hash")
	}
}

// TestRecheckDropsSpentInputs: two transactions spending one note are both
// admitted to the mempool; after the block that executes the first, the
// recheck drops the second (its input is gone) and a replay of the first.
func TestRecheckDropsSpentInputs(t *testing.T) {
	f := newValidatorSetFixture(t)
	ctx := context.Background()
	decide(t, f.in, 2, nil, f.mint(f.allow, f.allow, f.alice, "coin", "1").Encode())
	first := f.move(f.allow, f.allow, f.alice, "coin", "x", "1").Encode()
	second := f.move(f.allow, f.allow, f.alice, "coin", "y", "1").Encode()
	p1, err := f.in.CheckPending(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := f.in.CheckPending(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.CheckPending(ctx, []byte("junk")); err == nil {
		t.Fatal("junk admitted")
	}
	before := dumpStore(t, f.in)
	if err := f.in.Recheck(ctx, p2); err != nil {
		t.Fatalf("recheck before the block: %v", err)
	}
	if after := dumpStore(t, f.in); after != before {
		t.Fatal("admission or recheck wrote to the store")
	}
	decide(t, f.in, 3, nil, first)
	if err := f.in.Recheck(ctx, p2); err == nil || !strings.Contains(err.Error(), "its inputs are gone") {
		t.Fatalf("second spend rechecked: %v", err)
	}
	if err := f.in.Recheck(ctx, p1); err == nil || !strings.Contains(err.Error(), "already executed in block") {
		t.Fatalf("replay rechecked: %v", err)
	}
}

// TestProposalLimits: Propose stops at max_block_gas and skips repeats;
// a proposal over it, with a repeat, a replay, junk or a bad signature is
// refused with its reason.
func TestProposalLimits(t *testing.T) {
	f := newValidatorSetFixture(t)
	cfg := f.in.Config()
	mk := func(key string) []byte {
		tx := f.mint(f.allow, f.allow, f.alice, key, "1")
		tx.GasLimit = cfg.MaxBlockGas / 2
		return f.sign(tx, f.alice).Encode()
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	all := func([]byte) bool { return true }
	if got := f.in.SelectBlock([][]byte{a, a, []byte("junk"), b, c}, all); len(got) != 2 || string(got[1]) != string(b) {
		t.Fatalf("selected %d", len(got))
	}
	if err := f.in.CheckProposal([][]byte{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	bad := f.mint(f.allow, f.allow, f.alice, "d", "1")
	bad.Signatures[0][0] ^= 1
	decide(t, f.in, 2, nil, a)
	for _, tc := range []struct {
		txs  [][]byte
		want string
	}{
		{[][]byte{b, c, mk("d")}, "past max_block_gas"},
		{[][]byte{b, b}, "appears earlier in this block"},
		{[][]byte{a}, "already executed"},
		{[][]byte{[]byte("junk")}, "transaction 0"},
		{[][]byte{bad.Encode()}, "signature"},
		{[][]byte{DeployTx([]byte("return ("))}, "deploy"},
	} {
		if err := f.in.CheckProposal(tc.txs, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("proposal: %v, want %q", err, tc.want)
		}
	}
}

// TestValidatorSetRefusesLocalWrites: a validator-set instance takes its
// blocks and code from consensus only.
func TestValidatorSetRefusesLocalWrites(t *testing.T) {
	f := newValidatorSetFixture(t)
	before := dumpStore(t, f.in)
	if _, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, "a", "1")); err == nil || !strings.Contains(err.Error(), "validator-set instance") {
		t.Fatalf("submit: %v", err)
	}
	if _, err := f.in.Deploy([]byte("return true")); err == nil || !strings.Contains(err.Error(), "validator-set instance") {
		t.Fatalf("deploy: %v", err)
	}
	if _, err := f.in.Seal(context.Background()); err == nil {
		t.Fatal("seal on a validator set")
	}
	if after := dumpStore(t, f.in); after != before {
		t.Fatal("a refused write changed the store")
	}
}

// megabyteTxs are 16 transactions of 1 MB of notes each: together more
// than one block's writes (decision 167).
func megabyteTxs(f *fixture) [][]byte {
	var raws [][]byte
	for i := range 16 {
		f.nonce++
		calc := fmt.Sprintf(`local v = string.rep("x", 64000) local out = {} for j = 1, 16 do out[j] = {application=%q, owner=%q, key="t%d-"..j, value=v} end return out`,
			hex.EncodeToString(f.allow[:]), hex.EncodeToString(f.allow[:]), i)
		raws = append(raws, f.sign(&phases.Tx{Nonce: f.nonce, GasLimit: 5_000_000,
			Write: notes.ConstraintSet{appPattern(f.allow, f.allow)}, Calculation: []byte(calc)}, f.alice).Encode())
	}
	return raws
}

// TestDecidedBlockTooLargeForOneWrite: a decided block of sixteen
// transactions, each creating 1 MB of notes (cheap in gas: one Lua string
// referenced sixteen times), does not fit in one store write. Before, the
// validator's FinalizeBlock failed on it, as every validator's did: the
// chain stopped. Now the first transactions that fit run, the rest are
// refused without running (the same on every validator), the block
// commits, the chain goes on and verify replays it.
func TestDecidedBlockTooLargeForOneWrite(t *testing.T) {
	f := newValidatorSetFixture(t)
	raws := megabyteTxs(f)
	// Executed twice, the block is cut at the same place with the same
	// results and writes: the cut follows Fractal's count of the writes
	// (decision 167), which stays within the bound.
	var dcs [2]*Decision
	var err error
	for k := range dcs {
		if dcs[k], err = f.in.ExecuteDecided(context.Background(), &DecidedBlock{Height: 2, Txs: raws}); err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			dcs[k].Discard()
		}
	}
	first, dc := dcs[0], dcs[1]
	if first.AppHash != dc.AppHash || first.commit.w.bytes != dc.commit.w.bytes || first.commit.w.entries != dc.commit.w.entries || len(first.Unrun()) != len(dc.Unrun()) {
		t.Fatalf("two executions of one block: app hashes %x and %x, writes %d and %d bytes", first.AppHash[:8], dc.AppHash[:8], first.commit.w.bytes, dc.commit.w.bytes)
	}
	for i := range dc.Results {
		if a, b := first.Results[i].Receipt, dc.Results[i].Receipt; (a == nil) != (b == nil) || a != nil && string(a.Encode()) != string(b.Encode()) {
			t.Fatalf("two executions of one block: receipt %d differs", i)
		}
	}
	if w := dc.commit.w; w.bytes > MaxBlockWriteBytes || w.bytes < MaxBlockWriteBytes/2 {
		t.Fatalf("the block that ran writes %d bytes, bound %d", w.bytes, MaxBlockWriteBytes)
	}
	if _, err := dc.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for i, r := range dc.Results {
		switch {
		case r.Receipt != nil && r.Receipt.Status == phases.Accepted && ran == i:
			ran++
		case errors.Is(r.Refused, ErrBlockWritesTooLarge) && ran > 0 && i >= ran:
		default:
			t.Fatalf("result %d (after %d run): receipt %+v, refused %v", i, ran, r.Receipt, r.Refused)
		}
	}
	if ran == 16 || ran < 2 {
		t.Fatalf("%d of 16 ran: the test no longer makes a block too large for one write", ran)
	}
	// Those left out have receipts a node hands to whoever waits for them.
	unrun := dc.Unrun()
	if len(unrun) != 16-ran {
		t.Fatalf("%d receipts of transactions not run, want %d", len(unrun), 16-ran)
	}
	for i, rc := range unrun {
		if id := dc.Results[ran+i].Tx.ID(); rc.TxID != id || rc.Status != phases.Refused || rc.Reason != ErrBlockWritesTooLarge.Error() {
			t.Fatalf("receipt %d: %+v", i, rc)
		}
	}
	small := f.mint(f.allow, f.allow, f.alice, "after", "1").Encode()
	if dc := decide(t, f.in, 3, nil, small); dc.Results[0].Receipt == nil || dc.Results[0].Receipt.Status != phases.Accepted {
		t.Fatalf("the next block: %+v", dc.Results[0])
	}
	if _, err := f.in.Verify(context.Background(), nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	t.Logf("%d of 16 transactions of 1 MB of notes ran in the block", ran)
}
