package tfhe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	kyed "go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/proof/dleq"
	"go.dedis.ch/kyber/v3/share"

	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// order2 is the point (0, −1), of order 2.
var order2, _ = hex.DecodeString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")

func dealer(t testing.TB, n, k int) (*PublicKey, []*KeyShare) {
	t.Helper()
	pk, sks, err := TrustedDealerSetup(n, k)
	if err != nil {
		t.Fatal(err)
	}
	return pk, sks
}

func shares(t testing.TB, sks []*KeyShare, ct Ciphertext, idx ...int) []*Share {
	t.Helper()
	var out []*Share
	for _, i := range idx {
		s, err := PartDec(sks[i-1], ct)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func wantErr(t *testing.T, err error, text string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), text) {
		t.Fatalf("got error %v, want one containing %q", err, text)
	}
}

// subsets lists all k-subsets of 1..n.
func subsets(n, k int) [][]int {
	if k == 0 {
		return [][]int{nil}
	}
	var out [][]int
	for first := 1; first <= n; first++ {
		for _, rest := range subsets(n-first, k-1) {
			s := []int{first}
			for _, r := range rest {
				s = append(s, first+r)
			}
			out = append(out, s)
		}
	}
	return out
}

func TestAnyKOfNDecryptKMinusOneDoNot(t *testing.T) {
	pk, sks := dealer(t, 5, 3)
	c, err := Encrypt(pk, 424242)
	if err != nil {
		t.Fatal(err)
	}
	all := shares(t, sks, c, 1, 2, 3, 4, 5)
	for _, set := range subsets(5, 3) {
		var ss []*Share
		for _, i := range set {
			ss = append(ss, all[i-1])
		}
		m, err := DecryptCounter(pk, c, ss)
		if err != nil || m != 424242 {
			t.Fatalf("shares %v: got %d, %v", set, m, err)
		}
	}
	for _, set := range subsets(5, 2) {
		ss := []*Share{all[set[0]-1], all[set[1]-1]}
		_, err := DecryptCounter(pk, c, ss)
		wantErr(t, err, "2 shares, need 3")
		// Interpolating two shares as if k were 2 gives a wrong key: the
		// refusal is not the only thing standing in the way.
		k2 := *pk
		k2.K = 2
		wrong := new(edwards25519.Point).Subtract(c.v, combine(&k2, ss))
		if _, ok := discreteLog(wrong); ok {
			t.Fatalf("shares %v decrypt without the third", set)
		}
	}
}

