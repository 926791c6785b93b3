package fractal

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// epochFixture is a validator-set instance of four validators with a
// genesis threshold key (epoch 1) and epochs of 12 heights whose DKG
// rounds are 2 heights each: the DKG for the epoch starting at 13 takes
// heights 7–8, 9–10 and 11–12. Blocks are handed in as a consensus engine
// would (decide); the four keyholders' keys and genesis shares are here.
type epochFixture struct {
	*fixture
	ks     []keys.PrivateKey
	shares []*tfhe.KeyShare // of the genesis key
	pk     *tfhe.PublicKey
}

func newEpochFixture(t testing.TB) *epochFixture {
	t.Helper()
	var vals []certify.Validator
	for i := range 4 {
		var v certify.Validator
		copy(v.PubKey[:], ed25519.GenPrivKey().PubKey().Bytes())
		v.Power, v.Name = 10, "v"+string(rune('0'+i))
		vals = append(vals, v)
	}
	vs, err := certify.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	var salt [32]byte
	rand.Read(salt[:])
	home := t.TempDir() + "/inst"
	in, err := InitValidatorSet(home, DefaultConfig(), vs, salt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.db.Close() })
	f := &epochFixture{fixture: &fixture{in: in, home: home, alice: genKey(t), bob: genKey(t)}}
	for range 4 {
		f.ks = append(f.ks, genKey(t))
	}
	res, err := dkg.Run(context.Background(), dkg.Config{Instance: in.ID(), Epoch: 1, N: 4, K: 3, Keys: f.ks})
	if err != nil {
		t.Fatal(err)
	}
	if f.pk, err = tfhe.KeyFromDKG(tfhe.OriginDKG, res.Outcome); err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Shares {
		sk, err := tfhe.ShareFromDKG(f.pk, s)
		if err != nil {
			t.Fatal(err)
		}
		f.shares = append(f.shares, sk)
	}
	rules := &EpochRules{Blocks: 12, Window: 2}
	for _, k := range f.ks {
		rules.Keyholders = append(rules.Keyholders, k.Public())
	}
	if err := in.AttachGenesisEpochs(rules); err == nil || !strings.Contains(err.Error(), "genesis threshold key") {
		t.Fatalf("epochs without a key: %v", err)
	}
	if err := in.AttachGenesisThresholdKey(f.pk, DefaultEncryptedExpiryBlocks); err != nil {
		t.Fatal(err)
	}
	if err := in.AttachGenesisEpochs(rules); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/allow.lua")
	if err != nil {
		t.Fatal(err)
	}
	f.allow = *decide(t, in, 1, nil, DeployTx(src)).Results[0].Deployed
	return f
}

// dkgTxs are the DKG transactions of envelopes.
func dkgTxs(es ...*dkg.Envelope) [][]byte {
	var out [][]byte
	for _, e := range es {
		out = append(out, DKGTx(e.Encode()))
	}
	return out
}

// refusedWith fails unless err holds want.
func refusedWith(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: %v, want %q", what, err, want)
	}
}

