// Package keys holds Fractal's one signing key type: X25519 key pairs that
// sign with XEdDSA (Signal's specification), their standard-base64 text form,
// key files, and the Signer interface through which code that needs a
// signature reaches a key wherever it lives.
//
// The same 32-byte private key serves X25519 key agreement and signing; the
// public key is the X25519 public key (a Montgomery u-coordinate), so the
// keys printed in the Smart Lua seed are valid Fractal keys.
package keys

import (
	"crypto/ecdh"
	"encoding/base64"
	"fmt"
	"io"
)

// Sizes of keys and signatures in bytes.
const (
	PrivateKeySize = 32
	PublicKeySize  = 32
	SignatureSize  = 64
)

// PrivateKey is an X25519 private key: 32 bytes, clamped when used.
type PrivateKey [PrivateKeySize]byte

// PublicKey is an X25519 public key: the little-endian Montgomery
// u-coordinate of the private scalar times the base point.
type PublicKey [PublicKeySize]byte

// b64 is strict standard base64: padding required and unused trailing bits
// zero, so every key has exactly one text form.
var b64 = base64.StdEncoding.Strict()

// GenerateKey reads 32 bytes from rand and returns them clamped as X25519
// requires (clamping at creation, as Signal does, keeps the stored key
// usable by implementations that do not clamp).
func GenerateKey(rand io.Reader) (PrivateKey, error) {
	var k PrivateKey
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("keys: generate: %w", err)
	}
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
	return k, nil
}

// Public returns the X25519 public key of k.
func (k PrivateKey) Public() PublicKey {
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// Unreachable: NewPrivateKey refuses only a wrong length.
		panic("keys: X25519 refused a 32-byte key: " + err.Error())
	}
	var p PublicKey
	copy(p[:], priv.PublicKey().Bytes())
	return p
}

// String returns the standard-base64 form of p.
func (p PublicKey) String() string { return b64.EncodeToString(p[:]) }

// String returns the standard-base64 form of k. It is the secret itself:
// print it only into a key file.
func (k PrivateKey) String() string { return b64.EncodeToString(k[:]) }

// ParsePublicKey decodes a standard-base64 public key of exactly 32 bytes.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	if err := decodeFixed("public key", s, p[:]); err != nil {
		return PublicKey{}, fmt.Errorf("keys: %w", err)
	}
	return p, nil
}

// ParsePrivateKey decodes a standard-base64 private key of exactly 32 bytes.
// Errors never repeat the input, which is a secret.
func ParsePrivateKey(s string) (PrivateKey, error) {
	var k PrivateKey
	if err := decodeFixed("private key", s, k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("keys: %w", err)
	}
	return k, nil
}

// FormatSignature returns the standard-base64 form of a signature.
func FormatSignature(sig []byte) string { return b64.EncodeToString(sig) }

// ParseSignature decodes a standard-base64 signature of exactly 64 bytes.
func ParseSignature(s string) ([]byte, error) {
	sig := make([]byte, SignatureSize)
	if err := decodeFixed("signature", s, sig); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return sig, nil
}

// decodeFixed decodes s into out, refusing any other decoded length. Its
// errors name what was decoded; callers add the package prefix.
func decodeFixed(what, s string, out []byte) error {
	if len(s) != b64.EncodedLen(len(out)) {
		return fmt.Errorf("%s: %d base64 characters, want %d (%d bytes)", what, len(s), b64.EncodedLen(len(out)), len(out))
	}
	// Decode into a buffer of the full decoded size: 44 characters without
	// padding hold 33 bytes.
	buf := make([]byte, b64.DecodedLen(len(s)))
	n, err := b64.Decode(buf, []byte(s))
	if err != nil {
		return fmt.Errorf("%s: not standard base64: %w", what, err)
	}
	if n != len(out) {
		return fmt.Errorf("%s: %d bytes, want %d", what, n, len(out))
	}
	copy(out, buf)
	clear(buf)
	return nil
}
