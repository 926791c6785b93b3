package wallet_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
)

func newKeys(t testing.TB) *wallet.Keys {
	t.Helper()
	k, err := wallet.GenerateKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func noteFor(t testing.TB, owner fr.Element, value uint64) note.Note {
	t.Helper()
	n := note.Note{Owner: owner, Value: value, Asset: note.NewAsset([]byte("x"))}
	var err error
	if n.Rho, err = note.RandomElement(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if n.Rcm, err = note.RandomElement(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return n
}

// encrypt encrypts ns[i] to to[i] in a bundle of the given version.
func encrypt(t testing.TB, version byte, to []wallet.Address, ns ...note.Note) *shielded.Ciphertexts {
	t.Helper()
	c, err := wallet.Encrypt(rand.Reader, version, to, ns)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestNoteEncryption: in either version, a note opens with its wallet's
// key at its own index and commitment only; every tampered part (the
// ephemeral key, the view tag, the sealed note) and every misplacement
// (another wallet, another commitment, another index) is refused.
func TestNoteEncryption(t *testing.T) {
	for _, v := range []byte{shielded.BundleV1, shielded.BundleV2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { testNoteEncryption(t, v) })
	}
}

func testNoteEncryption(t *testing.T, version byte) {
	a, b := newKeys(t), newKeys(t)
	n, m := noteFor(t, a.Spend.Owner(), 42), noteFor(t, a.Spend.Owner(), 7)
	to := []wallet.Address{a.Address(), a.Address()}
	ct := encrypt(t, version, to, n, m)
	for i, want := range []note.Note{n, m} {
		if got, err := a.Decrypt(ct, i, want.Commitment()); err != nil || got != want {
			t.Fatalf("decrypt output %d: %v", i, err)
		}
	}
	if again := encrypt(t, version, to, n, m); reflect.DeepEqual(again, ct) {
		t.Fatal("two encryptions of the same notes are equal")
	}
	tampered := func(f func(c *shielded.Ciphertexts)) *shielded.Ciphertexts {
		c := *ct
		c.EPKs, c.Tags, c.Sealed = slices.Clone(c.EPKs), slices.Clone(c.Tags), slices.Clone(c.Sealed)
		f(&c)
		return &c
	}
	stranger := noteFor(t, b.Spend.Owner(), 1)
	ctStranger := encrypt(t, version, to, stranger, m)
	type refusal struct {
		name string
		k    *wallet.Keys
		ct   *shielded.Ciphertexts
		i    int
		cm   fr.Element
		want string
	}
	cases := []refusal{
		{"another wallet", b, ct, 0, n.Commitment(), "not for this wallet"},
		{"flipped byte of the sealed note", a, tampered(func(c *shielded.Ciphertexts) { c.Sealed[0][100] ^= 1 }), 0, n.Commitment(), "not for this wallet"},
		{"flipped ephemeral key", a, tampered(func(c *shielded.Ciphertexts) { c.EPKs[0][5] ^= 1 }), 0, n.Commitment(), "not for this wallet"},
		{"moved to another commitment", a, ct, 0, m.Commitment(), "not for this wallet"},
		{"sealed notes swapped", a, tampered(func(c *shielded.Ciphertexts) { c.Sealed[0], c.Sealed[1] = c.Sealed[1], c.Sealed[0] }), 0, m.Commitment(), "not for this wallet"},
		{"note owned by another key", a, ctStranger, 0, stranger.Commitment(), "owned by another key"},
	}
	if version == shielded.BundleV2 {
		cases = append(cases, refusal{"changed view tag", a, tampered(func(c *shielded.Ciphertexts) { c.Tags[1] ^= 1 }), 1, m.Commitment(), "not for this wallet"})
	}
	cases = append(cases, refusal{"no such output", a, ct, 2, n.Commitment(), "no output 2 in ciphertexts of 2"},
		refusal{"ciphertexts of another shape", a, tampered(func(c *shielded.Ciphertexts) { c.Sealed = c.Sealed[:1] }), 0, n.Commitment(), fmt.Sprintf("version-%d ciphertexts of 1 outputs", version)})
	for _, c := range cases {
		if _, err := c.k.Decrypt(c.ct, c.i, c.cm); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestV2OutputsToTwoWallets: a version-2 bundle has one ephemeral key for
// outputs to two wallets; each wallet opens its own output and not the
// other's, and two outputs to one wallet of the same note are sealed
// differently (the index in the key derivation: no key and nonce used twice).
func TestV2OutputsToTwoWallets(t *testing.T) {
	a, b := newKeys(t), newKeys(t)
	na, nb := noteFor(t, a.Spend.Owner(), 5), noteFor(t, b.Spend.Owner(), 9)
	ct := encrypt(t, shielded.BundleV2, []wallet.Address{a.Address(), b.Address()}, na, nb)
	if len(ct.EPKs) != 1 || len(ct.Tags) != 2 {
		t.Fatalf("%d ephemeral keys and %d view tags, want 1 and 2", len(ct.EPKs), len(ct.Tags))
	}
	for _, c := range []struct {
		k     *wallet.Keys
		mine  int
		note  note.Note
		other note.Note
	}{{a, 0, na, nb}, {b, 1, nb, na}} {
		if got, err := c.k.Decrypt(ct, c.mine, c.note.Commitment()); err != nil || got != c.note {
			t.Fatalf("output %d to its wallet: %v", c.mine, err)
		}
		if _, err := c.k.Decrypt(ct, 1-c.mine, c.other.Commitment()); err == nil || !strings.Contains(err.Error(), "not for this wallet") {
			t.Fatalf("output %d opened by the other wallet: %v", 1-c.mine, err)
		}
	}
	same := encrypt(t, shielded.BundleV2, []wallet.Address{a.Address(), a.Address()}, na, na)
	if same.Sealed[0] == same.Sealed[1] {
		t.Fatal("one note to one wallet at two indices sealed alike: a key and nonce used twice")
	}
}

func TestAddress(t *testing.T) {
	a := newKeys(t).Address()
	s := a.String()
	got, err := wallet.ParseAddress(s)
	if err != nil || got != a || len(s) != 88 {
		t.Fatalf("round trip %q: %v", s, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(s)
	enc := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	v2 := bytes.Clone(raw)
	v2[0] = 2
	big := bytes.Clone(raw)
	copy(big[1:33], bytes.Repeat([]byte{0xff}, 32))
	zeroKey := bytes.Clone(raw)
	clear(zeroKey[33:])
	for _, c := range []struct{ s, want string }{
		{"not base64!", "illegal base64"},
		{enc(v2), "version 2, want 1"},
		{enc(raw[:64]), "wallet: address:"},
		{enc(append(bytes.Clone(raw), 0)), "wallet: address:"},
		{enc(big), "owner"},
		{enc(zeroKey), "low-order"},
		{enc(raw)[:40] + "\n" + enc(raw)[40:], "a line break inside"},
	} {
		if _, err := wallet.ParseAddress(c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q: %v, want %q", c.s, err, c.want)
		}
	}
}

func FuzzParseAddress(f *testing.F) {
	f.Add(newKeys(f).Address().String())
	f.Add("AQ==")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := wallet.ParseAddress(s)
		if err == nil && a.String() != s {
			t.Fatalf("accepted non-canonical %q", s)
		}
	})
}

// TestWalletFolder: create, reopen with the same keys and state, refuse a
// second create and a damaged state.
func TestWalletFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	w, err := wallet.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.Create(dir); err == nil || !strings.Contains(err.Error(), "already holds a wallet") {
		t.Fatalf("second create: %v", err)
	}
	again, err := wallet.Open(dir)
	if err != nil || again.Keys.Address() != w.Keys.Address() {
		t.Fatalf("reopen: %v", err)
	}
	st, err := os.ReadFile(filepath.Join(dir, "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range st {
		var s wallet.State
		if err := s.UnmarshalBinary(st[:i]); err == nil {
			t.Fatalf("accepted a state cut at %d bytes", i)
		}
	}
	os.WriteFile(filepath.Join(dir, "state.bin"), append(st, 0), 0o600)
	if _, err := wallet.Open(dir); err == nil || !strings.Contains(err.Error(), "wallet: state:") {
		t.Fatalf("damaged state: %v", err)
	}
	if _, err := wallet.Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no wallet") {
		t.Fatalf("empty folder: %v", err)
	}
}

func FuzzStateUnmarshal(f *testing.F) {
	w, err := wallet.Create(filepath.Join(f.TempDir(), "w"))
	if err != nil {
		f.Fatal(err)
	}
	seed, err := w.State.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s wallet.State
		if s.UnmarshalBinary(b) != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted a non-canonical state")
		}
	})
}

// FuzzDecrypt: the ciphertexts a node sends are attacker-written; whatever
// their version and bytes, Decrypt of an output never panics, and a note it
// returns opens the output's commitment and is the wallet's. The seeds are
// a real note of the wallet in each version.
func FuzzDecrypt(f *testing.F) {
	sk, err := note.ParseSpendingKey(append(make([]byte, 31), 7))
	if err != nil {
		f.Fatal(err)
	}
	k, err := wallet.NewKeys(sk)
	if err != nil {
		f.Fatal(err)
	}
	n := noteFor(f, k.Spend.Owner(), 3)
	c0 := n.Commitment()
	cm := c0.Bytes()
	for _, v := range []byte{shielded.BundleV1, shielded.BundleV2} {
		c := encrypt(f, v, []wallet.Address{k.Address()}, n)
		f.Add(v, c.EPKs[0][:], c.Tags, c.Sealed[0][:], cm[:])
	}
	f.Fuzz(func(t *testing.T, version byte, epk, tags, sealed, cmb []byte) {
		c := shielded.Ciphertexts{Version: version, EPKs: [][32]byte{{}}, Tags: tags, Sealed: make([][shielded.SealedSize]byte, 1)}
		copy(c.EPKs[0][:], epk)
		copy(c.Sealed[0][:], sealed)
		var cm fr.Element
		cm.SetBytes(cmb)
		got, err := k.Decrypt(&c, 0, cm)
		if err == nil && (got.Commitment() != cm || got.Owner != k.Spend.Owner()) {
			t.Fatalf("opened a note that is not the wallet's output: %+v", got)
		}
	})
}
