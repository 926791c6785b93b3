// Package wallet is a shielded-pool wallet: a spending key, the address it
// receives on, note encryption to an address, a synced view of the
// instance's commitment tree with the witnesses of the wallet's own notes,
// and the builders of shield, transfer and unshield transactions.
//
// Formats: docs/formats/shielded-pool.md.
package wallet

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/internal/enc"
)

// Keys are a wallet's secrets: the spending key and the X25519 key that
// decrypts notes sent to its address (derived from the spending key, so
// the spending key alone restores a wallet).
type Keys struct {
	Spend note.SpendingKey
	// dec and pub are the X25519 decryption key and its public key.
	dec, pub x25519.Key
}

// ivkInfo labels the derivation of the decryption key.
const ivkInfo = "fractal.shielded.decryption-key.v1"

// NewKeys derives the wallet keys of sk.
func NewKeys(sk note.SpendingKey) (*Keys, error) {
	seed, err := hkdf.Key(sha256.New, sk.Bytes(), nil, ivkInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("wallet: keys: %w", err)
	}
	dec, err := ecdh.X25519().NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("wallet: keys: %w", err)
	}
	k := &Keys{Spend: sk}
	copy(k.dec[:], dec.Bytes())
	copy(k.pub[:], dec.PublicKey().Bytes())
	return k, nil
}

// GenerateKeys draws a fresh spending key.
func GenerateKeys(rand io.Reader) (*Keys, error) {
	sk, err := note.NewSpendingKey(rand)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	return NewKeys(sk)
}

// Address returns the address the wallet receives on.
func (k *Keys) Address() Address {
	a := Address{Owner: k.Spend.Owner()}
	a.Enc = k.pub
	return a
}

// Address is where shielded notes are sent: the owner (spend part) that a
// note commits to, and the X25519 key its ciphertext is encrypted to.
type Address struct {
	Owner fr.Element
	Enc   [32]byte
}

const addressVersion = 1

// String is standard base64 of u8 version=1 | owner (32) | X25519 key (32).
func (a Address) String() string {
	w := enc.NewWriter(65)
	w.U8(addressVersion)
	o := a.Owner.Bytes()
	w.Fixed(o[:])
	w.Fixed(a.Enc[:])
	return base64.StdEncoding.EncodeToString(w.Bytes())
}

// ParseAddress reads String's form, refusing another version, a
// non-canonical owner and an X25519 key of low order.
func ParseAddress(s string) (Address, error) {
	// base64's decoder skips CR and LF even when strict: an address with a
	// line break inside would name the same one in two spellings.
	if strings.ContainsAny(s, "\r\n") {
		return Address{}, errors.New("wallet: address: a line break inside")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return Address{}, fmt.Errorf("wallet: address: %w", err)
	}
	r := enc.NewReader(raw)
	var a Address
	if v := r.U8(); r.Err() == nil && v != addressVersion {
		r.Fail(fmt.Errorf("version %d, want %d", v, addressVersion))
	}
	owner := r.Fixed(32)
	r.Into(a.Enc[:])
	if err := r.Finish(); err != nil {
		return Address{}, fmt.Errorf("wallet: address: %w", err)
	}
	if a.Owner, err = note.ParseElement(owner); err != nil {
		return Address{}, fmt.Errorf("wallet: address: owner: %w", err)
	}
	if err := checkEncKey(a.Enc); err != nil {
		return Address{}, fmt.Errorf("wallet: address: %w", err)
	}
	return a, nil
}

// checkEncKey refuses an X25519 key whose shared secrets are all zero (a
// low-order point), so no note is sent where anyone could read it.
func checkEncKey(k [32]byte) error {
	pub, err := ecdh.X25519().NewPublicKey(k[:])
	if err != nil {
		return err
	}
	probe, err := ecdh.X25519().NewPrivateKey(make([]byte, 32))
	if err != nil {
		return err
	}
	if _, err := probe.ECDH(pub); err != nil {
		return fmt.Errorf("encryption key is a low-order point")
	}
	return nil
}
