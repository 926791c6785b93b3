package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// batchOf returns n valid items signed by keys[i % len(keys)].
func batchOf(t testing.TB, n int, keys ...PrivateKey) []BatchItem {
	items := make([]BatchItem, n)
	for i := range items {
		k := keys[i%len(keys)]
		msg := []byte(fmt.Sprintf("transfer %d", i))
		items[i] = BatchItem{Pub: k.Public(), Msg: msg, Sig: mustSign(t, k, msg)}
	}
	return items
}

func seedKeys(t testing.TB) []PrivateKey {
	var ks []PrivateKey
	for _, p := range seedPairs {
		k, err := ParsePrivateKey(p.priv)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	return ks
}

func TestVerifyBatchAcceptsValid(t *testing.T) {
	ks := seedKeys(t)
	for _, n := range []int{0, 1, 2, 7, 64} {
		if err := VerifyBatch(batchOf(t, n, ks...)); err != nil {
			t.Errorf("%d valid signatures: %v", n, err)
		}
	}
	// One key for every item: the A terms merge into one.
	if err := VerifyBatch(batchOf(t, 33, katKey())); err != nil {
		t.Errorf("one key: %v", err)
	}
}

func TestVerifyBatchNamesTheBadItem(t *testing.T) {
	ks := seedKeys(t)
	for _, tc := range []struct {
		name  string
		spoil func(it *BatchItem)
		want  string
	}{
		{"changed message", func(it *BatchItem) { it.Msg = append(it.Msg, '!') }, "R ≠ sB − hA"},
		{"other key", func(it *BatchItem) { it.Pub = katKey().Public() }, "R ≠ sB − hA"},
		{"flipped s bit", func(it *BatchItem) { it.Sig = xor(it.Sig, 40, 1) }, "R ≠ sB − hA"},
		{"s ≥ 2^253", func(it *BatchItem) { it.Sig = xor(it.Sig, 63, 0x80) }, "s ≥ 2^253"},
		{"truncated", func(it *BatchItem) { it.Sig = it.Sig[:60] }, "60 bytes, want 64"},
		{"u = 0", func(it *BatchItem) { it.Pub = PublicKey{} }, "public key has small order"},
	} {
		items := batchOf(t, 20, ks...)
		tc.spoil(&items[13])
		err := VerifyBatch(items)
		if err == nil {
			t.Errorf("%s: batch accepted", tc.name)
			continue
		}
		if !errors.Is(err, ErrInvalidSignature) || !strings.Contains(err.Error(), "batch item 13: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %q, want item 13 and %q", tc.name, err, tc.want)
		}
	}
	// Two bad items: the first is named.
	items := batchOf(t, 10, ks...)
	items[8].Msg, items[3].Msg = nil, nil
	if err := VerifyBatch(items); err == nil || !strings.Contains(err.Error(), "batch item 3: ") {
		t.Errorf("two bad items: err = %v, want item 3", err)
	}
}

// torsion returns the points of order 2, 4 and 8 given by their encodings.
func torsion(t testing.TB) []*edwards25519.Point {
	var out []*edwards25519.Point
	for _, h := range []string{
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
		"0000000000000000000000000000000000000000000000000000000000000000", // order 4
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	} {
		b, _ := hex.DecodeString(h)
		T, err := new(edwards25519.Point).SetBytes(b)
		if err != nil || !smallOrder(T) || T.Equal(edwards25519.NewIdentityPoint()) == 1 {
			t.Fatalf("fixture: %s is not a non-trivial small-order point", h)
		}
		out = append(out, T)
	}
	return out
}

