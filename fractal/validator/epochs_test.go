package validator

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// swapCommits is a bad dealer: its deal's first two commitments swapped,
// signed again (well formed; the shares of keyholders other than 1 no
// longer match, and it never answers their complaints).
func swapCommits(s *dkg.Session, key keys.PrivateKey, deal *dkg.Envelope) *dkg.Envelope {
	b := bytes.Clone(deal.Body)
	copy(b[4:36], deal.Body[36:68])
	copy(b[36:68], deal.Body[4:36])
	bad, err := s.Seal(key, deal.Kind, int(deal.From), b)
	if err != nil {
		panic(err)
	}
	return bad
}

// shareFiles lists every share file under dir, sorted.
func shareFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == keyholder.ShareFile {
			out = append(out, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestEpochsOnFourValidators: four validators with epochs of 40 heights
// and DKG rounds of 5 (the DKG for the epoch starting at 41 takes heights
// 26–40), v3 dealing badly. An encrypted transfer sealed to the genesis
// key opens with epoch-1 shares; a second, fixed under it while only k−1
// validators make shares, waits through the switch. Each validator's own
// party deals, responds and justifies in transactions; at height 40 every
// validator decides the same epoch-2 key: dealers 1–3, keyholder 4 named
// and left out as a dealer, all four holding a share, the transcript
// checking from the chain and from each home's copy. The key in force
// moves at 41; the waiting batch opens with epoch-1 shares once a third
// validator makes them again, after which every home deletes its epoch-1
// share: each home then holds exactly its own epoch-2 share. A transfer
// sealed to the epoch-2 key opens with epoch-2 shares, also after a
// validator restarts (its genesis names the genesis key). CheckTx refuses a
// DKG transaction that is no envelope, and a replay of one recorded, with
// the reasons.
func TestEpochsOnFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators through an epoch")
	}
	sf := newSharesFaults(4)
	extend := sf.extend
	tn := newTestnetDealing(t, 4, DevnetOptions{Encrypted: true, EpochBlocks: 40, DKGWindow: 5}, sf.faulty, map[int]dealHook{3: swapCommits})
	genesisKey, id := tn.devn.ThresholdKey, tn.devn.Trust.ID
	w := tn.mintedWorld(0)
	encrypt := func(pk *tfhe.PublicKey, tx *phases.Tx) ([]byte, [32]byte) {
		p, err := fractal.EncryptTx(pk, id, tx)
		if err != nil {
			t.Fatal(err)
		}
		raw := p.Encode()
		return fractal.EncryptedTx(raw), sha256.Sum256(raw)
	}
	opened := func(what string, payload [32]byte, want *phases.Tx) {
		for _, i := range tn.running() {
			tn.waitFor(30*time.Second, what, func() bool {
				o, err := tn.nodes[i].Instance().Outcome(payload)
				return err == nil && o.TxID == want.ID()
			})
		}
		tn.committed(want.ID())
	}

	// Epoch 1: a transfer sealed to the genesis key opens.
	move := w.tx(t, "coin", "coin2", "1")
	raw, payload := encrypt(genesisKey, move)
	tn.submit(1, raw)
	opened("the epoch-1 transfer opens", payload, move)

	// A second waits under the genesis key: only k−1 validators make shares.
	extend[2].Store(extendEmpty)
	extend[3].Store(extendEmpty)
	late := w.tx(t, "coin2", "coin3", "1")
	raw, latePayload := encrypt(genesisKey, late)
	tn.submit(1, raw)
	tn.waitFor(30*time.Second, "the batch waits", func() bool {
		wb, err := tn.nodes[0].Instance().Waiting()
		return err == nil && wb != nil && wb.Record.PayloadIDs[0] == latePayload
	})
	if h := tn.decided(0); h >= 26 {
		t.Fatalf("the setup took until height %d, past round 1's window: the test needs a faster machine or longer epochs", h)
	}

	// Hostile DKG transactions: one before the window; no envelope and a
	// replay of a recorded one in it.
	r, err := tn.nodes[0].Submit(t.Context(), fractal.DKGTx([]byte("early")))
	if err != nil || r.Code != abci.CodeRefused || !strings.Contains(r.Log, "no DKG window is open at height") {
		t.Fatalf("early DKG transaction: %+v %v", r, err)
	}
	var started time.Time
	tn.waitFor(60*time.Second, "round 1 opens", func() bool {
		st, err := tn.nodes[0].Instance().Epochs()
		if err != nil {
			t.Fatal(err)
		}
		started = time.Now()
		return st.Round >= 1
	})
	r, err = tn.nodes[0].Submit(t.Context(), fractal.DKGTx([]byte("no envelope")))
	if err != nil || r.Code != abci.CodeRefused || !strings.Contains(r.Log, "envelope refused") {
		t.Fatalf("garbage DKG transaction: %+v %v", r, err)
	}
	var sid [32]byte
	tn.waitFor(30*time.Second, "a deal is recorded", func() bool {
		st, err := tn.nodes[0].Instance().Epochs()
		if err != nil {
			t.Fatal(err)
		}
		sid = st.Session.ID()
		es, err := tn.nodes[0].Instance().DKGEnvelopes(sid)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return false
		}
		// CometBFT's cache would refuse the same bytes before the app sees them.
		r, err := tn.nodes[1].App().CheckTx(t.Context(), &abcitypes.RequestCheckTx{Tx: fractal.DKGTx(es[0].Encode()), Type: abcitypes.CheckTxType_New})
		if err != nil || r.Code != abci.CodeRefused || !strings.Contains(r.Log, "is recorded already") {
			t.Fatalf("replayed DKG transaction: %+v %v", r, err)
		}
		return true
	})

	// Height 40 decides epoch 2's key on every validator.
	var rec *fractal.EpochRecord
	for _, i := range tn.running() {
		tn.waitFor(90*time.Second, "epoch 2's key is decided", func() bool {
			rs, err := tn.nodes[i].Instance().EpochRecords()
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 0 {
				return false
			}
			if rec == nil {
				rec = rs[0]
				t.Logf("epoch 2's DKG: heights 26–%d (%d blocks), %.1f s from round 1's window opening to the decision", rec.Height, rec.Height-25, time.Since(started).Seconds())
			} else if !bytes.Equal(rs[0].Encode(), rec.Encode()) {
				t.Fatalf("v%d decided %+v, v0 %+v", i, rs[0], rec)
			}
			return true
		})
	}
	if rec.Key == nil || rec.Epoch != 2 || rec.Height != 40 || rec.Start != 41 || rec.Session != sid {
		t.Fatalf("record %+v", rec)
	}
	if !slices.Equal(rec.Qual, []int{1, 2, 3}) || !slices.Equal(rec.Holders, []int{1, 2, 3, 4}) ||
		len(rec.Faults) != 1 || rec.Faults[0].Keyholder != 4 || !strings.HasPrefix(rec.Faults[0].Reason, "deal left out: ") {
		t.Fatalf("qual %v holders %v faults %+v", rec.Qual, rec.Holders, rec.Faults)
	}
	newKey := rec.Key
	tr, err := tn.nodes[0].Instance().EpochTranscript(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tfhe.CheckChainTranscript(newKey, tr); err != nil {
		t.Fatalf("the chain's transcript: %v", err)
	}
	for _, i := range tn.running() {
		if pk, err := tn.nodes[i].Instance().ThresholdKey(); err != nil || pk.ID() != newKey.ID() {
			t.Fatalf("v%d's key in force: %v %v", i, pk, err)
		}
	}

	// The batch fixed under the genesis key still waits under it, and opens
	// with epoch-1 shares once a third validator makes them.
	wb, err := tn.nodes[0].Instance().Waiting()
	if err != nil || wb == nil || wb.Key.ID() != genesisKey.ID() {
		t.Fatalf("waiting after the switch: %+v %v", wb, err)
	}
	extend[2].Store(extendHonest)
	opened("the epoch-1 batch opens after the switch", latePayload, late)

	// Every home ends with exactly its own epoch-2 share.
	tn.waitFor(30*time.Second, "the epoch-1 shares are deleted", func() bool {
		return len(shareFiles(t, tn.dir)) == 4
	})
	files := shareFiles(t, tn.dir)
	for i, home := range tn.devn.Homes {
		if want := filepath.Join(home, KeyholderDir, "epoch-2", keyholder.ShareFile); files[i] != want {
			t.Fatalf("share files %v", files)
		}
		kh, err := keyholder.OpenHome(filepath.Join(home, KeyholderDir))
		if err != nil {
			t.Fatal(err)
		}
		sk, err := kh.Share(2)
		if err != nil || sk.Index != i+1 || sk.PK.ID() != newKey.ID() {
			t.Fatalf("v%d's epoch-2 share: %+v %v", i, sk, err)
		}
		ktr, err := kh.Transcript(2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tfhe.CheckChainTranscript(newKey, ktr); err != nil {
			t.Fatalf("v%d's transcript: %v", i, err)
		}
	}

	// A validator restarted after the switch opens (its genesis names the
	// genesis key, now archived) and votes with its epoch-2 share.
	tn.stop(1)
	tn.start(1)

	// A transfer sealed to the epoch-2 key opens with epoch-2 shares.
	after := w.tx(t, "coin3", "coin4", "1")
	raw, payload = encrypt(newKey, after)
	tn.submit(2, raw)
	opened("the epoch-2 transfer opens", payload, after)
	tn.agree()
}