// TestEpochDKGOnChain: the next epoch's DKG as consensus transactions on a
// validator set of four. Before round 1's window a DKG transaction is
// refused; in it, admission refuses bytes that are no envelope, another
// session's, one not signed by the keyholder it names, a confirmation, a
// response before round 2's window, and an envelope already recorded; a
// second different deal of keyholder 4 is recorded as evidence and a third
// refused, in admission and in a block. The four parties deal, respond and
// justify from what the chain recorded; at the last height of round 3 the
// block decides: dealers 1–3 qualify, keyholder 4 is named for its two
// deals, all four hold a share; the record, the epoch state and the new
// key are in the store, its transcript checks from the chain's envelopes
// alone, and every party's Settle gives its share of it. A batch fixed
// under the old key in that last block opens at the epoch start with
// old-key shares; a payload sealed to the old key after the switch is
// refused; one sealed to the new key opens with new-key shares. The next
// epoch's DKG, with nobody dealing, fails in the store and leaves the key
// in force; its next attempt is numbered 1.
func TestEpochDKGOnChain(t *testing.T) {
	f := newEpochFixture(t)
	in := f.in
	for h := uint64(2); h <= 5; h++ {
		decide(t, in, h, nil)
	}
	st, err := in.Epochs()
	if err != nil || st.Round != 0 || st.Boundary != 13 || st.Epoch != 1 {
		t.Fatalf("status at 5: %+v %v", st, err)
	}
	s1, err := in.sessionOf(st.Rules, epochState{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	early, err := s1.Seal(f.ks[0], dkg.KindDeal, 1, []byte("early"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.CheckPending(context.Background(), DKGTx(early.Encode()))
	refusedWith(t, "before the window", err, "no DKG window is open at height 6 (epoch 2's DKG opens at height 7)")
	decide(t, in, 6, nil)

	// Round 1: the deals.
	st, err = in.Epochs()
	if err != nil || st.Round != 1 || st.Session.ID() != s1.ID() {
		t.Fatalf("status at 6: %+v %v", st, err)
	}
	ps := make([]*dkg.Party, 4)
	var deals []*dkg.Envelope
	for i := range ps {
		if ps[i], err = dkg.NewParty(s1, f.ks[i]); err != nil {
			t.Fatal(err)
		}
		d, err := ps[i].Start()
		if err != nil {
			t.Fatal(err)
		}
		deals = append(deals, d)
	}
	other, err := in.sessionOf(st.Rules, epochState{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	seal := func(s *dkg.Session, k keys.PrivateKey, kind dkg.Kind, from int, body []byte) *dkg.Envelope {
		e, err := s.Seal(k, kind, from, body)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, c := range []struct {
		raw  []byte
		want string
	}{
		{DKGTx([]byte("not an envelope")), "envelope refused"},
		{DKGTx(seal(other, f.ks[0], dkg.KindDeal, 1, deals[0].Body).Encode()), "envelope from another session"},
		{DKGTx(seal(s1, f.ks[1], dkg.KindDeal, 1, deals[0].Body).Encode()), "not signed by keyholder 1's key"},
		{DKGTx(seal(s1, f.ks[0], dkg.KindConfirmation, 1, make([]byte, 32)).Encode()), "there is no round 4"},
		{DKGTx(seal(s1, f.ks[0], dkg.KindResponse, 1, []byte("r")).Encode()), "a response at height 7, in round 1's window"},
	} {
		_, err := in.CheckPending(context.Background(), c.raw)
		refusedWith(t, "hostile DKG transaction", err, c.want)
	}
	if p, err := in.CheckPending(context.Background(), DKGTx(deals[0].Encode())); err != nil || p.DKG == nil || p.GasLimit() != 0 {
		t.Fatalf("deal 1: %+v %v", p, err)
	}
	// Keyholder 4 deals three times: the second is evidence, the third refused.
	second := seal(s1, f.ks[3], dkg.KindDeal, 4, append(bytes.Clone(deals[3].Body[:len(deals[3].Body)-1]), deals[3].Body[len(deals[3].Body)-1]^1))
	third := seal(s1, f.ks[3], dkg.KindDeal, 4, deals[2].Body)
	dc := decide(t, in, 7, nil, append(dkgTxs(deals...), dkgTxs(second, third)...)...)
	for i, r := range dc.Results {
		if !r.DKG || (i < 5) != (r.Envelope != nil) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	refusedWith(t, "third deal in a block", dc.Results[5].Refused, "two different deals of keyholder 4 are recorded already as evidence; a third is refused")
	_, err = in.CheckPending(context.Background(), DKGTx(third.Encode()))
	refusedWith(t, "third deal", err, "a third is refused")
	_, err = in.CheckPending(context.Background(), DKGTx(deals[1].Encode()))
	refusedWith(t, "replayed deal", err, "this deal of keyholder 2 is recorded already")
	decide(t, in, 8, nil)

	// Rounds 2 and 3, each party reading the chain.
	step := func(h uint64) {
		recorded, err := in.DKGEnvelopes(s1.ID())
		if err != nil {
			t.Fatal(err)
		}
		var out []*dkg.Envelope
		for _, p := range ps {
			for _, e := range recorded {
				p.Receive(e.Encode())
			}
			es, err := p.Next()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, es...)
		}
		decide(t, in, h, nil, dkgTxs(out...)...)
	}
	step(9)
	decide(t, in, 10, nil)
	step(11)

	// The last height of round 3 fixes a batch under the old key and decides.
	move := f.mint(f.allow, f.allow, f.alice, "a", "1")
	oldPayload := encryptTo(t, f.pk, in.ID(), move)
	dc = decide(t, in, 12, nil, EncryptedTx(oldPayload))
	rec := dc.Epoch
	if rec == nil || rec.Key == nil || rec.Epoch != 2 || rec.Attempt != 0 || rec.Height != 12 || rec.Start != 13 {
		t.Fatalf("record %+v", rec)
	}
	if !slices.Equal(rec.Qual, []int{1, 2, 3}) || !slices.Equal(rec.Holders, []int{1, 2, 3, 4}) ||
		len(rec.Faults) != 1 || rec.Faults[0].Keyholder != 4 || !strings.HasPrefix(rec.Faults[0].Reason, "deal left out: sent two different deals") {
		t.Fatalf("qual %v holders %v faults %+v", rec.Qual, rec.Holders, rec.Faults)
	}
	newKey := rec.Key
	if have, err := in.ThresholdKey(); err != nil || have.ID() != newKey.ID() || newKey.Transcript != rec.Transcript {
		t.Fatalf("key in force %v %v", have, err)
	}
	if st, err = in.Epochs(); err != nil || st.Epoch != 2 || st.Session.Epoch != 3 || st.Session.Attempt != 0 {
		t.Fatalf("status after the decision %+v %v", st, err)
	}
	records, err := in.EpochRecords()
	if err != nil || len(records) != 1 || !bytes.Equal(records[0].Encode(), rec.Encode()) {
		t.Fatalf("records %+v %v", records, err)
	}
	tr, err := in.EpochTranscript(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tfhe.CheckChainTranscript(newKey, dkgRoundTrip(t, tr)); err != nil {
		t.Fatalf("transcript: %v", err)
	}
	newShares := make([]*tfhe.KeyShare, 4)
	for i, p := range ps {
		o, err := p.Settle(tr.Messages)
		if err != nil {
			t.Fatalf("party %d: %v", i+1, err)
		}
		if newShares[i], err = tfhe.ShareFromDKG(newKey, *o.Share); err != nil {
			t.Fatal(err)
		}
	}

	// The batch fixed under the old key opens at 13 with old-key shares.
	w, err := in.Waiting()
	if err != nil || w == nil || w.Key.ID() != f.pk.ID() {
		t.Fatalf("waiting %+v %v", w, err)
	}
	stale := encryptTo(t, f.pk, in.ID(), f.mint(f.allow, f.allow, f.alice, "stale", "1"))
	_, err = in.CheckPending(context.Background(), EncryptedTx(stale))
	refusedWith(t, "old-key payload after the switch", err, "payload made for another key")
	decide(t, in, 13, nil) // nothing: the batch needs shares
	openWith(t, in, 14, f.shares, w)
	if rc, err := in.Receipt(move.ID()); err != nil || rc.Status != phases.Accepted {
		t.Fatalf("old-key transfer: %+v %v", rc, err)
	}
	// After the switch a payload sealed to the new key opens with its shares.
	next := f.mint(f.allow, f.allow, f.alice, "b", "1")
	decide(t, in, 15, nil, EncryptedTx(encryptTo(t, newKey, in.ID(), next)))
	w, err = in.Waiting()
	if err != nil || w == nil || w.Key.ID() != newKey.ID() {
		t.Fatalf("waiting %+v %v", w, err)
	}
	openWith(t, in, 16, newShares, w)
	if rc, err := in.Receipt(next.ID()); err != nil || rc.Status != phases.Accepted {
		t.Fatalf("new-key transfer: %+v %v", rc, err)
	}

	// Epoch 3's DKG (heights 19–24) with nobody dealing fails; the key stays.
	for h := uint64(17); h <= 24; h++ {
		dc = decide(t, in, h, nil)
	}
	if dc.Epoch == nil || dc.Epoch.Key != nil || !strings.Contains(dc.Epoch.Failure, "0 dealers qualified, need 3") {
		t.Fatalf("failed attempt %+v", dc.Epoch)
	}
	if have, err := in.ThresholdKey(); err != nil || have.ID() != newKey.ID() {
		t.Fatalf("key after a failed DKG: %v %v", have, err)
	}
	if st, err = in.Epochs(); err != nil || st.Epoch != 2 || st.Session.Epoch != 3 || st.Session.Attempt != 1 || st.Boundary != 37 {
		t.Fatalf("status after a failed DKG %+v %v", st, err)
	}
}

// encryptTo seals tx to pk for instance id and returns the payload.
func encryptTo(t *testing.T, pk *tfhe.PublicKey, id [32]byte, tx *phases.Tx) []byte {
	t.Helper()
	p, err := EncryptTx(pk, id, tx)
	if err != nil {
		t.Fatal(err)
	}
	return p.Encode()
}

// openWith decides the block at h carrying the share batches of the first
// three shares for w.
func openWith(t *testing.T, in *Instance, h uint64, shares []*tfhe.KeyShare, w *WaitingBatch) {
	t.Helper()
	var sbs []*tfhe.ShareBatch
	for _, sk := range shares[:3] {
		sb, err := tfhe.PartDecBatch(context.Background(), sk, w.Payloads)
		if err != nil {
			t.Fatal(err)
		}
		sbs = append(sbs, sb)
	}
	dc, err := in.ExecuteDecided(context.Background(), &DecidedBlock{Height: h, Shares: sbs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// dkgRoundTrip encodes and decodes a transcript, as a file would.
func dkgRoundTrip(t *testing.T, tr *dkg.Transcript) *dkg.Transcript {
	t.Helper()
	out, err := dkg.DecodeTranscript(tr.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return out
}
