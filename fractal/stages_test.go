package fractal

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// driveBlock runs the stages the way a consensus engine would (CometBFT's
// CheckTx, FinalizeBlock, Commit): each transaction's encoding through
// Check, the block's transactions handed in to Execute with the head as
// parent, each result into the commit as it comes, and Finish.
func driveBlock(t testing.TB, in *Instance, raws [][]byte, sign bool) *Sealed {
	t.Helper()
	ctx := context.Background()
	var txs []*phases.Tx
	for _, raw := range raws {
		tx, err := in.Check(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	head, err := in.Head()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proposal{Parent: head, Producer: in.Executor(), Txs: txs}
	c := in.BeginCommit(p)
	defer c.Discard()
	x, err := in.Execute(ctx, p, c.Apply)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Finish(ctx, x, sign)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStagesFromOutside: an instance with the same genesis as a sealed
// chain, driven stage by stage with each block's transactions handed in
// (not read from its queue), makes byte-identical blocks, and verifies.
func TestStagesFromOutside(t *testing.T) {
	f := chainFixture(t)
	in := genesisClone(t, f.in)
	head, err := f.in.Head()
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(1); h <= head.Height; h++ {
		want, _ := f.in.Block(h)
		txs, err := f.in.Transactions(want)
		if err != nil {
			t.Fatal(err)
		}
		var raws [][]byte
		for _, tx := range txs {
			raws = append(raws, tx.Encode())
		}
		s := driveBlock(t, in, raws, true)
		if s.Block == nil || s.Block.Hash() != want.Hash() {
			t.Fatalf("block %d driven from outside: %+v, want %+v", h, s.Block, want)
		}
		if _, err := in.Check(context.Background(), raws[0]); err == nil || !strings.Contains(err.Error(), "replayed transaction: already executed in block") {
			t.Fatalf("block %d: check of a committed transaction: %v", h, err)
		}
	}
	wantVerify(t, in, "")
	if got, want := unsignedDump(t, in), unsignedDump(t, f.in); got != want {
		t.Fatalf("stores differ:\n%s", firstDiff(got, want))
	}
}

// TestExecuteWritesNothingAndNeedsNoKey: Execute changes no byte of the
// store, gives the same manifest every time, and runs with a signer that
// cannot sign; only Finish's signature needs it, and a signature that
// fails leaves the store as it was.
func TestExecuteWritesNothingAndNeedsNoKey(t *testing.T) {
	f := chainFixture(t)
	f.in.Close()
	in, err := Open(f.home, WithSigner(refusingSigner{f.in.Executor()}))
	if err != nil {
		t.Fatal(err)
	}
	f.in = in
	t.Cleanup(func() { in.Close() })
	tx := f.move(f.allow, f.allow, f.bob, "e", "g", "7")
	head, _ := in.Head()
	p := &Proposal{Parent: head, Producer: in.Executor(), Txs: []*phases.Tx{tx}}
	before := dumpStore(t, in)
	var hashes [][32]byte
	for range 2 {
		x, err := in.Execute(context.Background(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if x.Block == nil || len(x.Receipts) != 1 || x.Receipts[0].Err() != nil {
			t.Fatalf("execution: %+v", x.Sealed)
		}
		hashes = append(hashes, x.Block.Hash())
	}
	if hashes[0] != hashes[1] {
		t.Fatal("two executions of one proposal give two manifests")
	}
	if dumpStore(t, in) != before {
		t.Fatal("Execute changed the store")
	}
	c := in.BeginCommit(p)
	defer c.Discard()
	x, err := in.Execute(context.Background(), p, c.Apply)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finish(context.Background(), x, true); err == nil || !strings.Contains(err.Error(), "this signer signs nothing") {
		t.Fatalf("finish with a signer that cannot sign: %v", err)
	}
	if dumpStore(t, in) != before {
		t.Fatal("a commit whose signature failed changed the store")
	}
}

// refusingSigner names a key and signs nothing.
type refusingSigner struct{ pub keys.PublicKey }

func (s refusingSigner) Public() keys.PublicKey { return s.pub }

func (s refusingSigner) Sign(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("this signer signs nothing")
}

// TestCheckRefusals: Check refuses, with its reason and changing nothing,
// an encoding too large (before decoding it), bytes that do not decode, a
// transaction with a bad signature, and one already queued.
func TestCheckRefusals(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	ctx := context.Background()
	good := f.mint(f.allow, f.allow, f.alice, "k", "1")
	if _, err := f.in.Check(ctx, good.Encode()); err != nil {
		t.Fatal(err)
	}
	forged := f.mint(f.allow, f.allow, f.alice, "k", "2")
	forged.Signatures[0][3] ^= 1
	before := dumpStore(t, f.in)
	for _, c := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"too large", make([]byte, f.in.cfg.MaxTxBytes+1), "fractal: check: transaction is 1048577 bytes, limit 1048576"},
		{"garbage", []byte("not a transaction"), "fractal: check: phases: decode transaction: unknown version 110"},
		{"bad signature", forged.Encode(), "signature of signer 1 (" + f.alice.Public().String() + ") does not verify"},
	} {
		if _, err := f.in.Check(ctx, c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("a check changed the store")
	}
	if _, err := f.in.Submit(good); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Check(ctx, good.Encode()); err == nil || !strings.Contains(err.Error(), "transaction is already queued") {
		t.Fatalf("check of a queued transaction: %v", err)
	}
}
