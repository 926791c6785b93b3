package dkg

import (
	"strings"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/sign/schnorr"

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
	res, err := Run(Config{N: 5, K: 3, Session: session(1), Progress: func(d, tot int) { steps = d; _ = tot }})
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
	res, err := Run(Config{N: 5, K: 3, Session: session(2), Longterm: longs, Link: link})
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
		if strings.Contains(f.Reason, "invalid deal") {
			blamed++
		}
	}
	if blamed != 4 {
		t.Fatalf("%d refusals of keyholder 2's deals, want 4: %v", blamed, res.Faults)
	}
	reconstructs(t, res, []int{1, 2, 3})
	reconstructs(t, res, []int{3, 4, 5})
}

// Too many bad dealers: the run fails and says so.
func TestTooManyBadDealers(t *testing.T) {
	link := linkFunc(func(e *Envelope) *Envelope {
		if e.Kind == KindDeal && e.From >= 3 {
			return nil
		}
		return e
	})
	_, err := Run(Config{N: 5, K: 3, Session: session(3), Link: link})
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
	res, err := Run(Config{N: 5, K: 3, Session: session(4), Link: link})
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
	res, err := Run(Config{N: 5, K: 3, Session: session(5), Link: link})
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
	old, err := Run(Config{N: 5, K: 3, Session: session(6), Longterm: longs})
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
	res, err := Run(Config{N: 5, K: 3, Session: session(7), Longterm: longs, Link: link})
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

func TestRunRefusesBadParameters(t *testing.T) {
	for _, c := range []struct{ n, k int }{{1, 1}, {5, 1}, {5, 6}, {MaxKeyholders + 1, 3}} {
		if _, err := Run(Config{N: c.n, K: c.k}); err == nil {
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
	res, err := Run(Config{N: 3, K: 2, Session: session(11)})
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