// forged is a signature made from raw parts by someone who knows the
// Edwards scalar a of A: R as given, s = r + h·a + extra.
func forged(R []byte, r, a *edwards25519.Scalar, A *edwards25519.Point, msg []byte, extra uint64) []byte {
	h := challenge(R, A.Bytes(), msg)
	s := edwards25519.NewScalar().MultiplyAdd(h, a, r)
	var e [32]byte
	e[0] = byte(extra)
	es, _ := edwards25519.NewScalar().SetCanonicalBytes(e[:])
	s.Add(s, es)
	return append(append([]byte{}, R...), s.Bytes()...)
}

// TestVerifyBatchAgreesOnEdgeCases crafts signatures with small-order
// components in R and in the key, a non-canonical R, and wrong ones: Verify
// and VerifyBatch (each inside a batch of valid signatures) must agree, and
// both must give the verdict of the cofactored equation.
func TestVerifyBatchAgreesOnEdgeCases(t *testing.T) {
	k := katKey()
	pubA, a := edwardsKeyPair(k)
	A, _ := new(edwards25519.Point).SetBytes(pubA[:])
	msg := []byte("edge")
	r, _ := edwards25519.NewScalar().SetUniformBytes(bytes.Repeat([]byte{7}, 64))
	rB := new(edwards25519.Point).ScalarBaseMult(r)
	zero := edwards25519.NewScalar()

	type tc struct {
		name   string
		pub    PublicKey
		sig    []byte
		accept bool
	}
	cases := []tc{
		{"honest", k.Public(), forged(rB.Bytes(), r, a, A, msg, 0), true},
		{"honest, s + 1", k.Public(), forged(rB.Bytes(), r, a, A, msg, 1), false},
	}
	for i, T := range torsion(t) {
		rT := new(edwards25519.Point).Add(rB, T).Bytes()
		cases = append(cases,
			tc{fmt.Sprintf("R = rB + T%d", i), k.Public(), forged(rT, r, a, A, msg, 0), true},
			tc{fmt.Sprintf("R = rB + T%d, s + 1", i), k.Public(), forged(rT, r, a, A, msg, 1), false},
			tc{fmt.Sprintf("R = T%d, s = h·a", i), k.Public(), forged(T.Bytes(), zero, a, A, msg, 0), true},
		)
		// A key with a small-order component: E = aB + T, sign bit 0.
		E := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), T)
		aE := edwards25519.NewScalar().Set(a)
		if E.Bytes()[31]&0x80 != 0 {
			E.Negate(E)
			aE.Negate(aE)
		}
		var mixed PublicKey
		copy(mixed[:], E.BytesMontgomery())
		cases = append(cases,
			tc{fmt.Sprintf("key aB + T%d", i), mixed, forged(rB.Bytes(), r, aE, E, msg, 0), true},
			tc{fmt.Sprintf("key aB + T%d, R = rB + T%d", i, i), mixed, forged(new(edwards25519.Point).Add(rB, T).Bytes(), r, aE, E, msg, 0), true},
			tc{fmt.Sprintf("key aB + T%d, s + 1", i), mixed, forged(rB.Bytes(), r, aE, E, msg, 1), false},
		)
	}
	// The identity with x = 0 and the sign bit set decodes, but is not the
	// canonical encoding of any sB − hA.
	negZero := make([]byte, 32)
	negZero[0], negZero[31] = 1, 0x80
	cases = append(cases, tc{"R = identity, sign bit set", k.Public(), forged(negZero, zero, a, A, msg, 0), false})
	// So does the point of order 2, (0, −1): accepted as R canonically
	// encoded (a torsion case above), refused with the sign bit set.
	negOrder2 := bytes.Repeat([]byte{0xff}, 32)
	negOrder2[0] = 0xec // p − 1 = 2^255 − 20
	cases = append(cases, tc{"R = (0, −1), sign bit set", k.Public(), forged(negOrder2, zero, a, A, msg, 0), false})
	order2 := append([]byte{}, negOrder2...)
	order2[31] = 0x7f
	cases = append(cases, tc{"R = (0, −1)", k.Public(), forged(order2, zero, a, A, msg, 0), true})

	good := batchOf(t, 5, seedKeys(t)...)
	for _, c := range cases {
		single := Verify(c.pub, msg, c.sig)
		batch := VerifyBatch(append(append([]BatchItem{}, good...), BatchItem{Pub: c.pub, Msg: msg, Sig: c.sig}))
		if (single == nil) != c.accept || (batch == nil) != c.accept {
			t.Errorf("%s: Verify = %v, VerifyBatch = %v, want accepted = %v", c.name, single, batch, c.accept)
		}
		if batch != nil && !strings.Contains(batch.Error(), "batch item 5: ") {
			t.Errorf("%s: batch refusal %q does not name item 5", c.name, batch)
		}
	}
}

