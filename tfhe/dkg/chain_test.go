package dkg

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// TestChainDKG: four parties whose only channel is a chain (every envelope
// recorded once, everyone reading the same list): keyholder 2 deals with
// its first two commitments swapped (signed and well formed; the shares of
// keyholders 3 and 4 no longer match, and it answers neither complaint). Decide, run by an outsider on the recorded envelopes, leaves it
// out and names it; every party's Settle gives a share of that key, any k
// of which recover its secret's commitment; the transcript checks with
// CheckChain, and Check (which wants confirmations) refuses it.
func TestChainDKG(t *testing.T) {
	ks := genKeys(t, 4)
	cfg := Config{Epoch: 2, K: 3, Keys: ks}
	s := sessionOf(t, cfg)
	ps := make([]*Party, 4)
	var chain []*Envelope
	record := func(es ...*Envelope) { chain = append(chain, es...) }
	for i := range ps {
		var err error
		if ps[i], err = NewParty(s, ks[i]); err != nil {
			t.Fatal(err)
		}
		e, err := ps[i].Start()
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 { // swap C_0 and C_1
			b := bytes.Clone(e.Body)
			copy(b[4:36], e.Body[36:68])
			copy(b[36:68], e.Body[4:36])
			e = resign(t, s, ks[i], e, b)
		}
		record(e)
	}
	chain = chainRounds(t, ps, chain, func() {})
	o, err := Decide(s, chain)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Qual, []int{1, 3, 4}) || !slices.Equal(o.Holders, []int{1, 2, 3, 4}) {
		t.Fatalf("qual %v holders %v", o.Qual, o.Holders)
	}
	if len(o.Faults) != 1 || o.Faults[0].Keyholder != 2 || !strings.Contains(o.Faults[0].Reason, "deal left out: did not answer the complaint of keyholder 3") {
		t.Fatalf("faults %+v", o.Faults)
	}
	var xs []*edwards25519.Scalar
	for i, p := range ps {
		po, err := p.Settle(chain)
		if err != nil {
			t.Fatalf("party %d: %v", i+1, err)
		}
		if po.Hash != o.Hash || po.Share.Index != i+1 {
			t.Fatalf("party %d: hash %x share %d", i+1, po.Hash[:4], po.Share.Index)
		}
		x, err := group.DecodeScalar(po.Share.Secret)
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	// Shares 1, 3, 4 interpolate at 0 to the key's secret: x·G = C_0.
	secret := atZero([]uint64{1, 3, 4}, []*edwards25519.Scalar{xs[0], xs[2], xs[3]})
	if !bytes.Equal(new(edwards25519.Point).ScalarBaseMult(secret).Bytes(), o.Commits[0]) {
		t.Fatal("the shares do not make the key")
	}
	if c, err := CheckChain(o.Transcript); err != nil || c.Hash != o.Hash {
		t.Fatalf("check chain: %v", err)
	}
	if _, err := Check(o.Transcript); err == nil {
		t.Fatal("Check took a transcript without confirmations")
	}

	// A confirmation, or an envelope of another session, is refused.
	conf, err := s.Seal(ks[0], KindConfirmation, 1, o.Hash[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decide(s, append(slices.Clone(chain), conf)); err == nil || !strings.Contains(err.Error(), "no confirmations") {
		t.Fatalf("confirmation on a chain: %v", err)
	}
	other := sessionOf(t, Config{Epoch: 3, K: 3, Keys: ks})
	if _, err := Decide(other, chain); err == nil || !strings.Contains(err.Error(), "another session") {
		t.Fatalf("another session: %v", err)
	}
}

// atZero is the Lagrange interpolation at 0 of the points (xs[i], ys[i]).
func atZero(xs []uint64, ys []*edwards25519.Scalar) *edwards25519.Scalar {
	sum := edwards25519.NewScalar()
	for i, xi := range xs {
		num, den := group.ScalarFromUint64(1), group.ScalarFromUint64(1)
		for j, xj := range xs {
			if j == i {
				continue
			}
			num.Multiply(num, group.ScalarFromUint64(xj))
			den.Multiply(den, new(edwards25519.Scalar).Subtract(group.ScalarFromUint64(xj), group.ScalarFromUint64(xi)))
		}
		l := new(edwards25519.Scalar).Multiply(num, new(edwards25519.Scalar).Invert(den))
		sum.Add(sum, l.Multiply(l, ys[i]))
	}
	return sum
}

// chainRounds runs rounds 2 and 3 of parties ps over a chain that holds
// their deals: each round every party reads what the chain holds, ends the
// round and records its answers; after is called once a round is recorded.
func chainRounds(t *testing.T, ps []*Party, chain []*Envelope, after func()) []*Envelope {
	t.Helper()
	for round := KindDeal; round < KindJustification; round++ {
		seen := slices.Clone(chain)
		for _, p := range ps {
			for _, e := range seen {
				if _, _, err := p.Receive(e.Encode()); err != nil {
					t.Fatal(err)
				}
			}
			out, err := p.Next()
			if err != nil {
				t.Fatal(err)
			}
			chain = append(chain, out...)
		}
		after()
	}
	return chain
}
