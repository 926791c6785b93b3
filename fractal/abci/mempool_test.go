package abci

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/certify"
)

// newApp is the application over a new validator-set instance of one
// validator (whose key never signs here) and a zero salt.
func newApp(t *testing.T) *App {
	t.Helper()
	vs, err := certify.NewValidatorSet([]certify.Validator{{PubKey: [32]byte{1}, Power: 1, Name: "v0"}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := fractal.InitValidatorSet(filepath.Join(t.TempDir(), "inst"), fractal.DefaultConfig(), vs, [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	a, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCommitForgetsIncluded: after a block, the application keeps for the
// recheck only the admitted transactions the block did not hold (CometBFT
// rechecks those and drops the block's own without asking), and a
// recheck moves them back among the admitted.
func TestCommitForgetsIncluded(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	in, out := fractal.DeployTx([]byte("return true")), fractal.DeployTx([]byte("return 1 == 1"))
	for _, raw := range [][]byte{in, out} {
		if r, err := a.CheckTx(ctx, &abcitypes.RequestCheckTx{Tx: raw}); err != nil || r.Code != CodeOK {
			t.Fatalf("check: %v %+v", err, r)
		}
	}
	if _, err := a.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Height: 1, Txs: [][]byte{in}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	if len(a.pending) != 0 || len(a.previous) != 1 || a.previous[sha256.Sum256(out)] == nil {
		t.Fatalf("after the block: %d admitted, %d to recheck, want 0 and the one left out", len(a.pending), len(a.previous))
	}
	if r, err := a.CheckTx(ctx, &abcitypes.RequestCheckTx{Tx: out, Type: abcitypes.CheckTxType_Recheck}); err != nil || r.Code != CodeOK {
		t.Fatalf("recheck: %v %+v", err, r)
	}
	if len(a.pending) != 1 || len(a.previous) != 0 {
		t.Fatalf("after the recheck: %d admitted, %d to recheck, want 1 and 0", len(a.pending), len(a.previous))
	}
}
