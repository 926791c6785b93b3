package fractal

import (
	"context"
	"testing"

	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// TestChainExpiryVerified (decision 164): on a validator set with a window
// of 2 heights, a batch fixed at height 2 that no shares open is closed by
// the block at height 4 without a signature; verify re-derives it, and
// names a close record moved to another height, one turned into an
// executor's signed expiry, and a fixing height that was changed.
func TestChainExpiryVerified(t *testing.T) {
	pk := genesisKey(t)
	if err := newValidatorSetFixture(t).in.AttachGenesisThresholdKey(pk, 2); err == nil {
		t.Fatal("attached a key after the first decided block")
	}
	f := newValidatorSetFixtureKey(t, pk, 2)
	pid := f.fixEncrypted(t, 2)
	if dc := decide(t, f.in, 3, nil); dc.Expired != nil {
		t.Fatal("expired at height 3")
	}
	dc := decide(t, f.in, 4, nil)
	if dc.Expired == nil || dc.Expired.Encrypted.Batch.Number != 1 || dc.Expired.Receipts[0].TxID != pid {
		t.Fatalf("height 4: %+v", dc.Expired)
	}
	wantVerify(t, f.in, "")

	k := encKeyOf(encOpened, u64(1))
	good := storeGet(t, f.in, k)
	storeSet(t, f.in, k, (&batchClose{Expired: true, At: 5}).encode())
	wantVerify(t, f.in, "verify: encrypted batch 1: expired at height 5, but fixed at 2 with a window of 2 blocks")
	storeSet(t, f.in, k, (&batchClose{Expired: true, Signature: [64]byte{1}}).encode())
	wantVerify(t, f.in, "verify: encrypted batch 1: a validator set's batch expired by a signature, not at a height")
	storeSet(t, f.in, k, good)
	storeSet(t, f.in, encKeyOf(encFixedAt, u64(1)), u64(1))
	wantVerify(t, f.in, "verify: encrypted batch 1: expired at height 4, but fixed at 1 with a window of 2 blocks")
}

// genesisKey is a threshold key of 4 keyholders, k = 3, from a DKG.
func genesisKey(t testing.TB) *tfhe.PublicKey {
	res, err := dkg.Run(context.Background(), dkg.Config{Instance: [32]byte{1}, Epoch: 1, N: 4, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := tfhe.KeyFromDKG(tfhe.OriginDKG, res.Outcome)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// fixEncrypted decides the block at height h holding one encrypted
// transaction sealed to the instance's key, which fixes a batch; it
// returns the payload ID.
func (f *fixture) fixEncrypted(t testing.TB, h uint64) [32]byte {
	pk, err := f.in.ThresholdKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := tfhe.Seal(pk, []byte("never opened"), EncryptedContext(f.in.ID()))
	if err != nil {
		t.Fatal(err)
	}
	decide(t, f.in, h, nil, EncryptedTx(p.Encode()))
	return p.ID()
}
