package dkg

import (
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

type linkFunc func(by, to int, e *Envelope) *Envelope

func (f linkFunc) Carry(by, to int, e *Envelope) *Envelope { return f(by, to, e) }

func genKeys(t testing.TB, n int) []keys.PrivateKey {
	t.Helper()
	ks := make([]keys.PrivateKey, n)
	for i := range ks {
		var err error
		if ks[i], err = keys.GenerateKey(rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	return ks
}

// sessionOf is the session Run makes for these keys and cfg: tests use it
// to sign as a misbehaving keyholder.
func sessionOf(t testing.TB, cfg Config) *Session {
	t.Helper()
	var pubs []keys.PublicKey
	for _, k := range cfg.Keys {
		pubs = append(pubs, k.Public())
	}
	s, err := NewSession(Session{Instance: cfg.Instance, Epoch: cfg.Epoch, Attempt: cfg.Attempt, K: cfg.K, Keys: pubs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// memo makes a link's change to an envelope the same for every recipient
// (links are called from several goroutines).
type memo struct {
	mu   sync.Mutex
	done map[[32]byte]*Envelope
}

func (m *memo) get(e *Envelope, change func() *Envelope) *Envelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		m.done = map[[32]byte]*Envelope{}
	}
	h := e.Hash()
	if c, ok := m.done[h]; ok {
		return c
	}
	c := change()
	m.done[h] = c
	return c
}

func resign(t testing.TB, s *Session, key keys.PrivateKey, e *Envelope, body []byte) *Envelope {
	t.Helper()
	c, err := s.Seal(key, e.Kind, int(e.From), body)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sharesOf opens every share of dealer i's deal with the recipients' keys.
func sharesOf(t testing.TB, s *Session, ks []keys.PrivateKey, i int, d *deal) map[int]*edwards25519.Scalar {
	t.Helper()
	out := map[int]*edwards25519.Scalar{}
	for j := 1; j <= s.N(); j++ {
		if j == i {
			continue
		}
		a, _ := ks[j-1].EdwardsKey()
		x, reason := openShare(s, i, j, a, d)
		if reason != ReasonNone {
			t.Fatalf("share of keyholder %d: %v", j, reason)
		}
		out[j] = x
	}
	return out
}

// sealDeal encrypts shares (by recipient) under a fresh ephemeral key.
func sealDeal(t testing.TB, s *Session, i int, commits []*edwards25519.Point, shares map[int]*edwards25519.Scalar) []byte {
	t.Helper()
	e := group.RandomScalar()
	d := &deal{commits: commits, eph: new(edwards25519.Point).ScalarBaseMult(e)}
	for j := 1; j <= s.N(); j++ {
		if j == i {
			continue
		}
		box, err := sealShare(s, i, j, e, d.eph, shares[j])
		if err != nil {
			t.Fatal(err)
		}
		d.boxes = append(d.boxes, box)
	}
	return encodeDeal(d)
}

// reconstructs interpolates the secret from the shares of idx and checks it
// against the key.
func reconstructs(t *testing.T, res *Result, idx ...int) {
	t.Helper()
	xs := map[int]*edwards25519.Scalar{}
	for _, s := range res.Shares {
		x, err := group.DecodeScalar(s.Secret)
		if err != nil {
			t.Fatal(err)
		}
		xs[s.Index] = x
	}
	secret := edwards25519.NewScalar()
	for _, i := range idx {
		if xs[i] == nil {
			t.Fatalf("keyholder %d holds no share", i)
		}
		num, den := group.ScalarFromUint64(1), group.ScalarFromUint64(1)
		for _, j := range idx {
			if j != i {
				num.Multiply(num, group.ScalarFromUint64(uint64(j)))
				den.Multiply(den, edwards25519.NewScalar().Subtract(group.ScalarFromUint64(uint64(j)), group.ScalarFromUint64(uint64(i))))
			}
		}
		l := num.Multiply(num, den.Invert(den))
		secret.MultiplyAdd(l, xs[i], secret)
	}
	if string(new(edwards25519.Point).ScalarBaseMult(secret).Bytes()) != string(res.Commits[0]) {
		t.Fatalf("shares %v do not reconstruct the key", idx)
	}
}

// agrees checks that the transcript alone gives what the keyholders
// reached: Check recomputes the key, the qualified dealers, the holders
// and every fault the rules name; and that it survives encoding.
func agrees(t *testing.T, res *Result) *Outcome {
	t.Helper()
	raw := res.Transcript.Encode()
	tr, err := DecodeTranscript(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(tr.Encode()) != string(raw) {
		t.Fatal("transcript re-encodes differently")
	}
	o, err := Check(tr)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	var public []Fault
	for _, f := range res.Faults {
		if !strings.HasPrefix(f.Reason, "left out: ") {
			public = append(public, f)
		}
	}
	if !reflect.DeepEqual(o.Commits, res.Commits) || !reflect.DeepEqual(o.Qual, res.Qual) ||
		!reflect.DeepEqual(o.Holders, res.Holders) || !reflect.DeepEqual(o.Faults, public) || o.Hash != res.Hash {
		t.Fatalf("check reached\n%+v\nthe keyholders\n%+v", o, res.Outcome)
	}
	return o
}

func holders(res *Result) []int {
	var out []int
	for _, s := range res.Shares {
		out = append(out, s.Index)
	}
	return out
}

func TestRunAllHonest(t *testing.T) {
	var steps int
	res, err := Run(t.Context(), Config{N: 5, K: 3, Progress: func(d, _ int) { steps = d }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Shares) != 5 || len(res.Qual) != 5 || len(res.Faults) != 0 || len(res.Commits) != 3 || len(res.Refused) != 0 {
		t.Fatalf("shares %d qual %v faults %v commits %d refused %v", len(res.Shares), res.Qual, res.Faults, len(res.Commits), res.Refused)
	}
	if steps != 20 {
		t.Fatalf("progress reached %d of 20", steps)
	}
	reconstructs(t, res, 1, 2, 3)
	reconstructs(t, res, 2, 4, 5)
	// 5 deals, 5 responses, 5 justifications (empty); 5 confirmations.
	if len(res.Transcript.Messages) != 15 || len(res.Transcript.Confirmations) != 5 {
		t.Fatalf("transcript: %d messages, %d confirmations", len(res.Transcript.Messages), len(res.Transcript.Confirmations))
	}
	agrees(t, res)
}

// dealerTwoLeftOut checks a 5-keyholder, k = 3 run in which keyholder 2
// dealt badly: it completes, keyholder 2's deal is left out for reason,
// nobody honest is blamed, keyholders 1, 3, 4 and 5 hold shares of the key,
// and the transcript alone says the same. (Keyholder 2's own party kept the
// deal it made, not the one the link put in its name, so it reached another
// transcript and is left out as a holder too.)
func dealerTwoLeftOut(t *testing.T, res *Result, err error, reason string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 3, 4, 5}; !reflect.DeepEqual(res.Qual, want) {
		t.Fatalf("qual %v, want %v; faults %v", res.Qual, want, res.Faults)
	}
	if len(res.Faults) != 2 || res.Faults[0] != (Fault{2, "deal left out: " + reason}) || res.Faults[1].Keyholder != 2 ||
		!strings.HasPrefix(res.Faults[1].Reason, "left out: ") {
		t.Fatalf("faults %v\nwant keyholder 2: deal left out: %s, and left out", res.Faults, reason)
	}
	if got := holders(res); !reflect.DeepEqual(got, []int{1, 3, 4, 5}) {
		t.Fatalf("holders %v", got)
	}
	reconstructs(t, res, 1, 3, 4)
	reconstructs(t, res, 3, 4, 5)
	agrees(t, res)
}

// badDealer returns a config for 5 keyholders and a link through which
// keyholder 2's envelopes of kind are replaced by change's (re-signed, the
// same for every recipient).
func badDealer(t *testing.T, kind Kind, change func(s *Session, ks []keys.PrivateKey, e *Envelope) []byte) (Config, Link) {
	cfg := Config{N: 5, K: 3, Keys: genKeys(t, 5)}
	s := sessionOf(t, cfg)
	var m memo
	return cfg, linkFunc(func(by, _ int, e *Envelope) *Envelope {
		if e.From != 2 || e.Kind != kind || by != 2 {
			return e
		}
		return m.get(e, func() *Envelope {
			body := change(s, cfg.Keys, e)
			if body == nil {
				return nil
			}
			return resign(t, s, cfg.Keys[1], e, body)
		})
	})
}

// A dealer whose shares do not decrypt draws a complaint from every other
// keyholder: k or more complaints leave its deal out, answered or not.
func TestShareThatDoesNotDecrypt(t *testing.T) {
	cfg, link := badDealer(t, KindDeal, func(s *Session, _ []keys.PrivateKey, e *Envelope) []byte {
		d, err := parseDeal(s, e.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range d.boxes {
			b[0] ^= 1
		}
		return encodeDeal(d)
	})
	cfg.Link = link
	res, err := Run(t.Context(), cfg)
	dealerTwoLeftOut(t, res, err, "complaints from keyholders 1 (its share did not decrypt), 3 (its share did not decrypt), 4 (its share did not decrypt), 5 (its share did not decrypt): k = 3 or more")
}

// wrongShareTo3 is a link through which keyholder 2's deal gives keyholder
// 3 a share that is not the polynomial's value there (a deal inconsistent
// between its recipients), well encrypted; answer, when not nil, makes
// keyholder 2's justification from the true share.
func wrongShareTo3(t *testing.T, answer func(s *Session, truth *edwards25519.Scalar) []byte) Config {
	var truth *edwards25519.Scalar
	cfg, deals := badDealer(t, KindDeal, func(s *Session, ks []keys.PrivateKey, e *Envelope) []byte {
		d, err := parseDeal(s, e.Body)
		if err != nil {
			t.Fatal(err)
		}
		shares := sharesOf(t, s, ks, 2, d)
		truth, shares[3] = shares[3], group.RandomScalar()
		return sealDeal(t, s, 2, d.commits, shares)
	})
	s := sessionOf(t, cfg)
	var m memo
	cfg.Link = linkFunc(func(by, to int, e *Envelope) *Envelope {
		if e.From == 2 && e.Kind == KindJustification {
			return m.get(e, func() *Envelope {
				if answer == nil {
					return nil
				}
				return resign(t, s, cfg.Keys[1], e, answer(s, truth))
			})
		}
		return deals.Carry(by, to, e)
	})
	return cfg
}

// A share inconsistent with the commitments draws that recipient's
// complaint; the dealer answers by revealing the share, which matches, so
// the deal stays and the complainer takes the revealed share.
func TestWrongShareAnswered(t *testing.T) {
	res, err := Run(t.Context(), wrongShareTo3(t, func(_ *Session, truth *edwards25519.Scalar) []byte {
		return encodeJustification([]reveal{{to: 3, share: truth}})
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Qual) != 5 || !reflect.DeepEqual(holders(res), []int{1, 3, 4, 5}) {
		t.Fatalf("qual %v faults %v shares %v", res.Qual, res.Faults, holders(res))
	}
	reconstructs(t, res, 3, 4, 5)
	agrees(t, res)
}

// The same deal, with the dealer silent in round 3: the complaint stands
// and the deal is left out.
func TestWrongShareUnanswered(t *testing.T) {
	res, err := Run(t.Context(), wrongShareTo3(t, nil))
	dealerTwoLeftOut(t, res, err, "did not answer the complaint of keyholder 3 (its share did not match the commitments)")
}

// The same deal, answered with another wrong share: left out.
func TestWrongShareWronglyAnswered(t *testing.T) {
	res, err := Run(t.Context(), wrongShareTo3(t, func(*Session, *edwards25519.Scalar) []byte {
		return encodeJustification([]reveal{{to: 3, share: group.RandomScalar()}})
	}))
	dealerTwoLeftOut(t, res, err, "the share it revealed to answer keyholder 3 does not match its commitments")
}

// A dealer that sends keyholders 4 and 5 another deal than 1 and 3 (each
// properly signed) is caught: the responses name two deals, keyholders
// pass on the deals they hold, and every keyholder ends with both, so the
// deal is left out by all alike and the transcript carries the evidence.
func TestTwoDifferentDeals(t *testing.T) {
	cfg := Config{N: 5, K: 3, Keys: genKeys(t, 5)}
	s := sessionOf(t, cfg)
	var m memo
	cfg.Link = linkFunc(func(by, to int, e *Envelope) *Envelope {
		if e.From != 2 || e.Kind != KindDeal || by != 2 || to < 4 {
			return e
		}
		return m.get(e, func() *Envelope {
			coef := group.RandomPoly(3)
			shares := map[int]*edwards25519.Scalar{}
			for j := 1; j <= 5; j++ {
				shares[j] = group.EvalPoly(coef, uint64(j))
			}
			return resign(t, s, cfg.Keys[1], e, sealDeal(t, s, 2, group.Commit(coef), shares))
		})
	})
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Fault{{2, "deal left out: sent two different deals (equivocation; both are in the transcript)"}}; !reflect.DeepEqual(res.Faults, want) {
		t.Fatalf("faults %v", res.Faults)
	}
	if !reflect.DeepEqual(res.Qual, []int{1, 3, 4, 5}) || len(res.Shares) != 5 || len(res.Confirmed) != 5 {
		t.Fatalf("qual %v, holders %v, confirmed by %v: want every keyholder on one transcript", res.Qual, holders(res), res.Confirmed)
	}
	reconstructs(t, res, 2, 4, 5)
	agrees(t, res)
	deals := 0
	for _, e := range res.Transcript.Messages {
		if e.Kind == KindDeal && e.From == 2 {
			deals++
		}
	}
	if deals != 2 {
		t.Fatalf("%d deals of keyholder 2 in the transcript, want both", deals)
	}
}

// A commitment with a small-order component is refused by every decoder:
// the deal is malformed for all, in public.
func TestTorsionInCommitmentsLeftOut(t *testing.T) {
	// (0, −1): y = p − 1, the point of order 2.
	tb := make([]byte, 32)
	tb[0], tb[31] = 0xec, 0x7f
	for i := 1; i < 31; i++ {
		tb[i] = 0xff
	}
	torsion, err := new(edwards25519.Point).SetBytes(tb)
	if err != nil {
		t.Fatal(err)
	}
	cfg, link := badDealer(t, KindDeal, func(s *Session, _ []keys.PrivateKey, e *Envelope) []byte {
		d, err := parseDeal(s, e.Body)
		if err != nil {
			t.Fatal(err)
		}
		d.commits[1].Add(d.commits[1], torsion)
		return encodeDeal(d)
	})
	cfg.Link = link
	res, err := Run(t.Context(), cfg)
	dealerTwoLeftOut(t, res, err, "malformed deal: commitment 1: point outside the prime-order subgroup")
}

// Too many dealers missing: the run fails and says why.
func TestTooManyBadDealers(t *testing.T) {
	link := linkFunc(func(_, _ int, e *Envelope) *Envelope {
		if e.Kind == KindDeal && e.From >= 3 {
			return nil
		}
		return e
	})
	_, err := Run(t.Context(), Config{N: 5, K: 3, Link: link})
	want := "dkg: failed: 2 dealers qualified, need 3; keyholder 3: deal left out: sent no deal; keyholder 4: deal left out: sent no deal; keyholder 5: deal left out: sent no deal"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// A lost deal: the dealer still qualifies with the others' approvals; the
// keyholder that missed it holds no share, and the rest do.
func TestLostDeal(t *testing.T) {
	link := linkFunc(func(_, to int, e *Envelope) *Envelope {
		if e.Kind == KindDeal && e.From == 1 && to == 4 {
			return nil
		}
		return e
	})
	res, err := Run(t.Context(), Config{N: 5, K: 3, Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Qual) != 5 || !reflect.DeepEqual(holders(res), []int{1, 2, 3, 5}) {
		t.Fatalf("qual %v holders %v", res.Qual, holders(res))
	}
	if want := []Fault{{4, "holds no share: did not receive the deal of keyholder 1"}}; !reflect.DeepEqual(res.Faults, want) {
		t.Fatalf("faults %v", res.Faults)
	}
	reconstructs(t, res, 1, 3, 5)
	agrees(t, res)
}

// A lost response makes the keyholder that missed it reach another
// transcript: the others confirm theirs and keyholder 5 is left out.
func TestLostResponse(t *testing.T) {
	link := linkFunc(func(_, to int, e *Envelope) *Envelope {
		if e.Kind == KindResponse && e.From == 3 && to == 5 {
			return nil
		}
		return e
	})
	res, err := Run(t.Context(), Config{N: 5, K: 3, Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(holders(res), []int{1, 2, 3, 4}) || !reflect.DeepEqual(res.Confirmed, []int{1, 2, 3, 4}) {
		t.Fatalf("holders %v confirmed %v", holders(res), res.Confirmed)
	}
	if len(res.Faults) != 1 || res.Faults[0].Keyholder != 5 || res.Faults[0].Reason != "left out: dkg: failed: this transcript is confirmed by 1 holders (keyholders 5), needs 3; confirmed another: keyholders 1, 2, 4; no confirmation: none" {
		t.Fatalf("faults %v", res.Faults)
	}
	reconstructs(t, res, 2, 3, 4)
	agrees(t, res)
}

// Envelopes are bound to their session, their sender and their content:
// a deal from an earlier attempt with the same keys, an altered envelope,
// one naming a keyholder the session does not have and one signed by an
// outsider are refused on arrival and named; each recipient then lacks
// that deal and holds no share, and the other three finish.
func TestEnvelopesBound(t *testing.T) {
	ks := genKeys(t, 6)
	old, err := Run(t.Context(), Config{N: 6, K: 3, Keys: ks, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	var replay *Envelope
	for _, e := range old.Transcript.Messages {
		if e.Kind == KindDeal && e.From == 2 {
			replay = e
		}
	}
	cfg := Config{N: 6, K: 3, Keys: ks, Attempt: 2}
	s := sessionOf(t, cfg)
	outsider := genKeys(t, 1)[0]
	cfg.Link = linkFunc(func(by, to int, e *Envelope) *Envelope {
		switch {
		case e.Kind == KindDeal && e.From == 2 && to == 3:
			return replay // the same keys, the previous attempt's deal
		case e.Kind == KindDeal && e.From == 4 && to == 1:
			c := *e
			c.Body = append([]byte(nil), e.Body...)
			c.Body[len(c.Body)-1] ^= 1
			return &c
		case e.Kind == KindDeal && e.From == 5 && to == 2:
			c, err := s.Seal(outsider, KindDeal, 7, e.Body)
			if err != nil {
				t.Fatal(err)
			}
			return c
		case e.Kind == KindDeal && e.From == 1 && to == 2:
			return resign(t, s, outsider, e, e.Body)
		}
		return e
	})
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Refused, "\n")
	for _, want := range []string{
		"keyholder 3: dkg: deal from keyholder 2 refused: envelope from another session",
		"keyholder 1: dkg: deal from keyholder 4 refused: not signed by keyholder 4's key: keys: invalid signature",
		"keyholder 2: dkg: deal from keyholder 7 refused: sender 7 is not a keyholder of this session (1..6)",
		"keyholder 2: dkg: deal from keyholder 1 refused: not signed by keyholder 1's key",
	} {
		if !strings.Contains(all, want) {
			t.Fatalf("refusals:\n%s\nwant a line with %q", all, want)
		}
	}
	if !reflect.DeepEqual(holders(res), []int{4, 5, 6}) || len(res.Qual) != 6 {
		t.Fatalf("holders %v qual %v", holders(res), res.Qual)
	}
	want := []Fault{{1, "holds no share: did not receive the deal of keyholder 4"}, {2, "holds no share: did not receive the deal of keyholder 1"},
		{3, "holds no share: did not receive the deal of keyholder 2"}}
	if !reflect.DeepEqual(res.Faults, want) {
		t.Fatalf("faults %v", res.Faults)
	}
	reconstructs(t, res, 4, 5, 6)
	agrees(t, res)
}

// Every envelope delivered twice changes nothing: copies are recognised.
func TestRepeatedEnvelopesIgnored(t *testing.T) {
	var dup atomic.Int32
	ks := genKeys(t, 4)
	var ps []*Party
	var pubs []keys.PublicKey
	for _, k := range ks {
		pubs = append(pubs, k.Public())
	}
	s, err := NewSession(Session{K: 3, Keys: pubs})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		p, err := NewParty(s, k)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	out := make([][]*Envelope, 4)
	for i, p := range ps {
		e, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = []*Envelope{e}
	}
	for r := 0; r < 4; r++ {
		for to, p := range ps {
			for by, es := range out {
				for _, e := range es {
					if by == to {
						continue
					}
					for range 2 {
						_, isNew, err := p.Receive(e.Encode())
						if err != nil {
							t.Fatal(err)
						}
						if !isNew {
							dup.Add(1)
						}
					}
				}
			}
		}
		for i, p := range ps {
			if out[i], err = p.Next(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dup.Load() != 4*4*3 {
		t.Fatalf("%d copies recognised, want 48", dup.Load())
	}
	var keyBytes []byte
	for _, p := range ps {
		o, err := p.Outcome()
		if err != nil || len(o.Faults) != 0 || o.Share == nil {
			t.Fatalf("keyholder %d: %v, faults %v", p.Self(), err, o.Faults)
		}
		if keyBytes != nil && string(o.Commits[0]) != string(keyBytes) {
			t.Fatal("keyholders reached different keys")
		}
		keyBytes = o.Commits[0]
	}
}

// TestRunCancelled: a DKG whose context ends part-way stops at the next
// keyholder step and returns no result.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var steps atomic.Int32
	res, err := Run(ctx, Config{N: 5, K: 3, Progress: func(done, _ int) {
		if steps.Add(1) == 5 { // every keyholder has dealt
			cancel()
		}
	}})
	if res != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("result %v, err %v; want none and a cancelled run", res, err)
	}
	if n := steps.Load(); n != 5 {
		t.Fatalf("%d keyholder steps, want the 5 deals before the cancel", n)
	}
}

func TestRunRefusesBadParameters(t *testing.T) {
	for _, c := range []struct {
		n, k int
		want string
	}{{1, 1, "n = 1, want 2..256"}, {5, 1, "k = 1, want 2..n"}, {5, 6, "k = 6, want 2..n"}, {MaxKeyholders + 1, 3, "n = 257"}} {
		if _, err := Run(t.Context(), Config{N: c.n, K: c.k}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("n=%d k=%d: %v, want %q", c.n, c.k, err, c.want)
		}
	}
	ks := genKeys(t, 3)
	if _, err := NewSession(Session{K: 2, Keys: []keys.PublicKey{ks[0].Public(), ks[1].Public(), ks[0].Public()}}); err == nil ||
		!strings.Contains(err.Error(), "keyholders 1 and 3 have the same key") {
		t.Fatalf("repeated key: %v", err)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	ks := genKeys(t, 3)
	s := sessionOf(t, Config{K: 2, Keys: ks})
	e, err := s.Seal(ks[2], KindResponse, 3, []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Open(e.Encode())
	if err != nil || string(d.Encode()) != string(e.Encode()) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := DecodeEnvelope(append(e.Encode(), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := s.Open(append([]byte{1}, e.Encode()[1:]...)); err == nil || !strings.Contains(err.Error(), "unknown envelope version 1") {
		t.Fatalf("version 1: %v", err)
	}
}

// A transcript that is changed, shortened or reordered is refused by
// Check or by its decoder, naming what is wrong.
func TestCheckRefusesChangedTranscripts(t *testing.T) {
	res, err := Run(t.Context(), Config{N: 4, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr := res.Transcript
	clone := func() *Transcript {
		c := *tr
		c.Messages = append([]*Envelope(nil), tr.Messages...)
		c.Confirmations = append([]*Envelope(nil), tr.Confirmations...)
		return &c
	}
	c := clone()
	bad := *c.Messages[5]
	bad.Sig = append([]byte(nil), bad.Sig...)
	bad.Sig[3] ^= 1
	c.Messages[5] = &bad
	if _, err := Check(c); err == nil || !strings.Contains(err.Error(), "not signed by keyholder") {
		t.Fatalf("altered signature: %v", err)
	}
	c = clone()
	c.Confirmations = c.Confirmations[:2]
	if _, err := Check(c); err == nil || err.Error() != "dkg: failed: this transcript is confirmed by 2 holders (keyholders 1, 2), needs 3; confirmed another: none; no confirmation: keyholders 3, 4" {
		t.Fatalf("two confirmations: %v", err)
	}
	c = clone()
	c.Messages[0], c.Messages[1] = c.Messages[1], c.Messages[0]
	if _, err := DecodeTranscript(c.Encode()); err == nil || !strings.Contains(err.Error(), "not in canonical order") {
		t.Fatalf("reordered: %v", err)
	}
	c = clone()
	c.Messages = append(c.Messages[:4:4], c.Messages[5:]...) // keyholder 1's response gone
	if _, err := Check(c); err == nil || err.Error() != "dkg: failed: this transcript is confirmed by 0 holders (none), needs 3; confirmed another: keyholders 2, 3, 4; no confirmation: none" {
		t.Fatalf("a message removed: %v", err)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	ks := genKeys(f, 2)
	s := sessionOf(f, Config{K: 2, Keys: ks})
	e, _ := s.Seal(ks[0], KindDeal, 1, []byte{1, 2, 3})
	f.Add(e.Encode())
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		if string(e.Encode()) != string(b) {
			t.Fatal("decode then encode is not the identity")
		}
		_, _ = s.Open(b)
	})
}

// FuzzBodies feeds the body parsers of a 4-keyholder session: whatever
// parses re-encodes to the same bytes.
func FuzzBodies(f *testing.F) {
	res, err := Run(context.Background(), Config{N: 4, K: 3})
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range res.Transcript.Messages {
		f.Add(uint8(e.Kind), e.Body)
	}
	s := res.Session
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		switch Kind(kind % 3) {
		case 0:
			if d, err := parseDeal(s, b); err == nil && string(encodeDeal(d)) != string(b) {
				t.Fatal("deal re-encodes differently")
			}
		case 1:
			if es, err := parseResponse(s, 2, b); err == nil {
				var list []entry
				for i, e := range es {
					if i != 0 && i != 2 {
						list = append(list, e)
					}
				}
				if string(encodeResponse(list)) != string(b) {
					t.Fatal("response re-encodes differently")
				}
			}
		case 2:
			if m, err := parseJustification(s, 2, b); err == nil {
				var rs []reveal
				for j := 1; j <= s.N(); j++ {
					if x, ok := m[j]; ok {
						rs = append(rs, reveal{j, x})
					}
				}
				if string(encodeJustification(rs)) != string(b) {
					t.Fatal("justification re-encodes differently")
				}
			}
		}
	})
}

func FuzzDecodeTranscript(f *testing.F) {
	res, err := Run(context.Background(), Config{N: 3, K: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(res.Transcript.Encode())
	f.Add([]byte{transcriptTag, transcriptVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTranscript(b)
		if err != nil {
			return
		}
		if string(tr.Encode()) != string(b) {
			t.Fatal("decode then encode is not the identity")
		}
		_, _ = Check(tr)
	})
}
