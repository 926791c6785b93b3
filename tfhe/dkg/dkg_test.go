package dkg

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"go.dedis.ch/kyber/v3"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
	"go.dedis.ch/protobuf"

	"github.com/fractalvm/fractal/internal/enc"
)

type linkFunc func(e *Envelope) *Envelope

func (f linkFunc) Carry(e *Envelope) *Envelope { return f(e) }

func session(b byte) [32]byte {
	var s [32]byte
	s[0] = b
	return s
}

func longterms(n int) []kyber.Scalar {
	ks := make([]kyber.Scalar, n)
	for i := range ks {
		ks[i] = Suite.Scalar().Pick(Suite.RandomStream())
	}
	return ks
}

// reconstruct interpolates the secret from the first k shares and checks it
// against Commits[0].
func reconstructs(t *testing.T, res *Result, idx []int) {
	t.Helper()
	xs := map[int][]byte{}
	for _, s := range res.Shares {
		xs[s.Index] = s.Secret
	}
	var pts []int
	for _, i := range idx {
		if _, ok := xs[i]; !ok {
			t.Fatalf("keyholder %d holds no share", i)
		}
		pts = append(pts, i)
	}
	secret := Suite.Scalar().Zero()
	for _, i := range pts {
		num, den := Suite.Scalar().One(), Suite.Scalar().One()
		for _, j := range pts {
			if j == i {
				continue
			}
			num.Mul(num, Suite.Scalar().SetInt64(int64(j)))
			den.Mul(den, Suite.Scalar().Sub(Suite.Scalar().SetInt64(int64(j)), Suite.Scalar().SetInt64(int64(i))))
		}
		v := Suite.Scalar()
		if err := v.UnmarshalBinary(xs[i]); err != nil {
			t.Fatal(err)
		}
		secret.Add(secret, v.Mul(v, num.Div(num, den)))
	}
	pub, _ := Suite.Point().Mul(secret, nil).MarshalBinary()
	if string(pub) != string(res.Commits[0]) {
		t.Fatalf("shares %v do not reconstruct the public key", idx)
	}
}

