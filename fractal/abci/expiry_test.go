package abci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/tfhe"
)

// sealed returns an encrypted transaction carrying msg, sealed to f's key.
func (f *voteFixture) sealed(t *testing.T, msg string) ([]byte, [32]byte) {
	pk, err := f.in.ThresholdKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := tfhe.Seal(pk, []byte(msg), fractal.EncryptedContext(f.in.ID()))
	if err != nil {
		t.Fatal(err)
	}
	raw := p.Encode()
	return fractal.EncryptedTx(raw), sha256.Sum256(raw)
}

// sharesFrom is the shares transaction of height h+1: four precommits for
// height h, those of validators in with their shares for w, the others
// with the empty extension; and the matching last commit.
func (f *voteFixture) sharesFrom(t *testing.T, h int64, w *fractal.WaitingBatch, in ...int) ([]byte, abcitypes.CommitInfo) {
	var ec abcitypes.ExtendedCommitInfo
	var lc abcitypes.CommitInfo
	for i := range 4 {
		var ext, sig []byte
		if slices.Contains(in, i) {
			ext = f.extension(t, i, h, w)
		}
		sig = f.sign(t, i, h, ext)
		v := abcitypes.Validator{Address: f.addr(i), Power: 10}
		ec.Votes = append(ec.Votes, abcitypes.ExtendedVoteInfo{Validator: v, VoteExtension: ext, ExtensionSignature: sig, BlockIdFlag: cmtproto.BlockIDFlagCommit})
		lc.Votes = append(lc.Votes, abcitypes.VoteInfo{Validator: v, BlockIdFlag: cmtproto.BlockIDFlagCommit})
	}
	raw, err := EncodeSharesTx(&ec)
	if err != nil {
		t.Fatal(err)
	}
	return raw, lc
}

// TestExpiryOnAValidatorSet (decision 164): with a window of 3 heights, a
// batch fixed at height 1 whose next blocks carry only k−1 = 2 valid share
// batches waits at heights 2 and 3 (tfhe pending's status names the
// heights and the keyholders of the last shares transaction; newer
// encrypted transactions are refused) and is closed as expired by the
// block at height 4, with the solo expiry's drop receipt and an event; an
// encrypted transaction in that same block is fixed as batch 2 and opens at
// height 5; shares for the expired batch are rejected in
// VerifyVoteExtension; verify re-derives the expiry.
func TestExpiryOnAValidatorSet(t *testing.T) {
	ctx := context.Background()
	f := newVoteFixtureWindow(t, 3)
	enc1, pid1 := f.sealed(t, "first")
	f.decide(t, 1, enc1)
	w1, err := f.in.Waiting()
	if err != nil || w1 == nil {
		t.Fatalf("waiting after 1: %v %v", w1, err)
	}

	enc2, pid2 := f.sealed(t, "second")
	for h := int64(2); h <= 3; h++ {
		tx0, lc := f.sharesFrom(t, h-1, w1, 0, 1)
		if st := f.process(t, h, bytes.Repeat([]byte{byte(h)}, 32), [][]byte{tx0, enc2}, lc); st != abcitypes.ResponseProcessProposal_ACCEPT {
			t.Fatalf("height %d: %v", h, st)
		}
		res := f.decide(t, h, tx0, enc2)
		if got := res.TxResults[0].Events[0].Attributes[0].Value; got != "1,2" {
			t.Fatalf("height %d: shares of %q", h, got)
		}
		if r := res.TxResults[1]; r.Code != CodeMalformed || r.Log != "encrypted transaction refused: encrypted batch 1 waits for shares" {
			t.Fatalf("height %d: newer encrypted transaction %d %q", h, r.Code, r.Log)
		}
		st, err := f.in.PendingEncrypted()
		if err != nil || st == nil {
			t.Fatalf("pending at %d: %v %v", h, st, err)
		}
		want := fractal.ChainWait{FixedAt: 1, ExpiresAt: 4, Decided: uint64(h), SharesAt: uint64(h)}
		if *st.Chain != want || !slices.Equal(st.Shares, []int{1, 2}) || st.Needed != 3 || st.Batch.Number != 1 {
			t.Fatalf("pending at %d: %+v %+v", h, st, st.Chain)
		}
	}

	// Height 4: still two shares; the batch expires, and the block's own
	// encrypted transaction fixes batch 2.
	tx0, lc := f.sharesFrom(t, 3, w1, 0, 1)
	h4 := bytes.Repeat([]byte{4}, 32)
	if st := f.process(t, 4, h4, [][]byte{tx0, enc2}, lc); st != abcitypes.ResponseProcessProposal_ACCEPT {
		t.Fatalf("height 4: %v", st)
	}
	w2, err := f.in.BatchAfter(4, [][]byte{enc2}, nil)
	if err != nil || w2 == nil || w2.Record.Number != 2 {
		t.Fatalf("batch after 4: %+v %v", w2, err)
	}
	late := f.extension(t, 1, 4, w1) // shares for the expired batch
	if got := f.verify(t, 1, 4, h4, late); got != abcitypes.ResponseVerifyVoteExtension_REJECT {
		t.Fatalf("shares for the expired batch: %v", got)
	}
	if got := f.verify(t, 1, 4, h4, f.extension(t, 1, 4, w2)); got != abcitypes.ResponseVerifyVoteExtension_ACCEPT {
		t.Fatalf("shares for batch 2: %v", got)
	}
	res := f.decide(t, 4, tx0, enc2)
	if r := res.TxResults[1]; r.Code != CodeOK || len(r.Events) != 1 || r.Events[0].Type != "fractal.encrypted" {
		t.Fatalf("height 4: encrypted transaction %+v", r)
	}
	if ev := res.Events; len(ev) != 1 || ev[0].Type != "fractal.expired" || ev[0].Attributes[0].Value != "1" || ev[0].Attributes[1].Value != "1" {
		t.Fatalf("height 4 events %+v", ev)
	}
	o, err := f.in.Outcome(pid1)
	if err != nil || o.Batch != 1 || o.Receipt.Reason != "encrypted transaction dropped: expired: not decrypted by 3 keyholders" {
		t.Fatalf("outcome of batch 1: %+v %v", o, err)
	}
	st, err := f.in.PendingEncrypted()
	if err != nil || st == nil || st.Batch.Number != 2 || *st.Chain != (fractal.ChainWait{FixedAt: 4, ExpiresAt: 7, Decided: 4}) || len(st.Shares) != 0 {
		t.Fatalf("pending after 4: %+v %v", st, err)
	}

	// Height 5: all four shares for batch 2; it opens.
	tx0, lc = f.sharesFrom(t, 4, w2, 0, 1, 2, 3)
	if st := f.process(t, 5, bytes.Repeat([]byte{5}, 32), [][]byte{tx0}, lc); st != abcitypes.ResponseProcessProposal_ACCEPT {
		t.Fatalf("height 5: %v", st)
	}
	f.decide(t, 5, tx0)
	if o, err := f.in.Outcome(pid2); err != nil || o.Batch != 2 || !strings.HasPrefix(o.Receipt.Reason, "encrypted transaction dropped: plaintext does not parse") {
		t.Fatalf("outcome of batch 2: %+v %v", o.Receipt, err)
	}
	if st, err := f.in.PendingEncrypted(); err != nil || st != nil {
		t.Fatalf("pending after 5: %+v %v", st, err)
	}
	if _, err := f.in.Verify(ctx, nil); err != nil {
		t.Fatalf("verify: %v", err)
	}

}
