package abci

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/protoio"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// voteFixture is a validator-set instance of four with a threshold key
// from a DKG (k = 3), and the validators' consensus keys and key shares.
type voteFixture struct {
	app    *App
	in     *fractal.Instance
	privs  []ed25519.PrivKey
	shares []*tfhe.KeyShare
}

func newVoteFixture(t *testing.T) *voteFixture {
	return newVoteFixtureWindow(t, fractal.DefaultEncryptedExpiryBlocks)
}

// newVoteFixtureWindow is newVoteFixture whose batches expire after
// window heights.
func newVoteFixtureWindow(t *testing.T, window uint64) *voteFixture {
	f := &voteFixture{}
	var vals []certify.Validator
	for range 4 {
		k := ed25519.GenPrivKey()
		f.privs = append(f.privs, k)
		v := certify.Validator{Power: 10}
		copy(v.PubKey[:], k.PubKey().Bytes())
		vals = append(vals, v)
	}
	vs, err := certify.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	var salt [32]byte
	rand.Read(salt[:])
	if f.in, err = fractal.InitValidatorSet(filepath.Join(t.TempDir(), "v"), fractal.DefaultConfig(), vs, salt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.in.Close() })
	res, err := dkg.Run(context.Background(), dkg.Config{Instance: f.in.ID(), Epoch: 1, N: 4, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := tfhe.KeyFromDKG(tfhe.OriginDKG, res.Outcome)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Shares {
		ks, err := tfhe.ShareFromDKG(pk, s)
		if err != nil {
			t.Fatal(err)
		}
		f.shares = append(f.shares, ks)
	}
	if err := f.in.AttachGenesisThresholdKey(pk, window); err != nil {
		t.Fatal(err)
	}
	if f.app, err = New(f.in); err != nil {
		t.Fatal(err)
	}
	f.app.AddKeyShare(f.shares[0])
	return f
}

func (f *voteFixture) addr(i int) []byte { return f.privs[i].PubKey().Address() }

// extension is validator i's extension for the batch w at height h.
func (f *voteFixture) extension(t *testing.T, i int, h int64, w *fractal.WaitingBatch) []byte {
	sb, err := tfhe.PartDecBatch(context.Background(), f.shares[i], w.Payloads)
	if err != nil {
		t.Fatal(err)
	}
	return EncodeExtension(&Extension{Height: h, Batch: w.Record.Hash(), Shares: sb})
}

// sign is validator i's extension signature for height h, round 0.
func (f *voteFixture) sign(t *testing.T, i int, h int64, ext []byte) []byte {
	msg, err := protoio.MarshalDelimited(&cmtproto.CanonicalVoteExtension{Extension: ext, Height: h, Round: 0, ChainId: certify.ChainID(f.in.ID())})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := f.privs[i].Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (f *voteFixture) verify(t *testing.T, i int, h int64, hash, ext []byte) abcitypes.ResponseVerifyVoteExtension_VerifyStatus {
	res, err := f.app.VerifyVoteExtension(context.Background(), &abcitypes.RequestVerifyVoteExtension{Hash: hash, ValidatorAddress: f.addr(i), Height: h, VoteExtension: ext})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func (f *voteFixture) process(t *testing.T, h int64, hash []byte, txs [][]byte, lc abcitypes.CommitInfo) abcitypes.ResponseProcessProposal_ProposalStatus {
	res, err := f.app.ProcessProposal(context.Background(), &abcitypes.RequestProcessProposal{Hash: hash, Height: h, Txs: txs, ProposedLastCommit: lc})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// TestVoteExtensions: a block with an encrypted transaction fixes a batch;
// this validator's extension for it is its share batch; another
// validator's extension is accepted when it is its own valid share batch
// for that batch and height, or empty, and rejected with a bad proof,
// another height (a replay), another batch, another key (another
// epoch's), another keyholder's shares, from a validator outside the set,
// or malformed. At the next height a proposal without the shares
// transaction, with a vote's extension left out, with votes reordered or
// with a forged extension signature is rejected; the honest one is
// accepted, and executing it opens the batch first.
func TestVoteExtensions(t *testing.T) {
	ctx := context.Background()
	f := newVoteFixture(t)
	pk, err := f.in.ThresholdKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := tfhe.Seal(pk, []byte("not a transaction"), fractal.EncryptedContext(f.in.ID()))
	if err != nil {
		t.Fatal(err)
	}
	payload := p.Encode()
	txs := [][]byte{fractal.EncryptedTx(payload)}
	h1 := bytes.Repeat([]byte{1}, 32)
	if st := f.process(t, 1, h1, txs, abcitypes.CommitInfo{}); st != abcitypes.ResponseProcessProposal_ACCEPT {
		t.Fatalf("block 1: %v", st)
	}
	ev, err := f.app.ExtendVote(ctx, &abcitypes.RequestExtendVote{Hash: h1, Height: 1, Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.in.BatchAfter(1, txs, nil)
	if err != nil || w == nil || w.Record.PayloadIDs[0] != sha256.Sum256(payload) {
		t.Fatalf("batch after block 1: %+v %v", w, err)
	}
	own, err := DecodeExtension(ev.VoteExtension)
	if err != nil || own.Height != 1 || own.Batch != w.Record.Hash() || own.Shares.Index != 1 {
		t.Fatalf("own extension %+v %v", own, err)
	}

	good := f.extension(t, 1, 1, w) // validator 1 = keyholder 2
	badProof := bytes.Clone(good)
	badProof[len(badProof)-1] ^= 1
	e, _ := DecodeExtension(good)
	e.Height = 2
	otherHeight := EncodeExtension(e)
	e, _ = DecodeExtension(good)
	e.Batch[0] ^= 1
	otherBatch := EncodeExtension(e)
	e, _ = DecodeExtension(good)
	e.Shares.Key[0] ^= 1
	otherKey := EncodeExtension(e)
	accept, reject := abcitypes.ResponseVerifyVoteExtension_ACCEPT, abcitypes.ResponseVerifyVoteExtension_REJECT
	for _, c := range []struct {
		name string
		from int
		ext  []byte
		want abcitypes.ResponseVerifyVoteExtension_VerifyStatus
	}{
		{"its own shares", 1, good, accept},
		{"empty", 2, nil, accept},
		{"bad proof", 1, badProof, reject},
		{"another height", 1, otherHeight, reject},
		{"another batch", 1, otherBatch, reject},
		{"another key", 1, otherKey, reject},
		{"another keyholder's shares", 2, good, reject},
		{"malformed", 1, []byte{1, 2, 3}, reject},
	} {
		if got := f.verify(t, c.from, 1, h1, c.ext); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if res, _ := f.app.VerifyVoteExtension(ctx, &abcitypes.RequestVerifyVoteExtension{Hash: h1, ValidatorAddress: bytes.Repeat([]byte{9}, 20), Height: 1, VoteExtension: good}); res.Status != reject {
		t.Errorf("a validator outside the set: %v", res.Status)
	}

	fin, err := f.app.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Hash: h1, Height: 1, Txs: txs})
	if err != nil || fin.TxResults[0].Code != CodeOK {
		t.Fatalf("finalize 1: %v %+v", err, fin)
	}
	if _, err := f.app.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	if st, err := f.in.PendingEncrypted(); err != nil || st == nil || st.Needed != 3 {
		t.Fatalf("pending after block 1: %+v %v", st, err)
	}

	// Height 2: the last commit of height 1, four precommits.
	ec, lc := f.lastCommit(t, 1, w)
	sharesTx := func(ec abcitypes.ExtendedCommitInfo) []byte {
		raw, err := EncodeSharesTx(&ec)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	dropped := ec
	dropped.Votes = append([]abcitypes.ExtendedVoteInfo(nil), ec.Votes...)
	dropped.Votes[2].VoteExtension, dropped.Votes[2].ExtensionSignature = nil, nil
	reordered := ec
	reordered.Votes = append([]abcitypes.ExtendedVoteInfo(nil), ec.Votes...)
	reordered.Votes[0], reordered.Votes[1] = reordered.Votes[1], reordered.Votes[0]
	forged := ec
	forged.Votes = append([]abcitypes.ExtendedVoteInfo(nil), ec.Votes...)
	forged.Votes[3].VoteExtension = f.extension(t, 3, 1, w) // a fresh share batch: new proofs, old signature
	if bytes.Equal(forged.Votes[3].VoteExtension, ec.Votes[3].VoteExtension) {
		t.Fatal("share batches are deterministic; the forged case proves nothing")
	}
	h2 := bytes.Repeat([]byte{2}, 32)
	for _, c := range []struct {
		name string
		txs  [][]byte
		want abcitypes.ResponseProcessProposal_ProposalStatus
	}{
		{"no shares transaction", nil, abcitypes.ResponseProcessProposal_REJECT},
		{"a vote's extension left out", [][]byte{sharesTx(dropped)}, abcitypes.ResponseProcessProposal_REJECT},
		{"votes reordered", [][]byte{sharesTx(reordered)}, abcitypes.ResponseProcessProposal_REJECT},
		{"a forged extension signature", [][]byte{sharesTx(forged)}, abcitypes.ResponseProcessProposal_REJECT},
		{"shares transaction not first", [][]byte{fractal.DeployTx([]byte("return true")), sharesTx(ec)}, abcitypes.ResponseProcessProposal_REJECT},
		{"honest", [][]byte{sharesTx(ec)}, abcitypes.ResponseProcessProposal_ACCEPT},
	} {
		if got := f.process(t, 2, h2, c.txs, lc); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	fin, err = f.app.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Hash: h2, Height: 2, Txs: [][]byte{sharesTx(ec)}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := fin.TxResults[0].Events; len(ev) != 1 || ev[0].Attributes[0].Value != "1,2,3,4" {
		t.Fatalf("shares result %+v", fin.TxResults[0])
	}
	if _, err := f.app.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	o, err := f.in.Outcome(sha256.Sum256(payload))
	if err != nil || o.Receipt == nil || !strings.Contains(o.Receipt.Reason, "does not parse") {
		t.Fatalf("outcome %+v %v", o, err)
	}
	if st, err := f.in.PendingEncrypted(); err != nil || st != nil {
		t.Fatalf("pending after block 2: %+v %v", st, err)
	}
}

// lastCommit is four precommits for height h whose extensions carry every
// validator's shares for w, and the block's matching last commit.
func (f *voteFixture) lastCommit(t *testing.T, h int64, w *fractal.WaitingBatch) (abcitypes.ExtendedCommitInfo, abcitypes.CommitInfo) {
	var ec abcitypes.ExtendedCommitInfo
	var lc abcitypes.CommitInfo
	for i := range 4 {
		ext := f.extension(t, i, h, w)
		v := abcitypes.Validator{Address: f.addr(i), Power: 10}
		ec.Votes = append(ec.Votes, abcitypes.ExtendedVoteInfo{Validator: v, VoteExtension: ext, ExtensionSignature: f.sign(t, i, h, ext), BlockIdFlag: cmtproto.BlockIDFlagCommit})
		lc.Votes = append(lc.Votes, abcitypes.VoteInfo{Validator: v, BlockIdFlag: cmtproto.BlockIDFlagCommit})
	}
	return ec, lc
}

// decide finalizes and commits a block of txs at height h.
func (f *voteFixture) decide(t *testing.T, h int64, txs ...[]byte) *abcitypes.ResponseFinalizeBlock {
	ctx := context.Background()
	res, err := f.app.FinalizeBlock(ctx, &abcitypes.RequestFinalizeBlock{Hash: bytes.Repeat([]byte{byte(h)}, 32), Height: h, Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.app.Commit(ctx, &abcitypes.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPlainCopyInTheFixingBlock: a transaction handed in both plain and
// encrypted lands in one block: the plain copy runs there, the encrypted
// one is dropped as a replay when its batch opens at the next height
// (which accepts nothing), and verify re-derives the same.
func TestPlainCopyInTheFixingBlock(t *testing.T) {
	f := newVoteFixture(t)
	src := []byte("return true")
	app := notes.Hash(sha256.Sum256(src))
	f.decide(t, 1, fractal.DeployTx(src))
	alice, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(app[:])
	tx := &phases.Tx{Nonce: 1, GasLimit: 1_000_000, Write: notes.ConstraintSet{notes.AnyPattern().WithProvenance(nil).WithApplication(app).WithOwner(app)},
		Calculation: fmt.Appendf(nil, "return {{provenance={}, application=%q, owner=%q, key='coin', value='1'}}", h, h),
		Signers:     []keys.PublicKey{alice.Public()}}
	if err := tx.Sign(rand.Reader, alice); err != nil {
		t.Fatal(err)
	}
	pk, err := f.in.ThresholdKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := fractal.EncryptTx(pk, f.in.ID(), tx)
	if err != nil {
		t.Fatal(err)
	}
	payload := p.Encode()
	res := f.decide(t, 2, tx.Encode(), fractal.EncryptedTx(payload))
	if res.TxResults[0].Code != CodeOK || res.TxResults[1].Code != CodeOK {
		t.Fatalf("block 2: %+v", res.TxResults)
	}
	w, err := f.in.Waiting()
	if err != nil || w == nil {
		t.Fatalf("waiting: %v %v", w, err)
	}
	ec, _ := f.lastCommit(t, 2, w)
	raw, err := EncodeSharesTx(&ec)
	if err != nil {
		t.Fatal(err)
	}
	f.decide(t, 3, raw)
	o, err := f.in.Outcome(sha256.Sum256(payload))
	if err != nil || o.Receipt == nil || !strings.Contains(o.Receipt.Reason, "replayed transaction: already executed in block 1") {
		t.Fatalf("outcome %+v %v", o.Receipt, err)
	}
	if _, err := f.in.Verify(context.Background(), nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
