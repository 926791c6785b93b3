package validator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	abcitypes "github.com/cometbft/cometbft/abci/types"
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/rpc"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/phases"
)

// sharesFault makes a validator go wrong with the threshold key's shares,
// switched on and off while the devnet runs.
type sharesFault struct {
	abcitypes.Application
	proposer *atomic.Int32 // a proposeFault: the first proposal at each height with shares goes wrong
	extend   *atomic.Int32 // an extendFault: this validator's extensions go wrong

	mu       sync.Mutex
	tried    map[int64]bool
	lastExt  []byte        // this validator's previous non-empty extension (for a replay)
	rejected *atomic.Int32 // proposals this validator rejected
}

const (
	proposeHonest = iota
	proposeOmitShares
	proposeDropVote
	proposeReorderVotes
)

const (
	extendHonest = iota
	extendEmpty
	extendBadProof
	extendReplay
	extendOtherKey
)

func (f *sharesFault) PrepareProposal(ctx context.Context, req *abcitypes.RequestPrepareProposal) (*abcitypes.ResponsePrepareProposal, error) {
	res, err := f.Application.PrepareProposal(ctx, req)
	mode := f.proposer.Load()
	if err != nil || mode == proposeHonest || len(res.Txs) == 0 {
		return res, err
	}
	ec, derr := abci.DecodeSharesTx(res.Txs[0])
	f.mu.Lock()
	first := !f.tried[req.Height]
	f.tried[req.Height] = true
	f.mu.Unlock()
	if derr != nil || !first {
		return res, err
	}
	switch mode {
	case proposeOmitShares:
		res.Txs = res.Txs[1:]
		return res, nil
	case proposeDropVote: // one included vote's extension left out
		for i, v := range ec.Votes {
			if len(v.VoteExtension) > 0 {
				ec.Votes[i].VoteExtension, ec.Votes[i].ExtensionSignature = nil, nil
				break
			}
		}
	case proposeReorderVotes:
		ec.Votes[0], ec.Votes[1] = ec.Votes[1], ec.Votes[0]
	}
	if res.Txs[0], err = abci.EncodeSharesTx(ec); err != nil {
		return nil, err
	}
	return res, nil
}

func (f *sharesFault) ProcessProposal(ctx context.Context, req *abcitypes.RequestProcessProposal) (*abcitypes.ResponseProcessProposal, error) {
	res, err := f.Application.ProcessProposal(ctx, req)
	if err == nil && res.Status == abcitypes.ResponseProcessProposal_REJECT {
		f.rejected.Add(1)
	}
	return res, err
}

func (f *sharesFault) ExtendVote(ctx context.Context, req *abcitypes.RequestExtendVote) (*abcitypes.ResponseExtendVote, error) {
	res, err := f.Application.ExtendVote(ctx, req)
	if err != nil || len(res.VoteExtension) == 0 {
		return res, err
	}
	f.mu.Lock()
	last := f.lastExt
	f.lastExt = res.VoteExtension
	f.mu.Unlock()
	switch f.extend.Load() {
	case extendEmpty:
		res.VoteExtension = nil
	case extendBadProof: // the last byte of the last share's proof
		e := bytes.Clone(res.VoteExtension)
		e[len(e)-1] ^= 1
		res.VoteExtension = e
	case extendReplay:
		if last != nil {
			res.VoteExtension = last
		}
	case extendOtherKey: // shares that claim another key (another epoch's)
		e, err := abci.DecodeExtension(res.VoteExtension)
		if err != nil {
			return nil, err
		}
		e.Shares.Key[0] ^= 1
		res.VoteExtension = abci.EncodeExtension(e)
	}
	return res, nil
}

// sharesFaults are the switches of n validators wrapped in sharesFault:
// one proposer mode for all, an extension mode each.
type sharesFaults struct {
	proposer, rejected *atomic.Int32
	extend             []*atomic.Int32
	faulty             map[int]func(abcitypes.Application) abcitypes.Application
}

