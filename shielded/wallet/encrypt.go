package wallet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/shielded"
)

// The labels of note encryption's key derivations: version 1's key and
// nonce; version 2's view tag, and key and nonce, each followed by the
// output's index (decision 168).
const (
	noteInfo   = "fractal.shielded.note-encryption.v1"
	noteInfoV2 = "fractal.shielded.note-encryption.v2"
	tagInfoV2  = "fractal.shielded.view-tag.v2"
)

// indexed is a label followed by an output's index as one byte (a bundle
// has two outputs, a compact transaction at most 16).
func indexed(label string, i int) string { return label + string([]byte{byte(i)}) }

// prkOf is HKDF-Extract(secret, salt = epk || recipient key): the key that
// every output encrypted with secret derives its own keys from.
func prkOf(secret, epk, pk []byte) ([]byte, error) {
	return hkdf.Extract(sha256.New, secret, append(append(make([]byte, 0, 64), epk...), pk...))
}

// viewTag is the view tag of output i of a version-2 bundle: the first
// byte of HKDF-Expand(prk, tagInfoV2 || i).
func viewTag(prk []byte, i int) (byte, error) {
	t, err := hkdf.Expand(sha256.New, prk, indexed(tagInfoV2, i), 1)
	if err != nil {
		return 0, err
	}
	return t[0], nil
}

// noteAEAD derives the AEAD and nonce of output i from prk:
// HKDF-Expand(prk, info) gives a 32-byte key and a 12-byte nonce; info is
// noteInfo (version 1, whose outputs each have their own ephemeral key) or
// noteInfoV2 followed by the index (version 2), so two outputs under one
// ephemeral key, even to one recipient, never share a key and nonce.
func noteAEAD(prk []byte, version byte, i int) (cipher.AEAD, []byte, error) {
	info := noteInfo
	if version == shielded.BundleV2 {
		info = indexed(noteInfoV2, i)
	}
	okm, err := hkdf.Expand(sha256.New, prk, info, 32+12)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(okm[:32])
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, okm[32:], nil
}

// Encrypt seals the output notes ns, ns[i] to the address to[i], in a
// bundle of the given version: version 1 draws an ephemeral key per output,
// version 2 one for them all (the secret of each output is still its own
// recipient's: X25519 of the one ephemeral secret and that recipient's
// key). Each note's commitment is its associated data, so a ciphertext
// cannot be moved to another output.
func Encrypt(rand io.Reader, version byte, to []Address, ns []note.Note) (shielded.Ciphertexts, error) {
	c := shielded.Ciphertexts{Version: version, Sealed: make([][shielded.SealedSize]byte, len(ns))}
	if len(to) != len(ns) {
		return c, fmt.Errorf("wallet: encrypt: %d addresses for %d notes", len(to), len(ns))
	}
	var esk *ecdh.PrivateKey
	for i := range ns {
		if i == 0 || version == shielded.BundleV1 {
			var err error
			if esk, err = ecdh.X25519().GenerateKey(rand); err != nil {
				return c, fmt.Errorf("wallet: encrypt: %w", err)
			}
			c.EPKs = append(c.EPKs, [32]byte(esk.PublicKey().Bytes()))
		}
		if err := seal(&c, i, esk, to[i], ns[i]); err != nil {
			return c, fmt.Errorf("wallet: encrypt: %w", err)
		}
	}
	return c, c.Check(len(ns))
}

// seal encrypts n as output i of c with the ephemeral secret esk, whose
// public key c holds already.
func seal(c *shielded.Ciphertexts, i int, esk *ecdh.PrivateKey, to Address, n note.Note) error {
	pk, err := ecdh.X25519().NewPublicKey(to.Enc[:])
	if err != nil {
		return err
	}
	secret, err := esk.ECDH(pk)
	if err != nil {
		return err
	}
	prk, err := prkOf(secret, c.EPK(i)[:], to.Enc[:])
	if err != nil {
		return err
	}
	if c.Version == shielded.BundleV2 {
		tag, err := viewTag(prk, i)
		if err != nil {
			return err
		}
		c.Tags = append(c.Tags, tag)
	}
	aead, nonce, err := noteAEAD(prk, c.Version, i)
	if err != nil {
		return err
	}
	plain, err := n.MarshalBinary()
	if err != nil {
		return err
	}
	cm := n.Commitment()
	cmb := cm.Bytes()
	aead.Seal(c.Sealed[i][:0], nonce, plain, cmb[:])
	return nil
}

