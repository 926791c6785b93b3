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

// noteInfo labels the key derivation of note encryption.
const noteInfo = "fractal.shielded.note-encryption.v1"

// Ciphertext is one encrypted output note: ephemeral X25519 key (32) |
// AES-256-GCM of the note's 128-byte encoding (144).
type Ciphertext = [shielded.CiphertextSize]byte

// noteAEAD derives the AEAD and nonce of one note from the ECDH secret:
// HKDF-SHA256(secret, salt = epk || recipient key, info) gives a 32-byte key
// and a 12-byte nonce. Every note has a fresh ephemeral key, so a key and
// nonce are never used twice.
func noteAEAD(secret, epk, pk []byte) (cipher.AEAD, []byte, error) {
	okm, err := hkdf.Key(sha256.New, secret, append(append([]byte{}, epk...), pk...), noteInfo, 32+12)
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

// Encrypt seals n to the address's encryption key, authenticating the
// note's commitment as associated data, so a ciphertext cannot be moved to
// another output.
func Encrypt(rand io.Reader, to Address, n note.Note) (Ciphertext, error) {
	var ct Ciphertext
	pk, err := ecdh.X25519().NewPublicKey(to.Enc[:])
	if err != nil {
		return ct, fmt.Errorf("wallet: encrypt: %w", err)
	}
	esk, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return ct, fmt.Errorf("wallet: encrypt: %w", err)
	}
	secret, err := esk.ECDH(pk)
	if err != nil {
		return ct, fmt.Errorf("wallet: encrypt: %w", err)
	}
	epk := esk.PublicKey().Bytes()
	aead, nonce, err := noteAEAD(secret, epk, to.Enc[:])
	if err != nil {
		return ct, fmt.Errorf("wallet: encrypt: %w", err)
	}
	plain, err := n.MarshalBinary()
	if err != nil {
		return ct, fmt.Errorf("wallet: encrypt: %w", err)
	}
	c := n.Commitment()
	cm := c.Bytes()
	copy(ct[:32], epk)
	aead.Seal(ct[32:32], nonce, plain, cm[:])
	return ct, nil
}

// sharedSecret is the X25519 secret of the wallet's key and a note's
// ephemeral key epk, as crypto/ecdh computes it (a test checks that the two
// agree), false for a low-order epk. A sync tries every output of every
// block, so this is most of its cost: circl's ladder (BMI2/ADX assembly
// on amd64) takes about a third less CPU than crypto/ecdh's (decision 156).
func (k *Keys) sharedSecret(epk []byte) (x25519.Key, bool) {
	var pub, secret x25519.Key
	copy(pub[:], epk)
	ok := x25519.Shared(&secret, &k.dec, &pub)
	return secret, ok
}

// errNotMine reports a ciphertext this wallet cannot open.
var errNotMine = errors.New("wallet: note is not for this wallet")

// Decrypt opens a ciphertext sent to this wallet for the output whose
// commitment is cm. It refuses a ciphertext for another key, a tampered one,
// and a note that does not open cm or that the wallet cannot spend.
func (k *Keys) Decrypt(ct Ciphertext, cm fr.Element) (note.Note, error) {
	var n note.Note
	secret, ok := k.sharedSecret(ct[:32])
	if !ok {
		return n, errNotMine
	}
	aead, nonce, err := noteAEAD(secret[:], ct[:32], k.pub[:])
	if err != nil {
		return n, err
	}
	cmb := cm.Bytes()
	plain, err := aead.Open(nil, nonce, ct[32:], cmb[:])
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