func newSharesFaults(n int) *sharesFaults {
	sf := &sharesFaults{proposer: &atomic.Int32{}, rejected: &atomic.Int32{}, faulty: map[int]func(abcitypes.Application) abcitypes.Application{}}
	for i := range n {
		sf.extend = append(sf.extend, &atomic.Int32{})
		sf.faulty[i] = func(app abcitypes.Application) abcitypes.Application {
			return &sharesFault{Application: app, proposer: sf.proposer, extend: sf.extend[i], tried: map[int64]bool{}, rejected: sf.rejected}
		}
	}
	return sf
}

// encrypt seals tx to the testnet's threshold key: the encrypted
// transaction and its payload ID.
func (tn *testnet) encrypt(tx *phases.Tx) ([]byte, [32]byte) {
	p, err := fractal.EncryptTx(tn.devn.ThresholdKey, tn.devn.Trust.ID, tx)
	if err != nil {
		tn.t.Fatal(err)
	}
	raw := p.Encode()
	return fractal.EncryptedTx(raw), sha256.Sum256(raw)
}

// TestEncryptedOnFourValidators: on four validators holding the genesis
// DKG's shares, an encrypted transfer is ordered at a height H and opened
// and run at H+1 with the shares from the precommits of H, the same on all
// four. A proposer that leaves out the shares, one included vote's
// extension, or reorders the votes is rejected by the others, and the next
// proposer opens the batch in its order (two conflicting transfers: the
// first wins everywhere). A validator whose extension carries a bad proof,
// replays an older batch's shares or claims another key loses its
// precommit (the others reject the extension: TestVoteExtensions in
// package abci), and the batch still opens with the others'. With only k−1 = 2 validators making
// shares the batch waits, shown as waiting, never opened; once a third
// makes them again it opens.
func TestEncryptedOnFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	sf := newSharesFaults(4)
	proposer, rejected, extend := sf.proposer, sf.rejected, sf.extend
	tn := newTestnet(t, 4, DevnetOptions{Encrypted: true}, sf.faulty)
	w := tn.mintedWorld(0)
	encrypt := tn.encrypt

	// Ordered at H, opened at H+1.
	move := w.tx(t, "coin", "coin2", "1")
	raw, payload := encrypt(move)
	tn.submit(1, raw)
	tn.committed(move.ID())
	for _, i := range tn.running() {
		in := tn.nodes[i].Instance()
		o, err := in.Outcome(payload)
		if err != nil || o.TxID != move.ID() || o.Slot != 0 {
			t.Fatalf("v%d: outcome %+v %v", i, o, err)
		}
		ordered := tn.heightOf(i, raw)
		_, block, err := in.TxState(move.ID())
		if err != nil {
			t.Fatal(err)
		}
		opened, _, err := in.DecidedAt(block)
		if err != nil {
			t.Fatal(err)
		}
		if opened != uint64(ordered)+1 {
			t.Fatalf("v%d: ordered at %d, opened at %d", i, ordered, opened)
		}
	}
	tn.agree()

	// A proposer going wrong with the shares is rejected; the batch opens in its order.
	for _, mode := range []int32{proposeOmitShares, proposeDropVote, proposeReorderVotes} {
		proposer.Store(mode)
		before := rejected.Load()
		a, b := w.tx(t, "coin2", "gold", "1"), w.tx(t, "coin2", "silver", "1")
		rawA, _ := encrypt(a)
		rawB, payloadB := encrypt(b)
		tn.submit(2, rawA)
		tn.submit(2, rawB)
		tn.committed(a.ID())
		for _, i := range tn.running() { // b may be in the next block's batch
			var o *fractal.EncryptedOutcome
			tn.waitFor(30*time.Second, "the second transfer's batch opens", func() bool {
				got, err := tn.nodes[i].Instance().Outcome(payloadB)
				o = got
				return err == nil
			})
			if o.Receipt == nil || o.Receipt.Status == phases.Accepted {
				t.Fatalf("mode %d, v%d: the second conflicting transfer %+v", mode, i, o.Receipt)
			}
		}
		if rejected.Load() == before {
			t.Fatalf("mode %d: no proposal was rejected", mode)
		}
		tn.agree()
		proposer.Store(proposeHonest)
		back := w.tx(t, "gold", "coin2", "1") // the note again, for the next mode
		tn.submit(0, back.Encode())
		tn.committed(back.ID())
	}

	// A bad proof, or an older batch's shares replayed, in v0's extension:
	// its precommit is rejected, the batch opens with the others' shares.
	for _, mode := range []int32{extendBadProof, extendReplay, extendOtherKey} {
		extend[0].Store(mode)
		tx := w.tx(t, "coin2", "coin3", "1")
		raw, payload := encrypt(tx)
		tn.submit(3, raw)
		tn.committed(tx.ID())
		for _, i := range tn.running() {
			if o, err := tn.nodes[i].Instance().Outcome(payload); err != nil || o.TxID != tx.ID() {
				t.Fatalf("extension mode %d, v%d: outcome %+v %v", mode, i, o, err)
			}
		}

		extend[0].Store(extendHonest)
		back := w.tx(t, "coin3", "coin2", "1")
		tn.submit(0, back.Encode())
		tn.committed(back.ID())
	}
	tn.agree()

	// Only k−1 = 2 validators make shares: the batch waits, never opened.
	extend[2].Store(extendEmpty)
	extend[3].Store(extendEmpty)
	late := w.tx(t, "coin2", "coin4", "1")
	raw, payload = encrypt(late)
	tn.submit(1, raw)
	tn.waitFor(30*time.Second, "the batch waits on every validator", func() bool {
		for _, i := range tn.running() {
			st, err := tn.nodes[i].Instance().PendingEncrypted()
			if err != nil {
				t.Fatal(err)
			}
			if st == nil || len(st.Batch.PayloadIDs) != 1 || st.Batch.PayloadIDs[0] != payload || st.Needed != 3 {
				return false
			}
		}
		return true
	})
	h := tn.decided(0)
	tn.waitFor(30*time.Second, "three more heights", func() bool { return tn.decided(0) >= h+3 })
	for _, i := range tn.running() {
		if o, err := tn.nodes[i].Instance().Outcome(payload); err == nil {
			t.Fatalf("v%d opened a batch with k−1 validators' shares: %+v", i, o)
		}
		if rc, _ := tn.nodes[i].Instance().Receipt(late.ID()); rc != nil {
			t.Fatalf("v%d holds a receipt for the waiting transaction", i)
		}
	}
	// A third validator makes shares again: the batch opens.
	extend[2].Store(extendHonest)
	tn.committed(late.ID())
	tn.agree()
	// Every validator's store re-verifies: each opened batch decrypts again
	// to its outcomes and its block's first transactions.
	for _, i := range tn.running() {
		if _, err := tn.nodes[i].Instance().Verify(context.Background(), nil); err != nil {
			t.Fatalf("v%d: verify: %v", i, err)
		}
	}
}

