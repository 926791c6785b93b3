package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

// katKey is the private key of libsignal's xeddsa_fast_test
// (libsignal-protocol-c, src/curve25519/ed25519/tests/internal_fast_tests.c):
// all zero but byte 8 = 189, clamped. That test signs 200 zero bytes with 64
// zero random bytes and expects katSig.
func katKey() PrivateKey {
	var k PrivateKey
	k[8] = 189
	k[31] = 64
	return k
}

const katSig = "11c7f3e6c4df9e8a5150e1db3b30f92de3a3b3aa438656545fa7390f4bcc7bb2" +
	"6c431d9e90643e4f0eaa0e9c557766fa69ada576d63dcaf2ac326c11d0b97702"

var katMsg = make([]byte, 200)

func zeroRand() *bytes.Reader { return bytes.NewReader(make([]byte, 64)) }

func TestSignKnownAnswer(t *testing.T) {
	sig, err := katKey().Sign(zeroRand(), katMsg)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(sig); got != katSig {
		t.Fatalf("signature\n got %s\nwant %s", got, katSig)
	}
	if err := Verify(katKey().Public(), katMsg, sig); err != nil {
		t.Fatalf("Verify(known answer) = %v", err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for i, p := range seedPairs {
		k, _ := ParsePrivateKey(p.priv)
		msg := []byte("transfer 5 to key " + p.pub)
		sig1, err := k.Sign(rand.Reader, msg)
		if err != nil {
			t.Fatal(err)
		}
		sig2, _ := k.Sign(rand.Reader, msg)
		if len(sig1) != SignatureSize || bytes.Equal(sig1, sig2) {
			t.Fatalf("key %d: signatures not 64 bytes or not randomised: %x %x", i+1, sig1, sig2)
		}
		for _, sig := range [][]byte{sig1, sig2} {
			if err := Verify(k.Public(), msg, sig); err != nil {
				t.Errorf("key %d: Verify = %v", i+1, err)
			}
		}
		// The same randomness gives the same bytes: signing is replayable.
		a, _ := k.Sign(zeroRand(), msg)
		b, _ := k.Sign(zeroRand(), msg)
		if !bytes.Equal(a, b) {
			t.Errorf("key %d: same rand, different signatures", i+1)
		}
	}
	k := katKey()
	if err := Verify(k.Public(), nil, mustSign(t, k, nil)); err != nil {
		t.Errorf("empty message: %v", err)
	}
}

// TestSignNegatesScalarForOddEdwardsKey covers both branches of
// calculate_key_pair: keys whose kB has sign bit 1 sign with −k.
func TestSignNegatesScalarForOddEdwardsKey(t *testing.T) {
	seen := map[byte]bool{}
	for i := 0; i < 64 && len(seen) < 2; i++ {
		k, _ := GenerateKey(rand.Reader)
		kS, _ := edwards25519.NewScalar().SetBytesWithClamping(k[:])
		E := new(edwards25519.Point).ScalarBaseMult(kS).Bytes()
		seen[E[31]>>7] = true

		A, a := edwardsKeyPair(k)
		if A[31]>>7 != 0 {
			t.Fatal("A has sign bit 1")
		}
		aB := new(edwards25519.Point).ScalarBaseMult(a).Bytes()
		if !bytes.Equal(aB, A[:]) {
			t.Fatalf("aB = %x, A = %x", aB, A)
		}
		conv, enc, err := montgomeryToEdwards(k.Public(), nil)
		if err != nil || !bytes.Equal(conv.Bytes(), A[:]) || enc != A {
			t.Fatalf("convert_mont(Public) = %v (encoding %x), %v; want A = %x", conv, enc, err, A)
		}
		msg := []byte{byte(i)}
		if err := Verify(k.Public(), msg, mustSign(t, k, msg)); err != nil {
			t.Fatalf("sign bit %d: %v", E[31]>>7, err)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("64 random keys did not cover both sign bits: %v", seen)
	}
}

func mustSign(t testing.TB, k PrivateKey, msg []byte) []byte {
	t.Helper()
	sig, err := k.Sign(rand.Reader, msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// le32 returns x as 32 little-endian bytes.
func le32(x *big.Int) []byte {
	b := x.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

func fromLE(b []byte) *big.Int {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(r)
}

var (
	bigP    = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	bigQ, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
)

func pubFromInt(x *big.Int) PublicKey {
	var p PublicKey
	copy(p[:], le32(x))
	return p
}

func TestVerifyRefusals(t *testing.T) {
	k := katKey()
	pub := k.Public()
	msg := []byte("pay 10")
	sig := mustSign(t, k, msg)
	other, _ := ParsePrivateKey(seedPairs[0].priv)

	withS := func(s *big.Int) []byte {
		return append(append([]byte{}, sig[:32]...), le32(s)...)
	}
	withR := func(r []byte) []byte { return append(append([]byte{}, r...), sig[32:]...) }
	s := fromLE(sig[32:])
	sPlusQ := new(big.Int).Add(s, bigQ)
	if sPlusQ.BitLen() > 253 {
		t.Fatalf("fixture: s + q ≥ 2^253; pick another message")
	}
	var allFF PublicKey
	for i := range allFF {
		allFF[i] = 0xFF
	}
	pMinus1 := new(big.Int).Sub(bigP, big.NewInt(1))
	max255 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))
	// R = identity encoded with y = 1 + p (canonical is y = 1).
	rIdentityPlusP := le32(new(big.Int).Add(bigP, big.NewInt(1)))
	var highS [64]byte
	copy(highS[:], sig)
	highS[63] |= 0x20

	for _, tc := range []struct {
		name string
		pub  PublicKey
		msg  []byte
		sig  []byte
		want string
	}{
		{"wrong key", other.Public(), msg, sig, "R ≠ sB − hA"},
		{"changed message", pub, []byte("pay 11"), sig, "R ≠ sB − hA"},
		{"message with extra byte", pub, append([]byte("pay 10"), 0), sig, "R ≠ sB − hA"},
		{"flipped R bit", pub, msg, withR(xor(sig[:32], 0, 1)), "R ≠ sB − hA"},
		{"truncated", pub, msg, sig[:63], "63 bytes, want 64"},
		{"oversize", pub, msg, append(append([]byte{}, sig...), 0), "65 bytes, want 64"},
		{"empty", pub, msg, nil, "0 bytes, want 64"},
		{"all-zero signature", pub, msg, make([]byte, 64), "R ≠ sB − hA"},
		{"s = q", pub, msg, withS(bigQ), "s is not reduced modulo q"},
		{"s + q (non-canonical s)", pub, msg, withS(sPlusQ), "s is not reduced modulo q"},
		{"s ≥ 2^253", pub, msg, highS[:], "s ≥ 2^253"},
		{"s = 2^256 − 1", pub, msg, withS(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))), "s ≥ 2^253"},
		{"u = p", pubFromInt(bigP), msg, sig, "public key u is not below p"},
		{"u = 2^255 − 1", pubFromInt(max255), msg, sig, "public key u is not below p"},
		{"u with top bit set", allFF, msg, sig, "public key u is not below p"},
		{"u + p in the top bit", pubFromInt(new(big.Int).Add(fromLE(pub[:]), new(big.Int).Lsh(big.NewInt(1), 255))), msg, sig, "public key u is not below p"},
		{"u = p − 1", pubFromInt(pMinus1), msg, sig, "u = p − 1 has no Edwards point"},
		{"u = 2 (on the twist)", pubFromInt(big.NewInt(2)), msg, sig, "public key u has no point on the Edwards curve"},
		{"u = 0 (order 2)", pubFromInt(big.NewInt(0)), msg, sig, "public key has small order"},
		{"u = 1 (order 4)", pubFromInt(big.NewInt(1)), msg, sig, "public key has small order"},
		{"R with y = 1 + p", pub, msg, withR(rIdentityPlusP), "R is not canonical (y ≥ p)"},
		{"R with y = 2^255 − 1", pub, msg, withR(le32(max255)), "R is not canonical (y ≥ p)"},
	} {
		err := Verify(tc.pub, tc.msg, tc.sig)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !errors.Is(err, ErrInvalidSignature) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %q, want ErrInvalidSignature with %q", tc.name, err, tc.want)
		}
	}
	// The refusals above did not touch the signature they were built from.
	if err := Verify(pub, msg, sig); err != nil {
		t.Fatalf("original signature no longer verifies: %v", err)
	}
}

func xor(b []byte, i int, mask byte) []byte {
	c := append([]byte{}, b...)
	c[i] ^= mask
	return c
}

// TestVerifyLibsignalRefusals repeats libsignal's xeddsa_fast_test checks: a
// flipped first byte and an all-0xFF public key are refused.
func TestVerifyLibsignalRefusals(t *testing.T) {
	sig, _ := hex.DecodeString(katSig)
	sig[0] ^= 1
	if err := Verify(katKey().Public(), katMsg, sig); err == nil {
		t.Fatal("flipped signature accepted")
	}
	var ff PublicKey
	for i := range ff {
		ff[i] = 0xFF
	}
	if err := Verify(ff, katMsg, sig); err == nil {
		t.Fatal("all-0xFF public key accepted")
	}
}

func FuzzVerify(f *testing.F) {
	k := katKey()
	good, _ := hex.DecodeString(katSig)
	pub := k.Public()
	f.Add(pub[:], katMsg, good)
	f.Add(pub[:], []byte("x"), make([]byte, 64))
	f.Add(make([]byte, 32), []byte{}, good[:10])
	f.Add(bytes.Repeat([]byte{0xFF}, 32), katMsg, bytes.Repeat([]byte{0xFF}, 64))
	f.Fuzz(func(t *testing.T, pubBytes, msg, sig []byte) {
		var p PublicKey
		copy(p[:], pubBytes)
		err := Verify(p, msg, sig)
		if err != nil && !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("refusal does not wrap ErrInvalidSignature: %v", err)
		}
		// A valid signature stays valid, and only for its own message.
		if err == nil && p == pub && !bytes.Equal(msg, katMsg) {
			t.Fatalf("signature of another message accepted for the known key: msg %x sig %x", msg, sig)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	for _, p := range seedPairs {
		f.Add(p.pub)
	}
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		// Strict decoding: an accepted text is the one canonical form.
		if p.String() != s {
			t.Fatalf("accepted %q but prints %q", s, p.String())
		}
	})
}

func BenchmarkSign(b *testing.B) {
	k := katKey()
	msg := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(rand.Reader, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k := katKey()
	msg := make([]byte, 32)
	sig, _ := k.Sign(rand.Reader, msg)
	pub := k.Public()
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(pub, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublic(b *testing.B) {
	k := katKey()
	for b.Loop() {
		_ = k.Public()
	}
}

// TestEdwardsKeyMatchesEdwardsPoint: the scalar and point a key signs with
// agree (A = a·B), the public key converts to the same A, and a signature
// verifies as an Ed25519 signature under A.
func TestEdwardsKeyMatchesEdwardsPoint(t *testing.T) {
	for i, p := range seedPairs {
		k, err := ParsePrivateKey(p.priv)
		if err != nil {
			t.Fatal(err)
		}
		a, A := k.EdwardsKey()
		if new(edwards25519.Point).ScalarBaseMult(a).Equal(A) != 1 {
			t.Fatalf("key %d: a·B ≠ A", i+1)
		}
		if A.Bytes()[31]&0x80 != 0 {
			t.Fatalf("key %d: A has its sign bit set", i+1)
		}
		got, err := k.Public().EdwardsPoint()
		if err != nil || got.Equal(A) != 1 {
			t.Fatalf("key %d: EdwardsPoint = %v, %v; want A", i+1, got, err)
		}
		sig, err := k.Sign(rand.Reader, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(ed25519.PublicKey(A.Bytes()), []byte("m"), sig) {
			t.Fatalf("key %d: signature does not verify as Ed25519 under A", i+1)
		}
	}
	var high PublicKey
	for i := range high {
		high[i] = 0xFF
	}
	high[31] = 0x7F // 2^255 − 1 ≥ p
	if _, err := high.EdwardsPoint(); err == nil || !strings.Contains(err.Error(), "not below p") {
		t.Fatalf("u ≥ p: %v", err)
	}
	if _, err := (PublicKey{}).EdwardsPoint(); err == nil || !strings.Contains(err.Error(), "small order") {
		t.Fatalf("u = 0: %v", err)
	}
}