func FuzzVerifyBatch(f *testing.F) {
	k := katKey()
	good, _ := hex.DecodeString(katSig)
	pub := k.Public()
	f.Add(pub[:], katMsg, good)
	f.Add(pub[:], []byte("x"), make([]byte, 64))
	f.Add(make([]byte, 32), []byte{}, good[:10])
	f.Add(pub[:], katMsg, append(append([]byte{}, good[:31]...), append([]byte{good[31] ^ 0x80}, good[32:]...)...))
	f.Fuzz(func(t *testing.T, pubBytes, msg, sig []byte) {
		var p PublicKey
		copy(p[:], pubBytes)
		single := Verify(p, msg, sig)
		items := []BatchItem{{Pub: pub, Msg: katMsg, Sig: good}, {Pub: p, Msg: msg, Sig: sig}}
		batch := VerifyBatch(items)
		if (single == nil) != (batch == nil) {
			t.Fatalf("Verify = %v, VerifyBatch = %v", single, batch)
		}
		if batch != nil && (!errors.Is(batch, ErrInvalidSignature) || !strings.Contains(batch.Error(), "batch item 1: ")) {
			t.Fatalf("batch refusal %q does not name item 1 with ErrInvalidSignature", batch)
		}
	})
}

func BenchmarkVerifyBatch(b *testing.B) {
	for _, n := range []int{1, 16, 64, 256} {
		for _, keys := range []int{1, n} {
			b.Run(fmt.Sprintf("n=%d/keys=%d", n, keys), func(b *testing.B) {
				ks := make([]PrivateKey, keys)
				for i := range ks {
					ks[i], _ = GenerateKey(rand.Reader)
				}
				items := batchOf(b, n, ks...)
				b.ResetTimer()
				for range b.N {
					if err := VerifyBatch(items); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/sig")
			})
		}
	}
}

// TestInvertDenominators: each key's inverse is 1/(u + 1), and the keys
// that have none (u ≥ p, u = p − 1) get nil, wherever they sit in a batch.
func TestInvertDenominators(t *testing.T) {
	var minusOne, tooBig PublicKey
	copy(minusOne[:], new(field.Element).Negate(new(field.Element).One()).Bytes())
	for i := range tooBig {
		tooBig[i] = 0xff
	}
	var items []BatchItem
	for i, k := range seedKeys(t) {
		items = append(items, BatchItem{Pub: k.Public()})
		if i == 0 {
			items = append(items, BatchItem{Pub: minusOne}, BatchItem{Pub: tooBig})
		}
	}
	items = append(items, BatchItem{Pub: minusOne})
	one := new(field.Element).One()
	for i, inv := range invertDenominators(items) {
		u, _ := new(field.Element).SetBytes(items[i].Pub[:])
		switch p := items[i].Pub; {
		case p == minusOne || p == tooBig:
			if inv != nil {
				t.Errorf("item %d: an inverse for a key without one", i)
			}
		case inv == nil:
			t.Errorf("item %d: no inverse", i)
		case new(field.Element).Multiply(inv, new(field.Element).Add(u, one)).Equal(one) != 1:
			t.Errorf("item %d: inverse × (u + 1) ≠ 1", i)
		}
	}
}
