package abci

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
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

// TestCheckTxGasCap: CheckTx refuses a gas limit over max_tx_gas with the
// reason a node and a home give (fractal.Instance.CheckTxGas, decision
// 170), the default cap and one the validator's node sets alike, and
// admits one at the cap.
func TestCheckTxGasCap(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withGas := func(g uint64) ([]byte, notes.Hash) {
		tx := &phases.Tx{Nonce: g, GasLimit: g, Calculation: []byte("return {}"), Signers: []keys.PublicKey{k.Public()}}
		if err := tx.Sign(rand.Reader, k); err != nil {
			t.Fatal(err)
		}
		return tx.Encode(), tx.ID()
	}
	for _, c := range []struct {
		set, gas uint64
		want     string // "" admits
	}{
		{0, fractal.DefaultMaxTxGas + 1, "gas limit 10000001 is over max_tx_gas 10000000 (one transaction would hold its block for up to 1.34s); lower it, or ask the node's operator (node-config.json)"},
		{0, fractal.DefaultMaxTxGas, ""},
		{2_000_000, 2_000_001, "gas limit 2000001 is over max_tx_gas 2000000 (one transaction would hold its block for up to 268ms); lower it, or ask the node's operator (node-config.json)"},
		{2_000_000, 2_000_000, ""},
	} {
		a.in.SetMaxTxGas(c.set)
		raw, id := withGas(c.gas)
		r, err := a.CheckTx(ctx, &abcitypes.RequestCheckTx{Tx: raw})
		switch {
		case err != nil:
			t.Fatal(err)
		case c.want == "" && r.Code != CodeOK:
			t.Fatalf("gas %d under max_tx_gas %d: %+v", c.gas, c.set, r)
		case c.want != "" && (r.Code != CodeRefused || r.Log != fmt.Sprintf("fractal: check %x: %s", id[:8], c.want)):
			t.Fatalf("gas %d over max_tx_gas %d: %+v, want %q", c.gas, c.set, r, c.want)
		}
	}
}
