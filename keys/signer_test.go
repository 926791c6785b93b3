package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// wrongSigner claims one key and signs with another.
type wrongSigner struct {
	claimed PublicKey
	*KeySigner
}

func (w wrongSigner) Public() PublicKey { return w.claimed }

func TestKeySigner(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := NewKeySigner(k)
	if s.Public() != k.Public() || s.Key() != k {
		t.Fatal("signer names another key")
	}
	msg := []byte("context\x00message")
	sig, err := SignChecked(context.Background(), s, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(k.Public(), msg, sig); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Sign(ctx, msg); !errors.Is(err, context.Canceled) {
		t.Fatalf("sign with a cancelled context: %v", err)
	}
	other, _ := GenerateKey(rand.Reader)
	bad := wrongSigner{claimed: other.Public(), KeySigner: s}
	if _, err := SignChecked(context.Background(), bad, msg); err == nil || !strings.Contains(err.Error(), "the signer's signature does not verify under its key "+other.Public().String()) {
		t.Fatalf("a signer that signs with another key: %v", err)
	}
}