func TestRunAllHonest(t *testing.T) {
	var steps int
	res, err := Run(t.Context(), Config{N: 5, K: 3, Session: session(1), Progress: func(d, tot int) { steps = d; _ = tot }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Shares) != 5 || len(res.Qual) != 5 || len(res.Faults) != 0 || len(res.Commits) != 3 {
		t.Fatalf("shares %d qual %v faults %v commits %d", len(res.Shares), res.Qual, res.Faults, len(res.Commits))
	}
	if steps != 20 {
		t.Fatalf("progress reached %d of 20", steps)
	}
	reconstructs(t, res, []int{1, 2, 3})
	reconstructs(t, res, []int{2, 4, 5})
	// 5 dealers × 4 deals + 5 × 4 responses (each broadcast once).
	if len(res.Transcript) != 20+20 {
		t.Fatalf("transcript has %d envelopes", len(res.Transcript))
	}
}

// A dealer whose deals do not decrypt (validly signed, so it is the dealer's
// own doing) is left out of the key; the others finish.
func TestBadDealerExcluded(t *testing.T) {
	longs := longterms(5)
	link := linkFunc(func(e *Envelope) *Envelope {
		if e.From != 2 || e.Kind != KindDeal {
			return e
		}
		d, err := decodeDeal(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		d.Deal.Cipher[0] ^= 1
		msg, _ := d.MarshalBinary()
		d.Signature, _ = schnorr.Sign(Suite, longs[1], msg)
		bad := *e
		bad.Body = encodeDeal(d)
		if err := bad.Sign(longs[1]); err != nil {
			t.Fatal(err)
		}
		return &bad
	})
	res, err := Run(t.Context(), Config{N: 5, K: 3, Session: session(2), Longterm: longs, Link: link})
	dealerTwoExcluded(t, res, err, "invalid deal")
}

// Too many bad dealers: the run fails and says so.
func TestTooManyBadDealers(t *testing.T) {
	link := linkFunc(func(e *Envelope) *Envelope {
		if e.Kind == KindDeal && e.From >= 3 {
			return nil
		}
		return e
	})
	_, err := Run(t.Context(), Config{N: 5, K: 3, Session: session(3), Link: link})
	if err == nil || !strings.Contains(err.Error(), "dkg: failed") {
		t.Fatalf("got %v", err)
	}
}

// A lost deal: after the timeout the key is threshold-certified; the
// keyholder that missed the deal is left out and the rest hold shares.
func TestDroppedDealTimeoutPath(t *testing.T) {
	link := linkFunc(func(e *Envelope) *Envelope {
		if e.Kind == KindDeal && e.From == 1 && e.To == 4 {
			return nil
		}
		return e
	})
	res, err := Run(t.Context(), Config{N: 5, K: 3, Session: session(4), Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Qual) != 5 {
		t.Fatalf("qual %v", res.Qual)
	}
	var left []int
	for _, s := range res.Shares {
		left = append(left, s.Index)
	}
	if !equalInts(left, []int{1, 2, 3, 5}) {
		t.Fatalf("share holders %v, want [1 2 3 5]; faults %v", left, res.Faults)
	}
	if len(res.Faults) != 1 || res.Faults[0].Keyholder != 4 {
		t.Fatalf("faults %v", res.Faults)
	}
	reconstructs(t, res, []int{1, 3, 5})
}

// A lost response is also survived through the timeout path.
func TestDroppedResponse(t *testing.T) {
	link := linkFunc(func(e *Envelope) *Envelope {
		if e.Kind == KindResponse && e.From == 3 && e.To == 5 {
			return nil
		}
		return e
	})
	res, err := Run(t.Context(), Config{N: 5, K: 3, Session: session(5), Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Shares) < 3 {
		t.Fatalf("shares %d", len(res.Shares))
	}
	reconstructs(t, res, []int{res.Shares[0].Index, res.Shares[1].Index, res.Shares[2].Index})
}

// Envelopes from another session, or altered in transit, are refused and
// blamed on their claimed sender.
func TestSessionAndSignatureBound(t *testing.T) {
	longs := longterms(5)
	old, err := Run(t.Context(), Config{N: 5, K: 3, Session: session(6), Longterm: longs})
	if err != nil {
		t.Fatal(err)
	}
	var replay *Envelope
	for _, e := range old.Transcript {
		if e.Kind == KindDeal && e.From == 2 && e.To == 3 {
			replay = e
		}
	}
	link := linkFunc(func(e *Envelope) *Envelope {
		if e.Kind == KindDeal && e.From == 2 && e.To == 3 {
			return replay // the same keys, the previous run's deal
		}
		if e.Kind == KindDeal && e.From == 4 && e.To == 1 {
			c := *e
			c.Body = append([]byte(nil), e.Body...)
			c.Body[len(c.Body)-1] ^= 1
			return &c
		}
		return e
	})
	res, err := Run(t.Context(), Config{N: 5, K: 3, Session: session(7), Longterm: longs, Link: link})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, f := range res.Faults {
		reasons = append(reasons, f.Reason)
	}
	all := strings.Join(reasons, "\n")
	if !strings.Contains(all, "deal to keyholder 3 refused: envelope from another session") {
		t.Fatalf("replayed deal not refused: %s", all)
	}
	if !strings.Contains(all, "deal to keyholder 1 refused: envelope: invalid signature") {
		t.Fatalf("altered deal not refused: %s", all)
	}
}

// TestRunCancelled: a DKG whose context ends part-way stops at the next
// keyholder step, names the round, and returns no result.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var steps atomic.Int32
	res, err := Run(ctx, Config{N: 5, K: 3, Session: session(12), Progress: func(done, _ int) {
		if steps.Add(1) == 5 { // every keyholder has dealt
			cancel()
		}
	}})
	if res != nil || !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "dkg: responses: ") {
		t.Fatalf("result %v, err %v; want none and a cancelled responses round", res, err)
	}
	if n := steps.Load(); n != 5 {
		t.Fatalf("%d keyholder steps, want the 5 deals before the cancel", n)
	}
}

func TestRunRefusesBadParameters(t *testing.T) {
	for _, c := range []struct{ n, k int }{{1, 1}, {5, 1}, {5, 6}, {MaxKeyholders + 1, 3}} {
		if _, err := Run(t.Context(), Config{N: c.n, K: c.k}); err == nil {
			t.Fatalf("n=%d k=%d accepted", c.n, c.k)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	long := Suite.Scalar().Pick(Suite.RandomStream())
	e := &Envelope{Session: session(9), Kind: KindResponse, From: 3, To: 0, Body: []byte("body")}
	if err := e.Sign(long); err != nil {
		t.Fatal(err)
	}
	d, err := DecodeEnvelope(e.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Encode()) != string(e.Encode()) {
		t.Fatal("round trip changed the envelope")
	}
	if _, err := DecodeEnvelope(append(e.Encode(), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("trailing byte: %v", err)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	long := Suite.Scalar().Pick(Suite.RandomStream())
	e := &Envelope{Session: session(9), Kind: KindDeal, From: 1, To: 2, Body: []byte{1, 2, 3}}
	_ = e.Sign(long)
	f.Add(e.Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		if string(e.Encode()) != string(b) {
			t.Fatal("decode then encode is not the identity")
		}
	})
}

func FuzzDecodeJustification(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeJustification(Suite, b)
		_, _ = decodeDeal(b)
		_, _ = decodeResponse(b)
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTranscriptEncoding(t *testing.T) {
	res, err := Run(t.Context(), Config{N: 3, K: 2, Session: session(11)})
	if err != nil {
		t.Fatal(err)
	}
	b := res.EncodeTranscript()
	if b[0] != transcriptTag || b[1] != transcriptVersion || string(b[2:34]) != string(res.Session[:]) {
		t.Fatal("transcript header")
	}
	r := enc.NewReader(b[34:])
	if r.U32() != 3 || r.U32() != 2 {
		t.Fatal("n, k")
	}
	n := r.Count(1000, "envelopes")
	for i := 0; i < n; i++ {
		e, err := DecodeEnvelope(r.Var(1<<20, "envelope"))
		if err != nil || e.Session != res.Session {
			t.Fatalf("envelope %d: %v", i, err)
		}
	}
	if err := r.Finish(); err != nil || n != len(res.Transcript) {
		t.Fatalf("%d envelopes, %v", n, err)
	}
}

// A dealer that adds an order-2 point T to the commitments of x and x² (so
// every keyholder's share check still passes: x(x+1)·T = 0) is excluded, and
// the run completes with the others, instead of every keyholder approving
// the deal and the summed key failing the subgroup check at the end.
func TestTorsionInDealCommitmentsExcluded(t *testing.T) {
	const n, k = 5, 3
	longs := longterms(n)
	pubs := make([]kyber.Point, n)
	for i, l := range longs {
		pubs[i] = Suite.Point().Mul(l, nil)
	}
	// (0, −1): y = p − 1, the point of order 2.
	tb := make([]byte, 32)
	tb[0], tb[31] = 0xec, 0x7f
	for i := 1; i < 31; i++ {
		tb[i] = 0xff
	}
	torsion := Suite.Point()
	if err := torsion.UnmarshalBinary(tb); err != nil {
		t.Fatal(err)
	}
	link := linkFunc(func(e *Envelope) *Envelope {
		if e.From != 2 || e.Kind != KindDeal {
			return e
		}
		d, err := decodeDeal(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		vpub := pubs[e.To-1]
		// Open the deal as its recipient would (kyber's vss encryption).
		dh := Suite.Point()
		if err := dh.UnmarshalBinary(d.Deal.DHKey); err != nil {
			t.Fatal(err)
		}
		plain, err := dealAEAD(t, Suite.Point().Mul(longs[e.To-1], dh), pubs[1], pubs).
			Open(nil, d.Deal.Nonce, d.Deal.Cipher, dealContext(pubs[1], pubs))
		if err != nil {
			t.Fatal(err)
		}
		deal := &vss.Deal{}
		if err := protobuf.DecodeWithConstructors(plain, deal, protobuf.Constructors{
			reflect.TypeOf((*kyber.Point)(nil)).Elem():  func() interface{} { return Suite.Point() },
			reflect.TypeOf((*kyber.Scalar)(nil)).Elem(): func() interface{} { return Suite.Scalar() },
		}); err != nil {
			t.Fatal(err)
		}
		// Poison: T on the x and x² coefficients, and the session ID that
		// kyber derives from the commitments.
		deal.Commitments[1] = Suite.Point().Add(deal.Commitments[1], torsion)
		deal.Commitments[2] = Suite.Point().Add(deal.Commitments[2], torsion)
		h := Suite.Hash()
		pubs[1].MarshalTo(h)
		for _, p := range pubs {
			p.MarshalTo(h)
		}
		for _, c := range deal.Commitments {
			c.MarshalTo(h)
		}
		binary.Write(h, binary.LittleEndian, deal.T)
		deal.SessionID = h.Sum(nil)
		// Seal it again to the recipient and sign every layer.
		buf, err := protobuf.Encode(deal)
		if err != nil {
			t.Fatal(err)
		}
		eph := Suite.Scalar().Pick(Suite.RandomStream())
		d.Deal.DHKey, _ = Suite.Point().Mul(eph, nil).MarshalBinary()
		d.Deal.Signature, _ = schnorr.Sign(Suite, longs[1], d.Deal.DHKey)
		d.Deal.Cipher = dealAEAD(t, Suite.Point().Mul(eph, vpub), pubs[1], pubs).
			Seal(nil, d.Deal.Nonce, buf, dealContext(pubs[1], pubs))
		msg, _ := d.MarshalBinary()
		d.Signature, _ = schnorr.Sign(Suite, longs[1], msg)
		bad := *e
		bad.Body = encodeDeal(d)
		if err := bad.Sign(longs[1]); err != nil {
			t.Fatal(err)
		}
		return &bad
	})
	res, err := Run(t.Context(), Config{N: n, K: k, Session: session(9), Longterm: longs, Link: link})
	dealerTwoExcluded(t, res, err, "deal commitment 1: point outside the prime-order subgroup")
}

// dealerTwoExcluded checks a 5-keyholder run in which keyholder 2 dealt
// badly: it completes without keyholder 2, every other keyholder refused its
// deal with reason, nobody honest is blamed, and the key reconstructs.
func dealerTwoExcluded(t *testing.T, res *Result, err error, reason string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 3, 4, 5}; !equalInts(res.Qual, want) {
		t.Fatalf("qual %v, want %v", res.Qual, want)
	}
	blamed := 0
	for _, f := range res.Faults {
		if f.Keyholder != 2 {
			t.Fatalf("honest keyholder blamed: %+v", f)
		}
		if strings.Contains(f.Reason, reason) {
			blamed++
		}
	}
	if blamed != 4 {
		t.Fatalf("%d refusals of keyholder 2's deals, want 4: %v", blamed, res.Faults)
	}
	reconstructs(t, res, []int{1, 2, 3})
	reconstructs(t, res, []int{3, 4, 5})
}

// dealContext and dealAEAD are kyber vss's deal encryption (share/vss/pedersen
// dh.go), which it does not export.
func dealContext(dealer kyber.Point, verifiers []kyber.Point) []byte {
	h := Suite.Hash()
	h.Write([]byte("vss-dealer"))
	dealer.MarshalTo(h)
	h.Write([]byte("vss-verifiers"))
	for _, v := range verifiers {
		v.MarshalTo(h)
	}
	return h.Sum(nil)
}

func dealAEAD(t *testing.T, pre, dealer kyber.Point, verifiers []kyber.Point) cipher.AEAD {
	t.Helper()
	pb, _ := pre.MarshalBinary()
	key, err := hkdf.Key(sha256.New, pb, nil, string(dealContext(dealer, verifiers)), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}
