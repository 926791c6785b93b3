package validator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/internal/cputime"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/phases"
)

// appBench is one validator's application driven as CometBFT drives it,
// without CometBFT: the CPU one validator spends on a transaction.
type appBench struct {
	app    *abci.App
	height int64
}

// block runs one decided block of txs through ProcessProposal,
// FinalizeBlock and Commit, and fails on a refused transaction.
func (ab *appBench) block(b testing.TB, txs [][]byte) {
	ctx := context.Background()
	ab.height++
	if r, err := ab.app.ProcessProposal(ctx, &abcitypes.RequestProcessProposal{Height: ab.height, Txs: txs}); err != nil || r.Status != abcitypes.ResponseProcessProposal_ACCEPT {
		b.Fatalf("height %d: proposal %v %v", ab.height, r, err)
	}
	r, err := ab.app.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Height: ab.height, Txs: txs})
	if err != nil {
		b.Fatal(err)
	}
	for i, res := range r.TxResults {
		if res.Code != abci.CodeOK {
			b.Fatalf("height %d, transaction %d: %s", ab.height, i, res.Log)
		}
	}
	if _, err := ab.app.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
		b.Fatal(err)
	}
}

// check hands txs to CheckTx (new, or a recheck) and fails on a refusal.
func (ab *appBench) check(b testing.TB, txs [][]byte, kind abcitypes.CheckTxType) {
	for _, raw := range txs {
		r, err := ab.app.CheckTx(context.Background(), &abcitypes.RequestCheckTx{Tx: raw, Type: kind})
		if err != nil || r.Code != abci.CodeOK {
			b.Fatalf("check: %v %v", r, err)
		}
	}
}

// newAppBench is one validator's application over a new validator-set
// instance whose blocks hold up to block transactions, with examples/token
// and examples/sig deployed and n notes minted by decided blocks, and n
// signed transfers spending them (benchTokenTxs).
func newAppBench(tb testing.TB, n, block int) (ab *appBench, in *fractal.Instance, txs [][]byte) {
	var salt [32]byte
	rand.Read(salt[:])
	cfg := fractal.DefaultConfig()
	cfg.MaxBlockTxs, cfg.MaxBlockGas = block, 8*phases.MaxGasLimit
	in, err := fractal.InitValidatorSet(filepath.Join(tb.TempDir(), "inst"), cfg, otherSet(tb), salt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { in.Close() })
	app, err := abci.New(in)
	if err != nil {
		tb.Fatal(err)
	}
	ab = &appBench{app: app}
	pprof.Do(context.Background(), pprof.Labels("part", "setup"), func(context.Context) {
		token, sig := nodetest.Example(tb, "token/token.lua"), nodetest.Example(tb, "sig/sig.lua")
		ab.block(tb, [][]byte{fractal.DeployTx(token), fractal.DeployTx(sig)})
		tk := &nodetest.Token{App: sha256.Sum256(token), Sig: sha256.Sum256(sig), Issuer: nodetest.Key(tb)}
		var mints []*phases.Tx
		mints, txs = benchTokenTxs(tb, tk, n)
		for start := 0; start < len(mints); start += 8 {
			var raws [][]byte
			for _, tx := range mints[start:min(start+8, len(mints))] {
				raws = append(raws, tx.Encode())
			}
			ab.block(tb, raws)
		}
	})
	return ab, in, txs
}

// TestValidatorAppReplays: blocks of transfers driven through one
// validator's application as CometBFT drives it (CheckTx, a recheck,
// ProcessProposal, FinalizeBlock, Commit) replay identically: verify
// re-executes the chain and agrees with every root and receipt.
func TestValidatorAppReplays(t *testing.T) {
	ab, in, txs := newAppBench(t, 96, 32)
	ab.check(t, txs, abcitypes.CheckTxType_New)
	for start := 0; start < len(txs); start += 32 {
		ab.block(t, txs[start:start+32])
		ab.check(t, txs[start+32:], abcitypes.CheckTxType_Recheck)
	}
	rep, err := in.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// the deploys make no block; one mint (of 96 notes), 3 blocks of transfers
	if rep.Height != 4 || rep.Transactions != 1+96 {
		t.Fatalf("verify: height %d, %d transactions; want 4 and 97", rep.Height, rep.Transactions)
	}
}

// BenchmarkValidatorApp is the CPU one validator spends on a token
// transfer (BenchmarkDevnet's), stage by stage, without CometBFT: the
// transfers arrive one block ahead, so that each is checked once as new
// (CheckTx: signatures, store, lookup) and rechecked once after the block
// before its own; then each block of 1,024 is proposed (PrepareProposal),
// checked (ProcessProposal), executed (FinalizeBlock, the scheduler on
// GOMAXPROCS workers) and committed (Commit, durable). The process's CPU
// time per transfer is reported for each stage (badger's background work
// falls in the stage it runs beside) and in all: what one validator adds
// to CometBFT's own cost per transaction (decision 127).
func BenchmarkValidatorApp(b *testing.B) {
	const block = 1024
	n := (b.N + block - 1) / block * block
	ab, _, txs := newAppBench(b, n, block)
	app := ab.app
	var stages [5]time.Duration // CheckTx new, recheck, PrepareProposal, ProcessProposal+FinalizeBlock+Commit, all
	names := [...]string{"checktx", "recheck", "prepare", "block"}
	stage := func(k int, f func()) { // labelled for go tool pprof -tagfocus stage=NAME
		c := cputime.Process()
		pprof.Do(context.Background(), pprof.Labels("stage", names[k]), func(context.Context) { f() })
		stages[k] += cputime.Process() - c
	}
	ctx := context.Background()
	b.ResetTimer()
	all := cputime.Process()
	stage(0, func() { ab.check(b, txs[:block], abcitypes.CheckTxType_New) })
	for start := 0; start < n; start += block {
		cur, next := txs[start:start+block], txs[min(start+block, n):min(start+2*block, n)]
		stage(0, func() { ab.check(b, next, abcitypes.CheckTxType_New) })
		stage(2, func() {
			r, err := app.PrepareProposal(ctx, &abcitypes.RequestPrepareProposal{MaxTxBytes: 100 << 20, Txs: append(cur, next...), Height: ab.height + 1})
			if err != nil || len(r.Txs) != block {
				b.Fatalf("prepare: %d transactions, %v", len(r.Txs), err)
			}
		})
		stage(3, func() { ab.block(b, cur) })
		stage(1, func() { ab.check(b, next, abcitypes.CheckTxType_Recheck) })
	}
	stages[4] = cputime.Process() - all
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	b.ReportMetric(per(stages[0]), "checktx-µs/tx")
	b.ReportMetric(per(stages[1]), "recheck-µs/tx")
	b.ReportMetric(per(stages[2]), "prepare-µs/tx")
	b.ReportMetric(per(stages[3]), "block-µs/tx")
	b.ReportMetric(per(stages[4]), "cpu-µs/tx")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tx/s")
}
