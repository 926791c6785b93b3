package keys

import (
	"context"
	"crypto/rand"
	"fmt"
)

// Signer makes XEdDSA signatures with one key, wherever the key lives: in
// memory (KeySigner, what a key file gives), in another process, or in a
// validator's key store. It is Go's crypto.Signer for this one key type,
// with a context because the key may be far away. Code that needs a
// signature takes a Signer, not a key.
type Signer interface {
	// Public returns the key signatures verify under.
	Public() PublicKey
	// Sign returns the 64-byte XEdDSA signature of message (the whole
	// message: callers put a context string before what they sign).
	Sign(ctx context.Context, message []byte) ([]byte, error)
}

// KeySigner is the Signer of a private key held in memory, with the nonce
// randomness read from crypto/rand.
type KeySigner struct {
	key PrivateKey
	pub PublicKey
}

// NewKeySigner returns the Signer of k.
func NewKeySigner(k PrivateKey) *KeySigner { return &KeySigner{key: k, pub: k.Public()} }

// Public implements Signer.
func (s *KeySigner) Public() PublicKey { return s.pub }

// Sign implements Signer.
func (s *KeySigner) Sign(ctx context.Context, message []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.key.Sign(rand.Reader, message)
}

// Key returns the private key (for a backup that carries it).
func (s *KeySigner) Key() PrivateKey { return s.key }

// SignChecked signs message with s and checks the result against s's
// public key, so that a faulty or remote signer's bad answer is refused
// rather than stored.
func SignChecked(ctx context.Context, s Signer, message []byte) ([]byte, error) {
	sig, err := s.Sign(ctx, message)
	if err != nil {
		return nil, err
	}
	if err := Verify(s.Public(), message, sig); err != nil {
		return nil, fmt.Errorf("keys: the signer's signature does not verify under its key %s: %w", s.Public(), err)
	}
	return sig, nil
}
