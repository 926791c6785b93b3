package wallet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/shielded"
)

// TestSharedSecretIsECDH: the trial decryptions' X25519 (sharedSecret)
// gives crypto/ecdh's secret for every ephemeral key a ciphertext can carry
// (random ones, ones with the top bit set, non-canonical ones at or above
// 2^255-19) and refuses exactly those crypto/ecdh refuses (low order).
func TestSharedSecretIsECDH(t *testing.T) {
	k := newTestKeys(t)
	priv, err := ecdh.X25519().NewPrivateKey(k.dec[:])
	if err != nil {
		t.Fatal(err)
	}
	var epks [][]byte
	for range 200 {
		e := make([]byte, 32)
		rand.Read(e)
		epks = append(epks, e)
	}
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p (= 0)
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1 (= 1)
		"f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+3
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // 2^255-1
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // top bit set
		"0900000000000000000000000000000000000000000000000000000000000080", // base point, top bit set
	} {
		e, _ := hex.DecodeString(h)
		epks = append(epks, e)
	}
	refused := 0
	for _, e := range epks {
		pub, err := ecdh.X25519().NewPublicKey(e)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := priv.ECDH(pub)
		got, ok := k.sharedSecret(e)
		if ok != (wantErr == nil) {
			t.Fatalf("epk %x: sharedSecret ok=%v, crypto/ecdh error %v", e, ok, wantErr)
		}
		if !ok {
			refused++
			continue
		}
		if !bytes.Equal(got[:], want) {
			t.Fatalf("epk %x: secret %x, crypto/ecdh %x", e, got, want)
		}
	}
	if refused < 5 {
		t.Fatalf("only %d low-order keys refused", refused)
	}
}

func newTestKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := GenerateKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// BenchmarkTrialDecrypt: what a sync does with the outputs of another
// wallet, per output of a version-1 bundle and per version-2 transaction
// (two outputs, one ephemeral key), and the parts: the X25519, the
// extraction of the outputs' key, a view tag, and the AEAD's key schedule
// and failing tag check that the view tag spares 255 outputs in 256.
func BenchmarkTrialDecrypt(b *testing.B) {
	k, other := newTestKeys(b), newTestKeys(b)
	var cm fr.Element
	foreign := func(version byte) *shielded.Ciphertexts {
		n := note.Note{Owner: other.Spend.Owner(), Value: 1}
		c, err := Encrypt(rand.Reader, version, []Address{other.Address(), other.Address()}, []note.Note{n, n})
		if err != nil {
			b.Fatal(err)
		}
		return &c
	}
	v1, v2 := foreign(shielded.BundleV1), foreign(shielded.BundleV2)
	b.Run("v1-output", func(b *testing.B) {
		for range b.N {
			if _, err := k.Decrypt(v1, 0, cm); err != errNotMine {
				b.Fatal(err)
			}
		}
	})
	b.Run("v2-transaction", func(b *testing.B) {
		for range b.N {
			var t trial
			for i := range v2.Sealed {
				if _, err := k.open(&t, v2, i, cm); err != errNotMine {
					b.Fatal(err)
				}
			}
		}
	})
	epk := v2.EPKs[0][:]
	b.Run("x25519", func(b *testing.B) {
		for range b.N {
			k.sharedSecret(epk)
		}
	})
	b.Run("crypto-ecdh", func(b *testing.B) {
		priv, _ := ecdh.X25519().NewPrivateKey(k.dec[:])
		pub, _ := ecdh.X25519().NewPublicKey(epk)
		for range b.N {
			priv.ECDH(pub)
		}
	})
	secret, _ := k.sharedSecret(epk)
	b.Run("prk", func(b *testing.B) {
		for range b.N {
			prkOf(secret[:], epk, k.pub[:])
		}
	})
	prk, _ := prkOf(secret[:], epk, k.pub[:])
	b.Run("view-tag", func(b *testing.B) {
		for range b.N {
			viewTag(prk, 1)
		}
	})
	b.Run("kdf-aead", func(b *testing.B) {
		for range b.N {
			aead, nonce, _ := noteAEAD(prk, shielded.BundleV2, 1)
			if _, err := aead.Open(nil, nonce, v2.Sealed[1][:], nil); err == nil {
				b.Fatal("opened")
			}
		}
	})
}
