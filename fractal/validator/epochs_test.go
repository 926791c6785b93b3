package validator

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
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
// share: each home then holds exactly its own epoch-2 share, and no saved
// party state. A transfer
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
	const epochBlocks, window = 40, 5
	roundOne := uint64(epochBlocks + 1 - 3*window) // the first height of the DKG's windows
	tn := newTestnetDealing(t, 4, DevnetOptions{Encrypted: true, EpochBlocks: epochBlocks, DKGWindow: window}, sf.faulty, map[int]dealHook{3: swapCommits})
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
	if h := tn.decided(0); h >= roundOne {
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
		// CometBFT's cache would refuse the same bytes before the app sees
		// them. (v0's app: the others may not have committed it yet.)
		r, err := tn.nodes[0].App().CheckTx(t.Context(), &abcitypes.RequestCheckTx{Tx: fractal.DKGTx(es[0].Encode()), Type: abcitypes.CheckTxType_New})
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
				t.Logf("epoch 2's DKG: heights %d–%d (%d blocks), %.1f s from round 1's window opening to the decision", roundOne, rec.Height, rec.Height-roundOne+1, time.Since(started).Seconds())
			} else if !bytes.Equal(rs[0].Encode(), rec.Encode()) {
				t.Fatalf("v%d decided %+v, v0 %+v", i, rs[0], rec)
			}
			return true
		})
	}
	if rec.Key == nil || rec.Epoch != 2 || rec.Height != epochBlocks || rec.Start != epochBlocks+1 || rec.Session != sid {
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
		if _, err := os.Stat(filepath.Join(home, KeyholderDir, keyholder.PartyFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("v%d keeps its party's state after its share is written: %v", i, err)
		}
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

// TestEpochDKGRestart (decision 175): v2 is stopped inside epoch 2's DKG
// once the chain recorded its deal; its party's state waits in its
// keyholder home (mode 0600). Started again, it resumes the party from it
// and the chain, answers the later rounds, and the DKG qualifies it as a
// dealer and a holder: it writes its own share of the key, and its saved
// state is gone.
func TestEpochDKGRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators through a DKG")
	}
	tn := newTestnet(t, 4, DevnetOptions{Encrypted: true, EpochBlocks: 40, DKGWindow: 8}, nil)
	var sid [32]byte
	tn.waitFor(90*time.Second, "v2's deal is recorded", func() bool {
		st, err := tn.nodes[0].Instance().Epochs()
		if err != nil {
			t.Fatal(err)
		}
		if st.Round < 1 {
			return false
		}
		sid = st.Session.ID()
		es, err := tn.nodes[0].Instance().DKGEnvelopes(sid)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(es, func(e *dkg.Envelope) bool { return e.Kind == dkg.KindDeal && e.From == 3 })
	})
	tn.stop(2)
	home := filepath.Join(tn.devn.Homes[2], KeyholderDir)
	if fi, err := os.Stat(filepath.Join(home, keyholder.PartyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("v2's saved party: %v %v", fi, err)
	}
	if st, err := tn.nodes[0].Instance().Epochs(); err != nil || st.Round < 1 || st.Round > 2 {
		t.Fatalf("v2 stopped outside rounds 1–2: %+v %v", st, err)
	}
	tn.start(2)
	var rec *fractal.EpochRecord
	tn.waitFor(90*time.Second, "epoch 2's key is decided", func() bool {
		rs, err := tn.nodes[0].Instance().EpochRecords()
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			rec = rs[0]
		}
		return rec != nil
	})
	if rec.Key == nil || rec.Session != sid || !slices.Equal(rec.Qual, []int{1, 2, 3, 4}) || !slices.Equal(rec.Holders, []int{1, 2, 3, 4}) || len(rec.Faults) != 0 {
		t.Fatalf("record %+v", rec)
	}
	kh, err := keyholder.OpenHome(home)
	if err != nil {
		t.Fatal(err)
	}
	tn.waitFor(30*time.Second, "v2 writes its share", func() bool {
		sk, err := kh.Share(2)
		return err == nil && sk.Index == 3 && sk.PK.ID() == rec.Key.ID()
	})
	if _, err := os.Stat(filepath.Join(home, keyholder.PartyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("v2 keeps its party's state after its share is written: %v", err)
	}
	if !strings.Contains(tn.logs[2].String(), "epoch 2 DKG (attempt 0): party resumed in round ") {
		t.Fatal("v2 did not resume its party")
	}
}