func TestSetupByDKG(t *testing.T) {
	pk, sks, err := Setup(t.Context(), 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if pk.Origin != OriginDevDealer || len(sks) != 5 {
		t.Fatalf("origin %v, %d shares", pk.Origin, len(sks))
	}
	// The key names its DKG: session and transcript hash, kept through
	// its encoding. A version 1 key (made before transcripts: no
	// transcript hash, origin dkg or trusted dealer) still decodes to its
	// own bytes and ID, which instances and ciphertexts already name; an
	// unknown version is refused.
	pk2, _, res, err := SetupDKG(t.Context(), dkg.Config{N: 3, K: 2})
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodePublicKey(pk2.Encode())
	if err != nil || back.Transcript != res.Transcript.Hash() || back.Session != res.Session.ID() || back.ID() != pk2.ID() {
		t.Fatalf("key read back: %v; transcript %x, want %x", err, back.Transcript, res.Transcript.Hash())
	}
	v2 := pk2.Encode()
	v1 := append([]byte{tagPublicKey, 1, byte(OriginDKG)}, v2[3:3+32]...) // session
	v1 = append(v1, v2[3+64:]...)                                         // n, k, commitments
	old, err := DecodePublicKey(v1)
	if err != nil || !bytes.Equal(old.Encode(), v1) || old.ID() != sha256.Sum256(v1) || old.Transcript != ([32]byte{}) || old.Y().Equal(pk2.Y()) != 1 {
		t.Fatalf("version 1 key: %v", err)
	}
	v1[2] = byte(OriginDevDealer)
	if _, err := DecodePublicKey(v1); err == nil || err.Error() != "tfhe: public key: unknown origin 2" {
		t.Fatalf("version 1 key with a version 2 origin: %v", err)
	}
	v2[1] = 3
	if _, err := DecodePublicKey(v2); err == nil || err.Error() != "tfhe: public key: unknown public key version 3" {
		t.Fatalf("version 3 key: %v", err)
	}
	p, err := Seal(pk, []byte("transfer 5 to bob"), []byte("block 7"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(pk, p, shares(t, sks, p, 2, 4, 5))
	if err != nil || string(got) != "transfer 5 to bob" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestCounterRange(t *testing.T) {
	pk, sks := dealer(t, 3, 2)
	for _, m := range []uint64{0, 1, 65535, 65536, 1<<32 - 1, 3_000_000_000} {
		c, err := Encrypt(pk, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecryptCounter(pk, c, shares(t, sks, c, 1, 3))
		if err != nil || got != m {
			t.Fatalf("m=%d: got %d, %v", m, got, err)
		}
	}
	_, err := Encrypt(pk, 1<<32)
	wantErr(t, err, "is not below 2^32")
	c, _ := Encrypt(pk, 1<<31)
	over, err := Eval(pk, Circuit{Op: "mul", Factor: 2}, c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecryptCounter(pk, over, shares(t, sks, over, 1, 2))
	wantErr(t, err, "counter value is not below 2^32")
}

func TestEval(t *testing.T) {
	pk, sks := dealer(t, 3, 2)
	enc := func(m uint64) *Counter {
		c, err := Encrypt(pk, m)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dec := func(c *Counter) uint64 {
		m, err := DecryptCounter(pk, c, shares(t, sks, c, 2, 3))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sum, err := Eval(pk, Circuit{Op: "sum"}, enc(1), enc(0), enc(1), enc(40))
	if err != nil || dec(sum) != 42 {
		t.Fatalf("sum: %v", err)
	}
	add, err := Eval(pk, Circuit{Op: "add"}, enc(7), enc(8))
	if err != nil || dec(add) != 15 {
		t.Fatalf("add: %v", err)
	}
	mul, err := Eval(pk, Circuit{Op: "mul", Factor: 1000}, enc(123))
	if err != nil || dec(mul) != 123000 {
		t.Fatalf("mul: %v", err)
	}
	zero, err := Eval(pk, Circuit{Op: "mul", Factor: 0}, enc(123))
	if err != nil || dec(zero) != 0 {
		t.Fatalf("mul by 0: %v", err)
	}
	// Decoding accepts the identity that mul:0 produces.
	if _, err := DecodeCounter(zero.Encode()); err != nil {
		t.Fatal(err)
	}
	p, _ := Seal(pk, []byte("x"), nil)
	_, err = Eval(pk, Circuit{Op: "sum"}, enc(1), p)
	wantErr(t, err, "unsupported circuit: input 1 is a payload")
	if !errors.Is(err, ErrUnsupportedCircuit) {
		t.Fatal("not ErrUnsupportedCircuit")
	}
	_, err = Eval(pk, Circuit{Op: "mul-ct"}, enc(1), enc(2))
	wantErr(t, err, `unsupported circuit "mul-ct"`)
	_, err = ParseCircuit("compare")
	wantErr(t, err, `unsupported circuit "compare"`)
	_, err = Eval(pk, Circuit{Op: "add"}, enc(1))
	wantErr(t, err, "add takes 2 inputs, got 1")
	other, _ := dealer(t, 3, 2)
	foreign, _ := Encrypt(other, 1)
	_, err = Eval(pk, Circuit{Op: "sum"}, enc(1), foreign)
	wantErr(t, err, "input 1 made for another key")
	for _, s := range []string{"sum", "add", "mul:17"} {
		c, err := ParseCircuit(s)
		if err != nil || c.String() != s {
			t.Fatalf("%s: %v %v", s, c, err)
		}
	}
}

// kyber trap 1: dleq.Proof.Verify takes the challenge from the proof, so a
// proof made without the secret passes it. Our shares recompute it.
func TestForgedDLEQRefused(t *testing.T) {
	suite := kyed.NewBlakeSHA256Ed25519()
	G, H := suite.Point().Base(), suite.Point().Pick(suite.RandomStream())
	x := suite.Scalar().Pick(suite.RandomStream())
	xG := suite.Point().Mul(x, G)
	xH := suite.Point().Pick(suite.RandomStream()) // not x·H
	c, r := suite.Scalar().Pick(suite.RandomStream()), suite.Scalar().Pick(suite.RandomStream())
	forged := &dleq.Proof{C: c, R: r,
		VG: suite.Point().Add(suite.Point().Mul(r, G), suite.Point().Mul(c, xG)),
		VH: suite.Point().Add(suite.Point().Mul(r, H), suite.Point().Mul(c, xH))}
	if err := forged.Verify(suite, G, H, xG, xH); err != nil {
		t.Fatalf("kyber's dleq no longer accepts the forgery (%v); revisit this test", err)
	}

	pk, sks := dealer(t, 5, 3)
	ct, _ := Encrypt(pk, 9)
	ss := shares(t, sks, ct, 1, 2, 3)
	// The same forgery against a share: a wrong D with commitments chosen
	// to satisfy both equations for a challenge of the forger's choosing.
	bad := *ss[1]
	bad.d = new(edwards25519.Point).ScalarBaseMult(group.RandomScalar())
	fc, fz := group.RandomScalar(), group.RandomScalar()
	negC := edwards25519.NewScalar().Negate(fc)
	bad.a = new(edwards25519.Point).VarTimeDoubleScalarBaseMult(negC, pk.verify[1], fz)
	bad.b = new(edwards25519.Point).VarTimeMultiScalarMult([]*edwards25519.Scalar{fz, negC}, []*edwards25519.Point{ct.u, bad.d})
	bad.z = fz
	ss[1] = &bad
	_, err := DecryptCounter(pk, ct, ss)
	wantErr(t, err, "share from keyholder 2: invalid DLEQ proof")
	var se *ShareError
	if !errors.As(err, &se) || se.Keyholder != 2 {
		t.Fatalf("error does not name keyholder 2: %v", err)
	}
}

func TestShareFromWrongKeyRefused(t *testing.T) {
	pk, sks := dealer(t, 5, 3)
	_, otherSks := dealer(t, 5, 3)
	ct, _ := Encrypt(pk, 5)
	ss := shares(t, sks, ct, 1, 2)
	// A share made with keyholder 3's share of another key.
	foreign := partDec(otherSks[2], ct.ID(), ct.u)
	_, err := DecryptCounter(pk, ct, append(ss, foreign))
	wantErr(t, err, "share from keyholder 3: share made for another key")
	// The same, relabelled with this key's ID: the proof gives it away.
	foreign.Key = pk.ID()
	_, err = DecryptCounter(pk, ct, append(ss, foreign))
	wantErr(t, err, "share from keyholder 3: invalid DLEQ proof")
	// PartDec refuses a ciphertext for another key.
	_, err = PartDec(otherSks[0], ct)
	wantErr(t, err, "ciphertext made for another key")
}

// kyber trap 2: edwards25519 UnmarshalBinary accepts a point with a
// small-order component (and HasSmallOrder does not notice a mixed one).
func TestSmallOrderPointsRefused(t *testing.T) {
	suite := kyed.NewBlakeSHA256Ed25519()
	t2 := suite.Point()
	if err := t2.UnmarshalBinary(order2); err != nil {
		t.Fatalf("kyber refuses the order-2 point now (%v); revisit this test", err)
	}
	mixed := suite.Point().Add(suite.Point().Pick(suite.RandomStream()), t2)
	mb, _ := mixed.MarshalBinary()
	if err := suite.Point().UnmarshalBinary(mb); err != nil {
		t.Fatal(err)
	}
	if mixed.(interface{ HasSmallOrder() bool }).HasSmallOrder() {
		t.Fatal("kyber flags a mixed-order point now; revisit this test")
	}
	if _, err := group.DecodePoint(mb, false); !errors.Is(err, group.ErrSmallOrder) {
		t.Fatalf("mixed point: %v", err)
	}
	tor, _ := new(edwards25519.Point).SetBytes(order2)

	pk, sks := dealer(t, 5, 3)
	ct, _ := Encrypt(pk, 5)
	s := shares(t, sks, ct, 4)[0]
	s.d.Add(s.d, tor)
	_, err := DecodeShare(s.Encode())
	wantErr(t, err, "share from keyholder 4: point 0: point outside the prime-order subgroup")

	// A payload whose encapsulation has a torsion component would make
	// x_i·U leak x_i mod 2; it is refused at decoding.
	p, _ := Seal(pk, []byte("hi"), nil)
	p.u.Add(p.u, tor)
	_, err = DecodePayload(p.Encode())
	wantErr(t, err, "payload: U: point outside the prime-order subgroup")
	c2 := *ct
	c2.u = new(edwards25519.Point).Add(ct.u, tor)
	_, err = DecodeCounter(c2.Encode())
	wantErr(t, err, "counter: U: point outside the prime-order subgroup")
	// Non-canonical encoding of a valid point (y + p).
	nc := append([]byte(nil), order2...)
	nc[0] = 0xee // y = p + 1 ≡ 1: the identity, written non-canonically
	if _, err := group.DecodePoint(nc, true); !errors.Is(err, group.ErrNonCanonical) {
		t.Fatalf("non-canonical: %v", err)
	}
}

// A re-randomised encapsulation (U + r'·G, which an attacker could decrypt
// with the shares by subtracting r'·Y) is refused before any share is made.
func TestMauledPayloadRefused(t *testing.T) {
	pk, sks := dealer(t, 5, 3)
	p, _ := Seal(pk, []byte("secret order"), []byte("ctx"))
	maul := *p
	maul.u = new(edwards25519.Point).Add(p.u, new(edwards25519.Point).ScalarBaseMult(group.RandomScalar()))
	round, err := DecodePayload(maul.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_, err = PartDec(sks[0], round)
	wantErr(t, err, "payload: invalid proof of knowledge (altered ciphertext)")
	_, err = PartDecBatch(t.Context(), sks[0], []*Payload{p, round})
	wantErr(t, err, "partdec: payload 1: tfhe: payload: invalid proof of knowledge")
	// Changing the context or the body is caught the same way.
	ctx := *p
	ctx.Context = []byte("other block")
	_, err = PartDec(sks[1], &ctx)
	wantErr(t, err, "invalid proof of knowledge")
	body := *p
	body.body = append([]byte(nil), p.body...)
	body.body[0] ^= 1
	_, err = PartDec(sks[1], &body)
	wantErr(t, err, "invalid proof of knowledge")
	// The original still opens.
	got, err := Open(pk, p, shares(t, sks, p, 1, 3, 5))
	if err != nil || string(got) != "secret order" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestReplayedShareRefused(t *testing.T) {
	pk, sks := dealer(t, 5, 3)
	c1, _ := Encrypt(pk, 1)
	c2, _ := Encrypt(pk, 2)
	s1 := shares(t, sks, c1, 3)[0]
	ss := shares(t, sks, c2, 1, 2)
	_, err := DecryptCounter(pk, c2, append(ss, s1))
	wantErr(t, err, "share from keyholder 3: share is for another ciphertext")
	// Relabelled for c2: the challenge binds the ciphertext, so it fails.
	moved := *s1
	moved.Ciphertext = c2.ID()
	_, err = DecryptCounter(pk, c2, append(ss, &moved))
	wantErr(t, err, "share from keyholder 3: invalid DLEQ proof")
	// Relabelled as another keyholder's: the challenge binds the index.
	other := *ss[0]
	other.Index = 4
	_, err = DecryptCounter(pk, c2, []*Share{&other, ss[1], shares(t, sks, c2, 5)[0]})
	wantErr(t, err, "share from keyholder 4: invalid DLEQ proof")
	_, err = DecryptCounter(pk, c2, append(ss, ss[0]))
	wantErr(t, err, "share from keyholder 1: duplicate share")
	bad := *ss[0]
	bad.Index = 9
	_, err = DecryptCounter(pk, c2, []*Share{&bad, ss[1], moved.clone()})
	wantErr(t, err, "share from keyholder 9: index out of 1..5")
}

func (s *Share) clone() *Share { c := *s; return &c }

// kyber trap 3: share.RecoverCommit interpolates whatever it is given.
func TestRecoverCommitDoesNotValidate(t *testing.T) {
	suite := kyed.NewBlakeSHA256Ed25519()
	poly := share.NewPriPoly(suite, 3, nil, suite.RandomStream())
	pub := poly.Commit(nil)
	ps := pub.Shares(5)
	ps[1].V = suite.Point().Pick(suite.RandomStream())
	got, err := share.RecoverCommit(suite, ps[:3], 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got.Equal(pub.Commit()) {
		t.Fatal("a bogus share did not change the result")
	}
	// Our combine is reached only through FinDec, which verifies first;
	// see TestForgedDLEQRefused.
}

func TestBatchVerification(t *testing.T) {
	pk, sks := dealer(t, 7, 5)
	ct, _ := Encrypt(pk, 77)
	ss := shares(t, sks, ct, 1, 2, 3, 4, 5, 6, 7)
	if err := VerifyShares(pk, ct, ss); err != nil {
		t.Fatal(err)
	}
	for i := range ss {
		if err := VerifyShare(pk, ct, ss[i]); err != nil {
			t.Fatal(err)
		}
	}
	bad := ss[5].clone()
	bad.z = edwards25519.NewScalar().Add(bad.z, group.ScalarFromUint64(1))
	ss[5] = bad
	wantErr(t, VerifyShares(pk, ct, ss), "share from keyholder 6: invalid DLEQ proof")
}

func TestOpenBlock(t *testing.T) {
	pk, sks := dealer(t, 5, 3)
	var ps []*Payload
	for i := 0; i < 20; i++ {
		p, err := Seal(pk, []byte{byte(i), 'x'}, []byte("block 1"))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// A sender can seal a body that is not an AEAD output under its key and
	// still prove knowledge of r: that slot fails alone.
	ps[7] = garbageBody(pk)
	var batches []*ShareBatch
	for _, i := range []int{5, 2, 4} {
		b, err := PartDecBatch(t.Context(), sks[i-1], ps)
		if err != nil {
			t.Fatal(err)
		}
		round, err := DecodeShareBatch(b.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(round.Encode(), b.Encode()) {
			t.Fatal("batch round trip")
		}
		batches = append(batches, round)
	}
	out, errs, err := OpenBlock(pk, ps, batches)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		if i == 7 {
			wantErr(t, errs[i], "payload body does not decrypt")
			continue
		}
		if errs[i] != nil || !bytes.Equal(out[i], []byte{byte(i), 'x'}) {
			t.Fatalf("slot %d: %q %v", i, out[i], errs[i])
		}
	}
	_, _, err = OpenBlock(pk, ps, batches[:2])
	wantErr(t, err, "2 share batches, need 3")
	_, _, err = OpenBlock(pk, ps, append(batches[:2:2], batches[0]))
	wantErr(t, err, "share from keyholder 5: duplicate batch")
	// One tampered share inside a batch is found and blamed.
	batches[1].Shares[3] = batches[1].Shares[4]
	_, _, err = OpenBlock(pk, ps, batches)
	wantErr(t, err, "share from keyholder 2: share is for another ciphertext")
	batches[1].Shares[3] = batches[1].Shares[3].clone()
	batches[1].Shares[3].Ciphertext = ps[3].ID()
	_, _, err = OpenBlock(pk, ps, batches)
	wantErr(t, err, "share from keyholder 2: invalid DLEQ proof")
}

// garbageBody seals random bytes as a body with a valid proof.
func garbageBody(pk *PublicKey) *Payload {
	r := group.RandomScalar()
	p := &Payload{key: pk.ID(), body: bytes.Repeat([]byte{7}, 40)}
	p.u = new(edwards25519.Point).ScalarBaseMult(r)
	s := group.RandomScalar()
	p.a = new(edwards25519.Point).ScalarBaseMult(s)
	p.z = edwards25519.NewScalar().MultiplyAdd(p.challenge(), r, s)
	return p
}

func TestEncodings(t *testing.T) {
	pk, sks := dealer(t, 4, 3)
	pk2, err := DecodePublicKey(pk.Encode())
	if err != nil || pk2.ID() != pk.ID() || pk2.Origin != OriginTrustedDealer {
		t.Fatalf("public key: %v", err)
	}
	ks, err := DecodeKeyShare(sks[2].Encode())
	if err != nil || ks.Index != 3 || !bytes.Equal(ks.Encode(), sks[2].Encode()) {
		t.Fatalf("key share: %v", err)
	}
	// A key share whose secret does not match its public key.
	forged := sks[2].Encode()
	forged[6] ^= 1
	_, err = DecodeKeyShare(forged)
	wantErr(t, err, "key share: secret of keyholder 3 does not match the public key")
	c, _ := Encrypt(pk, 3)
	p, _ := Seal(pk, []byte("abc"), []byte("ctx"))
	s := shares(t, sks, c, 1)[0]
	if len(c.Encode()) != 98 || len(s.Encode()) != 198 {
		t.Fatalf("sizes %d %d", len(c.Encode()), len(s.Encode()))
	}
	for name, b := range map[string][]byte{"counter": c.Encode(), "payload": p.Encode()} {
		ct, err := DecodeCiphertext(b)
		if err != nil || !bytes.Equal(ct.Encode(), b) || ct.ID() != sha256.Sum256(b) {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = DecodeCiphertext(append(b, 0))
		wantErr(t, err, "1 trailing bytes")
		_, err = DecodeCiphertext(b[:len(b)-1])
		wantErr(t, err, "truncated")
	}
	s2, err := DecodeShare(s.Encode())
	if err != nil || !bytes.Equal(s2.Encode(), s.Encode()) {
		t.Fatalf("share: %v", err)
	}
	_, err = DecodeShare(c.Encode())
	wantErr(t, err, "not a decryption share (type tag 0x03)")
	v := c.Encode()
	v[1] = 2
	_, err = DecodeCounter(v)
	wantErr(t, err, "unknown counter ciphertext version 2")
	_, err = DecodeCiphertext([]byte{0x09})
	wantErr(t, err, "unknown type tag 0x09")
}

func FuzzDecodeCiphertext(f *testing.F) {
	pk, _ := dealer(f, 3, 2)
	c, _ := Encrypt(pk, 3)
	p, _ := Seal(pk, []byte("abc"), []byte("ctx"))
	f.Add(c.Encode())
	f.Add(p.Encode())
	f.Add([]byte{tagPayload, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ct, err := DecodeCiphertext(b)
		if err != nil {
			return
		}
		if !bytes.Equal(ct.Encode(), b) {
			t.Fatal("decode then encode is not the identity")
		}
		if p, ok := ct.(*Payload); ok {
			_ = p.Check(pk)
		}
	})
}

func FuzzDecodeShare(f *testing.F) {
	pk, sks := dealer(f, 3, 2)
	c, _ := Encrypt(pk, 3)
	s, _ := PartDec(sks[0], c)
	b, _ := PartDecBatch(f.Context(), sks[1], nil)
	f.Add(s.Encode())
	f.Add(b.Encode())
	f.Fuzz(func(t *testing.T, in []byte) {
		if s, err := DecodeShare(in); err == nil {
			if !bytes.Equal(s.Encode(), in) {
				t.Fatal("share: decode then encode is not the identity")
			}
			_ = VerifyShare(pk, c, s)
		}
		if b, err := DecodeShareBatch(in); err == nil && !bytes.Equal(b.Encode(), in) {
			t.Fatal("batch: decode then encode is not the identity")
		}
	})
}

func FuzzDecodeKeyShare(f *testing.F) {
	pk, sks := dealer(f, 3, 2)
	f.Add(sks[0].Encode())
	f.Add(pk.Encode())
	f.Fuzz(func(t *testing.T, in []byte) {
		if ks, err := DecodeKeyShare(in); err == nil && !bytes.Equal(ks.Encode(), in) {
			t.Fatal("key share: decode then encode is not the identity")
		}
		if k, err := DecodePublicKey(in); err == nil && !bytes.Equal(k.Encode(), in) {
			t.Fatal("public key: decode then encode is not the identity")
		}
	})
}

// TestCheckTranscript: a key and its DKG's transcript agree; another key,
// and a trusted dealer's, are refused.
func TestCheckTranscript(t *testing.T) {
	pk, _, res, err := SetupDKG(t.Context(), dkg.Config{N: 4, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	o, err := CheckTranscript(pk, res.Transcript)
	if err != nil || len(o.Holders) != 4 {
		t.Fatalf("own transcript: %v", err)
	}
	other, _, _, err := SetupDKG(t.Context(), dkg.Config{N: 4, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckTranscript(other, res.Transcript); err == nil || !strings.Contains(err.Error(), "tfhe: the transcript (hash ") ||
		!strings.Contains(err.Error(), ", not this key") {
		t.Fatalf("another key: %v", err)
	}
	dealt, _ := dealer(t, 4, 3)
	if _, err := CheckTranscript(dealt, res.Transcript); err == nil || err.Error() != "tfhe: a trusted dealer's key has no DKG transcript" {
		t.Fatalf("trusted dealer: %v", err)
	}
}
