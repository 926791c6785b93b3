package validator

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/certify"
)

// substitute is a validator that, once armed, executes another
// transaction than the one decided in a block's first place: its
// execution differs from the network's.
type substitute struct {
	abcitypes.Application
	armed atomic.Pointer[[]byte]
}

func (s *substitute) FinalizeBlock(ctx context.Context, req *abcitypes.RequestFinalizeBlock) (*abcitypes.ResponseFinalizeBlock, error) {
	if tx := s.armed.Load(); tx != nil && len(req.Txs) > 0 {
		changed := *req
		changed.Txs = append([][]byte{*tx}, req.Txs[1:]...)
		req = &changed
	}
	return s.Application.FinalizeBlock(ctx, req)
}

// TestFaults: duplicate-vote evidence signed with a validator's real key
// reaches every validator's store through a block (fractal evidence lists
// it); a validator whose execution differs from the others' stops with
// one line naming the height and the first transaction whose result
// differs, and the others go on.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	bad := &substitute{}
	tn := newTestnet(t, 4, DevnetOptions{}, map[int]func(abcitypes.Application) abcitypes.Application{
		3: func(a abcitypes.Application) abcitypes.Application { bad.Application = a; return bad },
	})
	tn.waitFor(30*time.Second, "height 3", func() bool { return tn.decided(0) >= 3 })

	// v1 signs two different precommits at one height and round.
	n0 := tn.nodes[0].Comet()
	vals := readTrust(t, tn.dir+"/devnet").Validators.Comet()
	evH := n0.BlockStore().Height() - 1
	meta := n0.BlockStore().LoadBlockMeta(evH)
	pv, err := loadFilePV(tn.nodes[1].conf)
	if err != nil {
		t.Fatal(err)
	}
	mock := types.NewMockPVWithParams(pv.Key.PrivKey, false, false) // no double-sign guard
	idx, _ := vals.GetByAddress(pv.GetAddress())
	randomID := func() types.BlockID {
		a, b := make([]byte, 32), make([]byte, 32)
		rand.Read(a)
		rand.Read(b)
		return types.BlockID{Hash: a, PartSetHeader: types.PartSetHeader{Total: 1, Hash: b}}
	}
	chainID := certify.ChainID(tn.nodes[0].Instance().ID())
	va, err := types.MakeVote(mock, chainID, idx, evH, 0, cmtproto.PrecommitType, randomID(), meta.Header.Time)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := types.MakeVote(mock, chainID, idx, evH, 0, cmtproto.PrecommitType, randomID(), meta.Header.Time)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := types.NewDuplicateVoteEvidence(va, vb, meta.Header.Time, vals)
	if err != nil {
		t.Fatal(err)
	}
	if err := n0.EvidencePool().AddEvidence(ev); err != nil {
		t.Fatal(err)
	}
	for _, i := range tn.running() {
		tn.waitFor(30*time.Second, fmt.Sprintf("v%d records the evidence", i), func() bool {
			recs, err := tn.nodes[i].Instance().Misbehavior()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				return false
			}
			m, err := abci.DecodeMisbehavior(recs[0].Record)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || m.Type != "duplicate vote" || !bytes.Equal(m.Validator, pv.GetAddress()) || m.Height != evH || m.Power != 10 || m.TotalPower != 40 {
				t.Fatalf("v%d: %d records, %+v", i, len(recs), m)
			}
			return true
		})
	}

	// v3 executes another transaction in the mint's place.
	w := newWorld(t)
	src := []byte("return true")
	w.app = tn.deploy(src)
	other := w.tx(t, "", "elsewhere", "1").Encode()
	bad.armed.Store(&other)
	mint := w.tx(t, "", "coin", "1")
	tn.submit(0, mint.Encode())
	var failure error
	select {
	case failure = <-tn.nodes[3].Failed():
	case <-time.After(60 * time.Second):
		t.Fatal("the diverging validator did not stop")
	}
	tn.nodes[3].Stop()
	tn.nodes[3] = nil
	tn.committed(mint.ID())
	at, _, err := tn.nodes[0].Instance().DecidedAt(blockOf(t, tn.nodes[0], mint.ID()))
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(fmt.Sprintf(`^validator: execution differs from the network's at height %d: transaction 0 \([0-9a-f]{64}\): state root after it [0-9a-f]{64} here, [0-9a-f]{64} in the network's \(the network's from http://127\.0\.0\.[123]:[0-9]+\); this validator stops$`, at))
	if msg := failure.Error(); !want.MatchString(msg) || strings.Contains(msg, "\n") {
		t.Fatalf("failure: %q", msg)
	}
	t.Logf("v3 stopped: %v", failure)
	h := tn.decided(0)
	tn.waitFor(30*time.Second, "the others go on", func() bool { return tn.decided(0) >= h+2 })
	tn.agree()
}

// blockOf is the height of n's block holding transaction id.
func blockOf(t testing.TB, n *Node, id [32]byte) uint64 {
	head, err := n.Instance().Head()
	if err != nil {
		t.Fatal(err)
	}
	for h := head.Height; h > 0; h-- {
		b, err := n.Instance().Block(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range b.TxIDs {
			if x == id {
				return h
			}
		}
	}
	t.Fatalf("no block holds %x", id)
	return 0
}
