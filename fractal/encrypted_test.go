package fractal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// encFixture is a fixture with a threshold key attached and its keyholders'
// shares.
type encFixture struct {
	*fixture
	pk  *tfhe.PublicKey
	sks []*tfhe.KeyShare
}

// newEncFixture attaches a k-of-n key. dkg selects the distributed key
// generation; otherwise a trusted dealer draws the key (TESTS ONLY: it keeps
// test time down).
func newEncFixture(t testing.TB, n, k int, dkg bool) *encFixture {
	t.Helper()
	f := &encFixture{fixture: newFixture(t, DefaultConfig())}
	var err error
	if dkg {
		f.pk, f.sks, err = tfhe.Setup(context.Background(), n, k)
	} else {
		f.pk, f.sks, err = tfhe.TrustedDealerSetup(n, k)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := f.in.AttachThresholdKey(f.pk); err != nil {
		t.Fatal(err)
	}
	return f
}

// encrypt seals tx to the instance and queues it.
func (f *encFixture) encrypt(t testing.TB, tx *phases.Tx) [32]byte {
	t.Helper()
	p, err := EncryptTx(f.pk, f.in.ID(), tx)
	if err != nil {
		t.Fatal(err)
	}
	return f.submitPayload(t, p.Encode())
}

func (f *encFixture) submitPayload(t testing.TB, raw []byte) [32]byte {
	t.Helper()
	id, err := f.in.SubmitEncrypted(raw)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// share makes and submits keyholder i's shares for the waiting batch.
func (f *encFixture) share(t testing.TB, i int) *EncryptedStatus {
	t.Helper()
	sb, err := f.in.MakeShares(context.Background(), f.sks[i-1])
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.in.SubmitShares(sb.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *encFixture) seal(t testing.TB) *Sealed {
	t.Helper()
	s, err := f.in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantErr(t testing.TB, err error, text string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), text) {
		t.Fatalf("error %v, want one containing %q", err, text)
	}
}

// wantState checks the seal's encrypted status and the keyholders whose
// shares are in, as fmt prints them ("[2 4]").
func wantState(t testing.TB, s *Sealed, state EncryptedState, shares string) {
	t.Helper()
	if s.Encrypted == nil || s.Encrypted.State != state {
		t.Fatalf("seal: %+v, want encrypted batch %s", s.Encrypted, state)
	}
	if got := fmt.Sprint(s.Encrypted.Shares); got != shares {
		t.Fatalf("shares in %s, want %s", got, shares)
	}
}

// TestEncryptedFullFlowDKG runs the whole path with a 3-of-5 DKG key: two
// encrypted transactions are fixed into a signed batch, two shares leave it
// waiting, the third opens it, and the block holds both in slot order.
func TestEncryptedFullFlowDKG(t *testing.T) {
	f := newEncFixture(t, 5, 3, true)
	if f.pk.Origin != tfhe.OriginDevDealer {
		t.Fatal("key is not from the DKG run in one process")
	}
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "coin", "1"))
	move := f.move(f.allow, f.allow, f.alice, "coin", "moved", "1")
	mint := f.mint(f.allow, f.allow, f.bob, "fresh", "2")
	p1, p2 := f.encrypt(t, move), f.encrypt(t, mint)
	if q, err := f.in.QueuedEncrypted(); err != nil || len(q) != 2 || q[0] != p1 || q[1] != p2 {
		t.Fatalf("encrypted queue %x, %v", q, err)
	}

	if _, err := f.in.Outcome(p1); err == nil || !strings.Contains(err.Error(), "payload has not been opened yet") {
		t.Fatalf("outcome before opening: %v", err)
	}
	s := f.seal(t)
	wantState(t, s, BatchFixed, "[]")
	b := s.Encrypted.Batch
	if s.Block != nil || b.Number != 1 || len(b.PayloadIDs) != 2 || b.PayloadIDs[0] != p1 || b.PayloadIDs[1] != p2 {
		t.Fatalf("fixed batch %+v, block %v", b, s.Block)
	}
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	round, err := chain.DecodeEncryptedBatch(b.Encode())
	if err != nil || !bytes.Equal(round.Encode(), b.Encode()) {
		t.Fatalf("batch round trip: %v", err)
	}
	if q, _ := f.in.QueuedEncrypted(); len(q) != 0 {
		t.Fatal("fixed payloads still queued")
	}

	// k−1 shares leave the batch waiting, and a seal then writes nothing.
	f.share(t, 2)
	if st := f.share(t, 4); st.Needed != 3 || fmt.Sprint(st.Shares) != "[2 4]" {
		t.Fatalf("status %+v", st)
	}
	before := dumpStore(t, f.in)
	wantState(t, f.seal(t), BatchWaiting, "[2 4]")
	if dumpStore(t, f.in) != before {
		t.Fatal("a seal waiting for shares changed the store")
	}
	if got := strings.Join(liveKeys(t, f.in), " "); got != "coin=1" {
		t.Fatalf("notes before opening: %q", got)
	}

	f.share(t, 5)
	s = f.seal(t)
	wantState(t, s, BatchOpened, "[2 4 5]")
	if s.Block == nil || len(s.Block.TxIDs) != 2 || s.Block.TxIDs[0] != move.ID() || s.Block.TxIDs[1] != mint.ID() {
		t.Fatalf("opened block %+v", s.Block)
	}
	if len(s.Receipts) != 2 || s.Receipts[0].TxID != move.ID() || s.Receipts[1].Status != phases.Accepted {
		t.Fatalf("receipts %+v", s.Receipts)
	}
	if got := strings.Join(liveKeys(t, f.in), " "); got != "fresh=2 moved=1" {
		t.Fatalf("notes after opening: %q", got)
	}
	o, err := f.in.Outcome(p1)
	if err != nil || o.Batch != 1 || o.Slot != 0 || o.TxID != move.ID() || o.Receipt.Status != phases.Accepted {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	if rc, err := f.in.Receipt(mint.ID()); err != nil || rc.TxID != mint.ID() {
		t.Fatalf("receipt: %v", err)
	}
	if st, err := f.in.PendingEncrypted(); err != nil || st != nil {
		t.Fatalf("pending after opening: %+v, %v", st, err)
	}
	if _, err := f.in.MakeShares(context.Background(), f.sks[0]); err == nil || !strings.Contains(err.Error(), "no encrypted batch is waiting for shares") {
		t.Fatalf("shares with nothing waiting: %v", err)
	}
	// A fresh payload of an executed transaction is queued (its content is
	// secret) and dropped as a replay when it opens.
	f.submitPayload(t, mustEncrypt(t, f, move))
	f.seal(t)
	for _, i := range []int{1, 2, 3} {
		f.share(t, i)
	}
	s = f.seal(t)
	if s.Block != nil || !strings.Contains(s.Receipts[0].Reason, "encrypted transaction dropped: replayed transaction: already executed in block 2") {
		t.Fatalf("replay through the encrypted path: %+v", s.Receipts[0])
	}
}

func mustEncrypt(t testing.TB, f *encFixture, tx *phases.Tx) []byte {
	t.Helper()
	p, err := EncryptTx(f.pk, f.in.ID(), tx)
	if err != nil {
		t.Fatal(err)
	}
	return p.Encode()
}

// TestEncryptedFrontRunning: a plaintext transaction submitted after an
// encrypted one that spends the same note cannot be ordered before it; the
// encrypted one wins. A plaintext transaction submitted before it still runs
// first.
func TestEncryptedFrontRunning(t *testing.T) {
	f := newEncFixture(t, 5, 3, false)
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "coin", "1"))
	early := f.mint(f.allow, f.allow, f.alice, "early", "0")
	if _, err := f.in.Submit(early); err != nil {
		t.Fatal(err)
	}
	honest := f.move(f.allow, f.allow, f.alice, "coin", "to-bob", "1")
	f.encrypt(t, honest)
	// The front-runner's copy spends the same note, submitted after.
	front := f.move(f.allow, f.allow, f.bob, "coin", "to-mallory", "1")
	if _, err := f.in.Submit(front); err != nil {
		t.Fatal(err)
	}

	s := f.seal(t) // only what arrived before the encrypted transaction
	if s.Encrypted != nil || s.Block == nil || len(s.Block.TxIDs) != 1 || s.Block.TxIDs[0] != early.ID() {
		t.Fatalf("first seal %+v", s)
	}
	wantState(t, f.seal(t), BatchFixed, "[]")
	for range 2 { // the front-runner waits behind the batch
		wantState(t, f.seal(t), BatchWaiting, "[]")
		if q, _ := f.in.Queued(); len(q) != 1 || q[0] != front.ID() {
			t.Fatalf("plaintext queue %x", q)
		}
	}
	for _, i := range []int{1, 3, 5} {
		f.share(t, i)
	}
	s = f.seal(t)
	wantState(t, s, BatchOpened, "[1 3 5]")
	if s.Block == nil || s.Block.TxIDs[0] != honest.ID() {
		t.Fatalf("opened %+v", s.Block)
	}
	s = f.seal(t)
	if s.Block != nil || len(s.Receipts) != 1 || s.Receipts[0].TxID != front.ID() || s.Receipts[0].Phase != phases.PhaseLookup {
		t.Fatalf("front-runner: %+v", s.Receipts)
	}
	wantErr(t, s.Receipts[0].Err(), "refused in lookup")
	if got := strings.Join(liveKeys(t, f.in), " "); got != "early=0 to-bob=1" {
		t.Fatalf("notes %q", got)
	}
}

