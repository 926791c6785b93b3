package fractal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
)

// recordingSigner is a signer the instance does not hold the key of (as a
// key in another process would be): it records the context string of every
// message it signs.
type recordingSigner struct {
	*keys.KeySigner
	mu       sync.Mutex
	contexts []string
}

func (s *recordingSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	s.mu.Lock()
	s.contexts = append(s.contexts, string(msg[:bytes.IndexByte(msg, 0)]))
	s.mu.Unlock()
	return s.KeySigner.Sign(ctx, msg)
}

func (s *recordingSigner) signed() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.contexts, ", ")
}

// TestExternalSigner: an instance made with WithSigner keeps no key file,
// and every signature its executor makes goes through the signer: the
// genesis block and every block, an encrypted batch record and its expiry.
// It opens only with a signer of its executor key, and a backup cannot
// carry the key.
func TestExternalSigner(t *testing.T) {
	s := &recordingSigner{KeySigner: keys.NewKeySigner(genKey(t))}
	f := &encFixture{fixture: newFixture(t, DefaultConfig(), WithSigner(s))}
	if _, err := os.Stat(filepath.Join(f.home, keyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an instance with its own signer has a key file: %v", err)
	}
	if f.in.Executor() != s.Public() {
		t.Fatalf("executor %s, the signer's key is %s", f.in.Executor(), s.Public())
	}
	var err error
	if f.pk, f.sks, err = tfhe.TrustedDealerSetup(3, 2); err != nil {
		t.Fatal(err)
	}
	if err := f.in.AttachThresholdKey(f.pk); err != nil {
		t.Fatal(err)
	}
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "coin", "1"))
	f.encrypt(t, f.move(f.allow, f.allow, f.alice, "coin", "sealed", "1"))
	wantState(t, f.seal(t), BatchFixed, "[]")
	if _, err := f.in.ExpireEncrypted(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.commit(t, f.mint(f.allow, f.allow, f.bob, "after", "2"))
	want := "fractal block v1, fractal block v1, fractal encrypted batch v1, fractal encrypted batch expiry v1, fractal block v1"
	if got := s.signed(); got != want {
		t.Fatalf("signed %s; want %s", got, want)
	}
	wantVerify(t, f.in, "")
	if _, err := f.in.Backup(&bytes.Buffer{}, true); err == nil || !strings.Contains(err.Error(), "the executor key is not held by this instance") {
		t.Fatalf("backup with the key of an outside signer: %v", err)
	}

	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f.home); err == nil || !strings.Contains(err.Error(), "executor key: ") {
		t.Fatalf("open without the signer: %v", err)
	}
	other := keys.NewKeySigner(genKey(t))
	if _, err := Open(f.home, WithSigner(other)); err == nil || !strings.Contains(err.Error(), "the signer's key "+other.Public().String()+" is not the executor key of this instance") {
		t.Fatalf("open with another key's signer: %v", err)
	}
	in, err := Open(f.home, WithSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	f.in = in
	t.Cleanup(func() { in.Close() })
	f.commit(t, f.mint(f.allow, f.allow, f.bob, "later", "3"))
	if got := s.signed(); got != want+", fractal block v1" {
		t.Fatalf("signed after reopening: %s", got)
	}
}
