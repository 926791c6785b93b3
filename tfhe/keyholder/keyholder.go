// Package keyholder makes a threshold key for keyholders that share one
// machine and writes the folder they take their shares from: the public
// key, the DKG's transcript, and one subfolder per keyholder holding its
// share (docs/formats/tfhe.md, docs/cli/tfhe.md).
//
//	DIR/public.key
//	DIR/transcript.bin          (a DKG's; none for a trusted dealer)
//	DIR/keyholder-I/share.key   (mode 0600, in a 0700 folder)
package keyholder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// Files of a setup folder.
const (
	PublicKeyFile  = "public.key"
	ShareFile      = "share.key"
	TranscriptFile = "transcript.bin"
)

// Setup is a threshold key with the shares of the keyholders that hold one.
type Setup struct {
	Key    *tfhe.PublicKey
	Shares []*tfhe.KeyShare // sorted by keyholder index
	DKG    *dkg.Result      // the DKG's faults and transcript; nil for a trusted dealer
}

// Generate makes an n-keyholder key that any k decrypt: by kyber's Pedersen
// DKG run in this process with a fresh random session identifier, or, with
// trustedDealer, drawn in this process (FOR TESTS ONLY: the key says so).
// progress, when not nil, is called after each keyholder step of the DKG;
// ctx can stop the DKG.
func Generate(ctx context.Context, n, k int, trustedDealer bool, progress func(done, total int)) (*Setup, error) {
	if trustedDealer {
		pk, shares, err := tfhe.TrustedDealerSetup(n, k)
		if err != nil {
			return nil, err
		}
		return &Setup{Key: pk, Shares: shares}, nil
	}
	pk, shares, res, err := tfhe.SetupDKG(ctx, dkg.Config{N: n, K: k, Progress: progress})
	if err != nil {
		return nil, err
	}
	return &Setup{Key: pk, Shares: shares, DKG: res}, nil
}

// Holders returns the indexes of the keyholders with a share, in order.
func (s *Setup) Holders() []int {
	out := make([]int, len(s.Shares))
	for i, sh := range s.Shares {
		out[i] = sh.Index
	}
	return out
}

// CheckNew refuses a folder name that exists: a setup never writes over
// another.
func CheckNew(dir string) error {
	_, err := os.Lstat(dir)
	switch {
	case err == nil:
		return fmt.Errorf("%s already exists; refusing to overwrite it", dir)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	}
	return err
}

// WriteFolder writes s into the folder dir, which must not exist. The
// folder is made under a temporary name beside dir, each file written
// whole (internal/atomicfile), and renamed to dir at the end, so a failed
// write leaves nothing behind and dir is never seen half-written.
func (s *Setup) WriteFolder(dir string) error {
	if err := CheckNew(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".tfhe-setup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	if err := atomicfile.Write(filepath.Join(tmp, PublicKeyFile), s.Key.Encode(), 0o644); err != nil {
		return err
	}
	if s.DKG != nil {
		if err := atomicfile.Write(filepath.Join(tmp, TranscriptFile), s.DKG.Transcript.Encode(), 0o644); err != nil {
			return err
		}
	}
	for _, sh := range s.Shares {
		sub := filepath.Join(tmp, fmt.Sprintf("keyholder-%d", sh.Index))
		if err := os.Mkdir(sub, 0o700); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(sub, ShareFile), sh.Encode(), 0o600); err != nil {
			return err
		}
	}
	if err := CheckNew(dir); err != nil { // made meanwhile: rename would replace an empty folder
		return err
	}
	return os.Rename(tmp, dir)
}