// garbagePayload builds, from docs/formats/tfhe.md alone, a payload whose
// proof of knowledge holds but whose body is not an AEAD output: it passes
// every check before decryption and fails to open.
func garbagePayload(t testing.TB, pk *tfhe.PublicKey, context []byte) []byte {
	t.Helper()
	scalar := func() *edwards25519.Scalar {
		var b [64]byte
		rand.Read(b[:])
		s, _ := edwards25519.NewScalar().SetUniformBytes(b[:])
		return s
	}
	r, s := scalar(), scalar()
	u := new(edwards25519.Point).ScalarBaseMult(r)
	a := new(edwards25519.Point).ScalarBaseMult(s)
	body := bytes.Repeat([]byte{7}, 40)
	key, bodyHash := pk.ID(), sha256.Sum256(body)
	w := enc.NewWriter(256)
	w.String("fractal/tfhe/payload-pok/v1")
	parts := [][]byte{key[:], context, u.Bytes(), a.Bytes(), bodyHash[:]}
	w.U32(uint32(len(parts)))
	for _, p := range parts {
		w.Var(p)
	}
	h := sha512.Sum512(w.Bytes())
	c, _ := edwards25519.NewScalar().SetUniformBytes(h[:])
	z := edwards25519.NewScalar().MultiplyAdd(c, r, s)
	out := enc.NewWriter(256)
	out.U8(0x04)
	out.U8(1)
	out.Fixed(key[:])
	out.Var(context)
	out.Fixed(u.Bytes())
	out.Fixed(a.Bytes())
	out.Fixed(z.Bytes())
	out.Var(body)
	return out.Bytes()
}

