package wallet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
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

// BenchmarkTrialDecrypt: one output of another wallet tried with this
// wallet's key (what a sync does 32 times per block of 16 shielded
// transactions), and its parts.
func BenchmarkTrialDecrypt(b *testing.B) {
	k := newTestKeys(b)
	var ct Ciphertext
	rand.Read(ct[:])
	var cm fr.Element
	b.Run("whole", func(b *testing.B) {
		for range b.N {
			if _, err := k.Decrypt(ct, cm); err != errNotMine {
				b.Fatal(err)
			}
		}
	})
	b.Run("x25519", func(b *testing.B) {
		for range b.N {
			k.sharedSecret(ct[:32])
		}
	})
	b.Run("crypto-ecdh", func(b *testing.B) {
		priv, _ := ecdh.X25519().NewPrivateKey(k.dec[:])
		pub, _ := ecdh.X25519().NewPublicKey(ct[:32])
		for range b.N {
			priv.ECDH(pub)
		}
	})
	b.Run("kdf-aead", func(b *testing.B) {
		secret, _ := k.sharedSecret(ct[:32])
		for range b.N {
			aead, nonce, _ := noteAEAD(secret[:], ct[:32], k.pub[:])
			if _, err := aead.Open(nil, nonce, ct[32:], nil); err == nil {
				b.Fatal("opened")
			}
		}
	})
}
