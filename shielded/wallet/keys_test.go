package wallet_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/note"
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

func TestNoteEncryption(t *testing.T) {
	a, b := newKeys(t), newKeys(t)
	n := noteFor(t, a.Spend.Owner(), 42)
	ct, err := wallet.Encrypt(rand.Reader, a.Address(), n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Decrypt(ct, n.Commitment())
	if err != nil || got != n {
		t.Fatalf("decrypt: %v", err)
	}
	ct2, _ := wallet.Encrypt(rand.Reader, a.Address(), n)
	if ct2 == ct {
		t.Fatal("two encryptions of one note are equal")
	}
	flipped := ct
	flipped[100] ^= 1
	other := noteFor(t, a.Spend.Owner(), 42)
	stranger := noteFor(t, b.Spend.Owner(), 1)
	ctStranger, _ := wallet.Encrypt(rand.Reader, a.Address(), stranger)
	for _, c := range []struct {
		name string
		k    *wallet.Keys
		ct   wallet.Ciphertext
		cm   fr.Element
		want string
	}{
		{"another wallet", b, ct, n.Commitment(), "not for this wallet"},
		{"flipped byte", a, flipped, n.Commitment(), "not for this wallet"},
		{"moved to another output", a, ct, other.Commitment(), "not for this wallet"},
		{"note owned by another key", a, ctStranger, stranger.Commitment(), "owned by another key"},
	} {
		if _, err := c.k.Decrypt(c.ct, c.cm); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want %q", c.name, err, c.want)
		}
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