// TestEncryptedDropsBadSlots: a payload that does not decrypt, a plaintext
// that does not parse and one that is not validly signed are each dropped
// with a receipt; the other transactions of the batch run as if they were
// alone.
func TestEncryptedDropsBadSlots(t *testing.T) {
	f := newEncFixture(t, 3, 2, false)
	good1 := f.mint(f.allow, f.allow, f.alice, "one", "1")
	good2 := f.mint(f.allow, f.allow, f.alice, "two", "2")
	unsigned := f.mint(f.allow, f.allow, f.alice, "three", "3")
	unsigned.Signatures[0][0] ^= 1
	notTx, err := tfhe.Seal(f.pk, []byte("not a transaction"), EncryptedContext(f.in.ID()))
	if err != nil {
		t.Fatal(err)
	}
	ids := [][32]byte{
		f.encrypt(t, good1),
		f.submitPayload(t, garbagePayload(t, f.pk, EncryptedContext(f.in.ID()))),
		f.submitPayload(t, notTx.Encode()),
		f.encrypt(t, unsigned),
		f.encrypt(t, good1), // a second payload of the same transaction
		f.encrypt(t, good2),
	}
	wantState(t, f.seal(t), BatchFixed, "[]")
	f.share(t, 3)
	f.share(t, 1)
	s := f.seal(t)
	wantState(t, s, BatchOpened, "[1 3]")
	if s.Block == nil || len(s.Block.TxIDs) != 2 || s.Block.TxIDs[0] != good1.ID() || s.Block.TxIDs[1] != good2.ID() {
		t.Fatalf("block %+v", s.Block)
	}
	wantReasons := []string{
		"",
		"encrypted transaction dropped: payload does not decrypt",
		"encrypted transaction dropped: plaintext does not parse: phases: decode transaction",
		"encrypted transaction dropped: signature of signer 1",
		"encrypted transaction dropped: transaction " + hexPrefix(good1.ID()) + " repeats slot 0",
		"",
	}
	if len(s.Receipts) != len(ids) {
		t.Fatalf("%d receipts", len(s.Receipts))
	}
	for i, want := range wantReasons {
		rc := s.Receipts[i]
		o, err := f.in.Outcome(ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(o.Receipt.Encode(), rc.Encode()) || o.Slot != uint32(i) {
			t.Fatalf("slot %d: stored outcome differs from the returned receipt", i)
		}
		if want == "" {
			if rc.Status != phases.Accepted {
				t.Fatalf("slot %d: %v", i, rc.Err())
			}
			continue
		}
		if rc.Status != phases.Refused || rc.Phase != phases.PhaseAdmission || !strings.HasPrefix(rc.Reason, want) || rc.TxID != ids[i] {
			t.Fatalf("slot %d: receipt %+v, want reason %q", i, rc, want)
		}
	}
	if got := strings.Join(liveKeys(t, f.in), " "); got != "one=1 two=2" {
		t.Fatalf("notes %q", got)
	}
	if _, err := f.in.SubmitEncrypted(notTx.Encode()); err == nil || !strings.Contains(err.Error(), "already opened in encrypted batch 1") {
		t.Fatalf("resubmitted payload: %v", err)
	}
}

func hexPrefix(id [32]byte) string {
	const digits = "0123456789abcdef"
	var b []byte
	for _, c := range id[:8] {
		b = append(b, digits[c>>4], digits[c&15])
	}
	return string(b)
}

// TestEncryptedBadShares: a share batch with a wrong proof is refused
// naming its keyholder and nothing is stored; so are a second batch from one
// keyholder and one made for another batch. The batch still opens with k
// good ones.
func TestEncryptedBadShares(t *testing.T) {
	f := newEncFixture(t, 5, 3, false)
	f.encrypt(t, f.mint(f.allow, f.allow, f.alice, "a", "1"))
	f.encrypt(t, f.mint(f.allow, f.allow, f.alice, "b", "2"))
	f.seal(t)
	sb, err := f.in.MakeShares(context.Background(), f.sks[1])
	if err != nil {
		t.Fatal(err)
	}
	raw := sb.Encode()
	raw[len(raw)-1] ^= 0x01 // the last slot's z: the proof no longer holds
	before := dumpStore(t, f.in)
	_, err = f.in.SubmitShares(raw)
	wantErr(t, err, "encrypted batch 1: slot 1: tfhe: share from keyholder 2: invalid DLEQ proof")
	var se *tfhe.ShareError
	if !errors.As(err, &se) || se.Keyholder != 2 {
		t.Fatalf("error does not name keyholder 2: %v", err)
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("a refused share batch changed the store")
	}
	_, err = f.in.SubmitShares(raw[:len(raw)-1])
	wantErr(t, err, "fractal: submit shares: tfhe: share batch")

	f.share(t, 1)
	before = dumpStore(t, f.in)
	sb1, _ := f.in.MakeShares(context.Background(), f.sks[0])
	_, err = f.in.SubmitShares(sb1.Encode())
	wantErr(t, err, "share from keyholder 1: shares already submitted")
	// Shares of the other payload order are for other ciphertexts.
	sb4, _ := f.in.MakeShares(context.Background(), f.sks[3])
	sb4.Shares[0], sb4.Shares[1] = sb4.Shares[1], sb4.Shares[0]
	_, err = f.in.SubmitShares(sb4.Encode())
	wantErr(t, err, "slot 0: tfhe: share from keyholder 4: share is for another ciphertext")
	sb4.Shares = sb4.Shares[:1]
	_, err = f.in.SubmitShares(sb4.Encode())
	wantErr(t, err, "share from keyholder 4: 1 shares for 2 payloads")
	if dumpStore(t, f.in) != before {
		t.Fatal("a refused share batch changed the store")
	}
	wantState(t, f.seal(t), BatchWaiting, "[1]")
	f.share(t, 4)
	f.share(t, 5)
	s := f.seal(t)
	wantState(t, s, BatchOpened, "[1 4 5]")
	if s.Block == nil || len(s.Block.TxIDs) != 2 {
		t.Fatalf("block %+v", s.Block)
	}
}

// TestEncryptedRestart: a batch waiting for shares, its shares, and the
// arrival order of both queues survive closing and reopening the instance.
func TestEncryptedRestart(t *testing.T) {
	f := newEncFixture(t, 5, 3, false)
	first := f.mint(f.allow, f.allow, f.alice, "first", "1")
	f.encrypt(t, first)
	f.seal(t)
	f.share(t, 2)
	f.share(t, 3)
	second := f.mint(f.allow, f.allow, f.alice, "second", "2")
	f.encrypt(t, second) // queued, not in a batch, and the last entry of any queue
	before := dumpStore(t, f.in)
	f.reopen(t)
	in := f.in
	if dumpStore(t, in) != before {
		t.Fatal("store changed across reopen")
	}
	st, err := in.PendingEncrypted()
	if err != nil || st == nil || st.Batch.Number != 1 || fmt.Sprint(st.Shares) != "[2 3]" {
		t.Fatalf("pending after reopen: %+v, %v", st, err)
	}
	// Submitted after the queued payload: must not run before it.
	third := f.mint(f.allow, f.allow, f.alice, "third", "3")
	if _, err := in.Submit(third); err != nil {
		t.Fatal(err)
	}
	wantState(t, f.seal(t), BatchWaiting, "[2 3]")
	f.share(t, 4)
	if s := f.seal(t); s.Block == nil || s.Block.TxIDs[0] != first.ID() {
		t.Fatalf("batch 1: %+v", s)
	}
	s := f.seal(t)
	wantState(t, s, BatchFixed, "[]")
	if s.Encrypted.Batch.Number != 2 || s.Encrypted.Batch.PayloadIDs[0] == [32]byte{} {
		t.Fatalf("batch 2: %+v", s.Encrypted.Batch)
	}
	for _, i := range []int{1, 2, 5} {
		f.share(t, i)
	}
	if s := f.seal(t); s.Block == nil || s.Block.TxIDs[0] != second.ID() {
		t.Fatalf("batch 2 opened: %+v", s)
	}
	if s := f.seal(t); s.Block == nil || s.Block.TxIDs[0] != third.ID() {
		t.Fatalf("plaintext after: %+v", s)
	}
}

// TestSubmitEncryptedRefusals: bad payloads and keys are refused with their
// reasons and change nothing.
func TestSubmitEncryptedRefusals(t *testing.T) {
	f := newEncFixture(t, 3, 2, false)
	bare := newFixture(t, DefaultConfig())
	tx := f.mint(f.allow, f.allow, f.alice, "a", "1")
	good := mustEncrypt(t, f, tx)
	if _, err := bare.in.SubmitEncrypted(good); !errors.Is(err, ErrNoThresholdKey) {
		t.Fatalf("no key: %v", err)
	}
	otherKey, _, _ := tfhe.TrustedDealerSetup(3, 2)
	forOther, _ := EncryptTx(otherKey, f.in.ID(), tx)
	otherInstance, _ := EncryptTx(f.pk, bare.in.ID(), tx)
	mauled := append([]byte(nil), good...)
	mauled[len(mauled)-1] ^= 1 // body changed: the proof's challenge covers it
	f.submitPayload(t, good)
	before := dumpStore(t, f.in)
	for _, c := range []struct {
		raw  []byte
		want string
	}{
		{good[:len(good)-1], "fractal: submit encrypted: tfhe: payload"},
		{forOther.Encode(), "tfhe: payload made for another key"},
		{otherInstance.Encode(), "payload is not bound to this instance (wrong context)"},
		{mauled, "invalid proof of knowledge"},
		{good, "payload is already queued"},
		{make([]byte, DefaultConfig().MaxTxBytes+payloadOverhead+1), "limit"},
	} {
		_, err := f.in.SubmitEncrypted(c.raw)
		wantErr(t, err, c.want)
	}
	wantErr(t, f.in.AttachThresholdKey(otherKey), "encrypted transactions are queued or waiting for shares")
	if err := f.in.AttachThresholdKey(f.pk); err != nil {
		t.Fatalf("attaching the same key again: %v", err)
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("a refusal changed the store")
	}
	if err := bare.in.AttachThresholdKey(otherKey); err != nil {
		t.Fatal(err)
	}
	if pk, err := bare.in.ThresholdKey(); err != nil || pk.ID() != otherKey.ID() {
		t.Fatalf("attached key: %v", err)
	}
	if _, err := bare.in.MakeShares(context.Background(), f.sks[0]); err == nil || !strings.Contains(err.Error(), "no encrypted batch is waiting") {
		t.Fatalf("make shares: %v", err)
	}
}

func FuzzDecodeEncryptedBatch(f *testing.F) {
	b := &chain.EncryptedBatch{Number: 3, PayloadIDs: [][32]byte{{1}, {2}}}
	f.Add(b.Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := chain.DecodeEncryptedBatch(data)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Encode(), data) {
			t.Fatal("decoded batch re-encodes differently")
		}
	})
}