// heightOf is the consensus height of the block of validator i's store
// that holds raw.
func (tn *testnet) heightOf(i int, raw []byte) int64 {
	tn.t.Helper()
	bs := tn.nodes[i].Comet().BlockStore()
	for h := bs.Height(); h >= bs.Base(); h-- {
		b := bs.LoadBlock(h)
		for _, tx := range b.Txs {
			if bytes.Equal(tx, raw) {
				return h
			}
		}
	}
	tn.t.Fatalf("v%d: no block holds the transaction", i)
	return 0
}

// TestEncryptedExpiryOnFourValidators (decision 164): on four validators
// whose batches may wait 6 heights, only k−1 = 2 validators make shares:
// an encrypted transfer's batch waits, shown alike on every validator
// (fixed height, expiry height, the keyholders of the last shares
// transaction, never the other two; the same through the API's
// GetPendingEncrypted), then expires in the block at its
// fixing height + 6 with the drop receipt of a solo expiry, the
// transaction never run. With the shares back, the same transfer sealed
// afresh is fixed and opens; every validator holds the same blocks and
// outcomes and re-verifies its store.
func TestEncryptedExpiryOnFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	sf := newSharesFaults(4)
	extend := sf.extend
	tn := newTestnet(t, 4, DevnetOptions{Encrypted: true, EncryptedExpiryBlocks: 6}, sf.faulty)
	w := tn.mintedWorld(0)
	encrypt := tn.encrypt

	extend[2].Store(extendEmpty)
	extend[3].Store(extendEmpty)
	move := w.tx(t, "coin", "coin2", "1")
	raw, payload := encrypt(move)
	tn.submit(1, raw)
	var fixed uint64
	tn.waitFor(30*time.Second, "the batch waits on every validator after a shares transaction", func() bool {
		for _, i := range tn.running() {
			st, err := tn.nodes[i].Instance().PendingEncrypted()
			if err != nil {
				t.Fatal(err)
			}
			if st == nil || st.Chain == nil || st.Chain.SharesAt == 0 || st.Batch.PayloadIDs[0] != payload {
				return false
			}
			if fixed = st.Chain.FixedAt; st.Chain.ExpiresAt != fixed+6 || st.Needed != 3 || len(st.Shares) > 2 || slices.ContainsFunc(st.Shares, func(k int) bool { return k > 2 }) {
				t.Fatalf("v%d: pending %+v %+v", i, st, st.Chain)
			}
		}
		return true
	})
	if h := uint64(tn.heightOf(0, raw)); h != fixed {
		t.Fatalf("fixed at %d, the transaction is in the block at %d", fixed, h)
	}
	// The API's GetPendingEncrypted on v3 (what tfhe pending --node prints).
	n, err := node.New(tn.nodes[3].Instance(), node.DefaultConfig(), slog.New(slog.DiscardHandler), node.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := rpc.New(n)
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.GetPendingEncrypted(context.Background(), connect.NewRequest(&v1.GetPendingEncryptedRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := wire.ToEncryptedStatus(r.Msg.Batch); err != nil || st == nil || st.Batch.Number != 1 || st.Needed != 3 {
		t.Fatalf("API: pending %+v %v", st, err)
	}
	if c, err := wire.ToChainWait(r.Msg.Chain); err != nil || c.FixedAt != fixed || c.ExpiresAt != fixed+6 || c.SharesAt == 0 {
		t.Fatalf("API: chain %+v %v", c, err)
	}
	var outcome []byte
	for _, i := range tn.running() {
		tn.waitFor(30*time.Second, fmt.Sprintf("v%d expires the batch", i), func() bool {
			o, err := tn.nodes[i].Instance().Outcome(payload)
			if err != nil {
				return false
			}
			if o.Receipt.Reason != "encrypted transaction dropped: expired: not decrypted by 3 keyholders" || o.TxID != ([32]byte{}) {
				t.Fatalf("v%d: outcome %+v", i, o.Receipt)
			}
			if outcome == nil {
				outcome = o.Receipt.Encode()
			} else if !bytes.Equal(outcome, o.Receipt.Encode()) {
				t.Fatalf("v%d: another receipt", i)
			}
			return true
		})
		if rc, _ := tn.nodes[i].Instance().Receipt(move.ID()); rc != nil {
			t.Fatalf("v%d ran the expired transaction", i)
		}
		if st, err := tn.nodes[i].Instance().PendingEncrypted(); err != nil || (st != nil && st.Batch.Number == 1) {
			t.Fatalf("v%d: still pending %+v %v", i, st, err)
		}
	}

	extend[2].Store(extendHonest)
	extend[3].Store(extendHonest)
	raw, payload = encrypt(move) // sealed afresh: the old payload stays burnt
	tn.submit(2, raw)
	tn.committed(move.ID())
	for _, i := range tn.running() {
		if o, err := tn.nodes[i].Instance().Outcome(payload); err != nil || o.Batch != 2 || o.TxID != move.ID() {
			t.Fatalf("v%d: outcome of the fresh payload %+v %v", i, o, err)
		}
		if _, err := tn.nodes[i].Instance().Verify(context.Background(), nil); err != nil {
			t.Fatalf("v%d: verify: %v", i, err)
		}
	}
	tn.agree()
}
