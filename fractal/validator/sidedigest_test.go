package validator

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
)

// TestSideRecordDivergence (decision 174): a validator whose copy of a
// batch record differs — it fixed another payload in a block that accepts
// no transaction, so every result agrees — stops with the divergence line
// at that height, while the others open the batch and go on; their query
// proofs and certified manifests, whose certificates now carry the side
// digest (version 2), check against the genesis validator set alone.
func TestSideRecordDivergence(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	bad := &substitute{}
	tn := newTestnet(t, 4, DevnetOptions{Encrypted: true}, map[int]func(abcitypes.Application) abcitypes.Application{
		3: func(a abcitypes.Application) abcitypes.Application { bad.Application = a; return bad },
	})
	pk, id := tn.devn.ThresholdKey, tn.devn.Trust.ID
	w := tn.mintedWorld(0)
	encrypt := func(tx *phases.Tx) []byte {
		p, err := fractal.EncryptTx(pk, id, tx)
		if err != nil {
			t.Fatal(err)
		}
		return fractal.EncryptedTx(p.Encode())
	}
	move := w.tx(t, "coin", "coin2", "1")
	raw := encrypt(move)
	other := encrypt(w.tx(t, "coin", "elsewhere", "1"))
	bad.armed.Store(&other)
	tn.submit(0, raw)
	var failure error
	select {
	case failure = <-tn.nodes[3].Failed():
	case <-time.After(60 * time.Second):
		t.Fatal("the validator with another batch record did not stop")
	}
	tn.nodes[3].Stop()
	tn.nodes[3] = nil
	tn.committed(move.ID())
	at := tn.heightOf(0, raw)
	want := regexp.MustCompile(fmt.Sprintf(`^validator: execution differs from the network's at height %d: every transaction's result agrees; the app hash differs \(the manifest, or the encrypted-mempool and epoch records the block wrote\) \(the network's from http://127\.0\.0\.[123]:[0-9]+\); this validator stops$`, at))
	if msg := failure.Error(); !want.MatchString(msg) || strings.Contains(msg, "\n") {
		t.Fatalf("failure: %q", msg)
	}
	t.Logf("v3 stopped: %v", failure)
	tn.agree()

	// A query proof of the opened batch's note, checked offline.
	trust := readTrust(t, tn.dir+"/devnet")
	res, err := tn.nodes[1].App().Query(context.Background(), queryProve(w.key("coin2")))
	if err != nil || res.Code != abci.CodeOK {
		t.Fatalf("query: %v %d %s", err, res.Code, res.Log)
	}
	qp, err := chain.DecodeQueryProof(res.Value)
	if err != nil {
		t.Fatal(err)
	}
	if len(qp.Certificate) == 0 || qp.Certificate[0] != 2 {
		t.Fatalf("the certificate after a batch is not version 2: % x", qp.Certificate[:1])
	}
	if st, err := chain.CheckQueryProofBy(qp, trust.Validators, &trust.ID); err != nil || st.Note == nil || string(st.Note.Value) != "1" {
		t.Fatalf("proof: %+v %v", st, err)
	}
	// The certified manifests, imported into another validator's copy.
	var file []byte
	tn.waitFor(30*time.Second, "the opened batch's block is certified", func() bool {
		var n int
		var err error
		file, n, err = certifiedManifests(tn.nodes[0].Instance(), tn.nodes[0].Comet().BlockStore())
		if err != nil {
			t.Fatal(err)
		}
		return n >= 3 // genesis, the mint, the opened batch
	})
	if r, err := tn.nodes[2].Instance().ImportManifests(file); err != nil || r.Known == 0 || r.Stored != 0 {
		t.Fatalf("import: %+v %v", r, err)
	}
}