func FuzzDecodeOutcome(f *testing.F) {
	o := &EncryptedOutcome{Batch: 1, Slot: 2, Receipt: &phases.Receipt{Status: phases.Refused, Phase: phases.PhaseAdmission, Reason: "x"}}
	f.Add(o.encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := decodeOutcome(data)
		if err != nil {
			return
		}
		if !bytes.Equal(o.encode(), data) {
			t.Fatal("decoded outcome re-encodes differently")
		}
	})
}

// TestPayloadOverhead: the size limit's allowance is exactly what a payload
// adds to its plaintext.
func TestPayloadOverhead(t *testing.T) {
	pk, _, err := tfhe.TrustedDealerSetup(3, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tfhe.Seal(pk, []byte("12345"), EncryptedContext([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Encode()) - 5; got != payloadOverhead {
		t.Fatalf("payload adds %d bytes, payloadOverhead is %d", got, payloadOverhead)
	}
}

// TestEncryptedBatchBounds: an opened batch keeps the block's rules. Its
// gas limits together stay within max_block_gas (a payload that takes it
// past is dropped, and the next that fits still runs); and a batch whose
// writes do not fit in one store write (twelve payloads of 1 MB of notes)
// is cut, the slots past the cut dropped with the reason, instead of
// failing every seal from then on (review at stop 20: the instance stalled
// for good, and tfhe expire could not help). verify accepts the cut and
// replays the rest.
func TestEncryptedBatchBounds(t *testing.T) {
	f := newEncFixture(t, 3, 2, false)
	big := func(tag string, gas uint64) *phases.Tx {
		f.nonce++
		calc := fmt.Sprintf(`local v = string.rep("x", 64000) local out = {} for j = 1, 16 do out[j] = {application=%q, owner=%q, key=%q..j, value=v} end return out`,
			hex.EncodeToString(f.allow[:]), hex.EncodeToString(f.allow[:]), tag)
		return f.sign(&phases.Tx{Nonce: f.nonce, GasLimit: gas,
			Write: notes.ConstraintSet{appPattern(f.allow, f.allow)}, Calculation: []byte(calc)}, f.alice)
	}
	// Gas: 60 M, then 60 M (past 100 M: dropped), then 30 M (fits).
	ids := [][32]byte{f.encrypt(t, big("g1-", 60_000_000)), f.encrypt(t, big("g2-", 60_000_000)), f.encrypt(t, big("g3-", 30_000_000))}
	wantState(t, f.seal(t), BatchFixed, "[]")
	f.share(t, 1)
	f.share(t, 2)
	s := f.seal(t)
	wantState(t, s, BatchOpened, "[1 2]")
	for i, want := range []string{"", "encrypted transaction dropped: its gas limit 60000000 takes the batch past max_block_gas 100000000: not run", ""} {
		o, err := f.in.Outcome(ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Receipt.Reason; got != want || (want == "") != (o.Receipt.Status == phases.Accepted) {
			t.Fatalf("gas slot %d: %s %q, want %q", i, o.Receipt.Status, got, want)
		}
	}
	// Size: twelve payloads of 1 MB of notes each.
	ids = ids[:0]
	for i := range 12 {
		ids = append(ids, f.encrypt(t, big(fmt.Sprintf("s%d-", i), 1_000_000)))
	}
	wantState(t, f.seal(t), BatchFixed, "[]")
	f.share(t, 1)
	f.share(t, 3)
	s = f.seal(t)
	wantState(t, s, BatchOpened, "[1 3]")
	ran := 0
	for i := range ids {
		o, err := f.in.Outcome(ids[i])
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case o.Receipt.Status == phases.Accepted && ran == i:
			ran++
		case o.Receipt.Reason == "encrypted transaction dropped: "+cutReason && ran > 0:
		default:
			t.Fatalf("size slot %d (after %d ran): %s %q", i, ran, o.Receipt.Status, o.Receipt.Reason)
		}
	}
	if ran == len(ids) {
		t.Fatal("every payload ran: the test no longer makes a batch too large for one store write")
	}
	// The instance goes on, and verify replays everything.
	if _, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, "after", "1")); err != nil {
		t.Fatal(err)
	}
	if s := f.seal(t); s.Block == nil || len(s.Receipts) != 1 || s.Receipts[0].Status != phases.Accepted {
		t.Fatalf("the next seal: %+v", s)
	}
	if _, err := f.in.Verify(context.Background(), nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	t.Logf("%d of 12 payloads of 1 MB of notes ran", ran)
}
