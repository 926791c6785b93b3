package keyholder

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/tfhe"
)

// TestWriteFolderDKG: a DKG setup's folder holds the key, the transcript
// and each keyholder's share, readable back, the shares private; the
// shares decrypt what the key encrypts.
func TestWriteFolderDKG(t *testing.T) {
	var steps int
	s, err := Generate(t.Context(), 3, 2, false, func(done, _ int) { steps = done })
	if err != nil {
		t.Fatal(err)
	}
	if s.Key.Origin != tfhe.OriginDevDealer || s.DKG == nil || steps != 12 || len(s.DKG.Faults) != 0 {
		t.Fatalf("origin %v, dkg %v, %d steps, faults %v", s.Key.Origin, s.DKG != nil, steps, s.DKG.Faults)
	}
	if got := s.Holders(); len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("holders %v", got)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	if err := s.WriteFolder(dir); err != nil {
		t.Fatal(err)
	}
	pk, err := tfhe.DecodePublicKey(read(t, dir, PublicKeyFile))
	if err != nil || pk.ID() != s.Key.ID() {
		t.Fatalf("public key read back: %v", err)
	}
	if got := read(t, dir, TranscriptFile); !bytes.Equal(got, s.DKG.Transcript.Encode()) {
		t.Fatal("transcript differs")
	}
	ct, err := tfhe.Encrypt(pk, 7)
	if err != nil {
		t.Fatal(err)
	}
	var shares []*tfhe.Share
	for _, i := range []string{"1", "3"} {
		sub := filepath.Join(dir, "keyholder-"+i)
		if fi, err := os.Stat(sub); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700) {
			t.Fatalf("%s: %v %v", sub, fi.Mode(), err)
		}
		if fi, err := os.Stat(filepath.Join(sub, ShareFile)); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
			t.Fatalf("%s share: %v %v", sub, fi.Mode(), err)
		}
		sk, err := tfhe.DecodeKeyShare(read(t, sub, ShareFile))
		if err != nil {
			t.Fatal(err)
		}
		sh, err := tfhe.PartDec(sk, ct)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, sh)
	}
	if m, err := tfhe.DecryptCounter(pk, ct, shares); err != nil || m != 7 {
		t.Fatalf("decrypted %d, %v", m, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Fatalf("%d entries beside the folder, want only it", len(entries))
	}
}

// TestWriteFolderDealer: a trusted dealer's folder has no transcript.
func TestWriteFolderDealer(t *testing.T) {
	s, err := Generate(t.Context(), 3, 2, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dealt")
	if err := s.WriteFolder(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "keyholder-1 keyholder-2 keyholder-3 public.key" || s.Key.Origin != tfhe.OriginTrustedDealer {
		t.Fatalf("folder holds %s, origin %v", got, s.Key.Origin)
	}
}

// TestWriteFolderRefusals: an existing folder (or a link by that name) is
// refused and left alone; a write that fails part-way leaves nothing.
func TestWriteFolderRefusals(t *testing.T) {
	s, err := Generate(t.Context(), 3, 2, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFolder(dir); err == nil || err.Error() != dir+" already exists; refusing to overwrite it" {
		t.Fatalf("existing folder: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatal("the existing folder was written into")
	}
	link := filepath.Join(parent, "link")
	if err := os.Symlink(filepath.Join(parent, "nowhere"), link); err == nil {
		if err := CheckNew(link); err == nil {
			t.Fatal("a dangling link was taken for a free name")
		}
	}
	// Two shares with one index: the second keyholder folder cannot be made.
	bad := &Setup{Key: s.Key, Shares: []*tfhe.KeyShare{s.Shares[0], s.Shares[0]}}
	if err := bad.WriteFolder(filepath.Join(parent, "half")); err == nil {
		t.Fatal("a failing write succeeded")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 2 {
		t.Fatalf("%d entries after a failed write, want keys and link only", len(entries))
	}
}

// TestGenerateRefusals: bad parameters are the DKG's refusals; a done
// context stops it.
func TestGenerateRefusals(t *testing.T) {
	if _, err := Generate(t.Context(), 5, 6, false, nil); err == nil || !strings.Contains(err.Error(), "k = 6, want 2..n") {
		t.Fatalf("k > n: %v", err)
	}
	if _, err := Generate(t.Context(), 0, 1, true, nil); err == nil {
		t.Fatal("dealer with n = 0 accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Generate(ctx, 3, 2, false, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