// sharedSecret is the X25519 secret of the wallet's key and a note's
// ephemeral key epk, as crypto/ecdh computes it (a test checks that the two
// agree), false for a low-order epk. A sync computes one per ephemeral key,
// so this is most of its cost: circl's ladder (BMI2/ADX assembly on amd64)
// takes about a third less CPU than crypto/ecdh's (decision 156).
func (k *Keys) sharedSecret(epk []byte) (x25519.Key, bool) {
	var pub, secret x25519.Key
	copy(pub[:], epk)
	ok := x25519.Shared(&secret, &k.dec, &pub)
	return secret, ok
}

// errNotMine reports a ciphertext this wallet cannot open.
var errNotMine = errors.New("wallet: note is not for this wallet")

// trial remembers the key derived from the last ephemeral key a wallet
// tried, so the outputs of a version-2 bundle, which share one, cost one
// X25519 between them.
type trial struct {
	epk  [32]byte
	done bool   // epk's prk is computed
	prk  []byte // nil: epk is of low order
}

// prkFor returns the prk of the wallet's secret with epk, nil for a low-order
// epk.
func (t *trial) prkFor(k *Keys, epk *[32]byte) []byte {
	if t.done && t.epk == *epk {
		return t.prk
	}
	t.epk, t.done, t.prk = *epk, true, nil
	if secret, ok := k.sharedSecret(epk[:]); ok {
		t.prk, _ = prkOf(secret[:], epk[:], k.pub[:]) // SHA-256 takes any key: no error
	}
	return t.prk
}

// Decrypt opens output i of c, whose commitment is cm, with the wallet's
// key. It refuses a ciphertext for another key, a tampered one, and a note
// that does not open cm or that the wallet cannot spend.
func (k *Keys) Decrypt(c *shielded.Ciphertexts, i int, cm fr.Element) (note.Note, error) {
	if err := c.Check(len(c.Sealed)); err != nil {
		return note.Note{}, fmt.Errorf("wallet: %w", err)
	}
	if i < 0 || i >= len(c.Sealed) {
		return note.Note{}, fmt.Errorf("wallet: no output %d in ciphertexts of %d", i, len(c.Sealed))
	}
	return k.open(&trial{}, c, i, cm)
}

// open is Decrypt of a checked c, reusing t's secret when output i's
// ephemeral key is the last one t tried.
func (k *Keys) open(t *trial, c *shielded.Ciphertexts, i int, cm fr.Element) (note.Note, error) {
	var n note.Note
	prk := t.prkFor(k, c.EPK(i))
	if prk == nil {
		return n, errNotMine
	}
	if c.Version == shielded.BundleV2 {
		// The view tag turns away 255 in 256 outputs of other wallets
		// before the AEAD's key schedule and tag check.
		if tag, err := viewTag(prk, i); err != nil || tag != c.Tags[i] {
			return n, errNotMine
		}
	}
	aead, nonce, err := noteAEAD(prk, c.Version, i)
	if err != nil {
		return n, err
	}
	cmb := cm.Bytes()
	plain, err := aead.Open(nil, nonce, c.Sealed[i][:], cmb[:])
	if err != nil {
		return n, errNotMine
	}
	if err := n.UnmarshalBinary(plain); err != nil {
		return n, fmt.Errorf("wallet: decrypted note: %w", err)
	}
	if n.Commitment() != cm {
		return n, errors.New("wallet: decrypted note does not open its commitment")
	}
	if n.Owner != k.Spend.Owner() {
		return n, errors.New("wallet: decrypted note is owned by another key")
	}
	return n, nil
}
