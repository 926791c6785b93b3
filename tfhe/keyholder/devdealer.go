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

// The development dealer's folder, written by fractal tfhe setup
// --dev-dealer (docs/cli/tfhe.md): the one place where one process writes
// every keyholder's share.
//
//	DIR/public.key
//	DIR/transcript.bin          (the DKG's; none for a trusted dealer)
//	DIR/keyholder-I/share.key   (mode 0600, in a 0700 folder)

// Setup is a threshold key with the shares of the keyholders that hold one.
type Setup struct {
	Key    *tfhe.PublicKey
	Shares []*tfhe.KeyShare // sorted by keyholder index
	DKG    *dkg.Result      // the DKG's faults and transcript; nil for a trusted dealer
}

// Generate makes an n-keyholder key that any k decrypt, in this process,
// which holds every share (DEVELOPMENT ONLY; the key says so): by the DKG
// run among n parties here, or, with trustedDealer, drawn at once (FOR
// TESTS ONLY).
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

// WriteFolder writes s into the folder dir, which must not exist, all or
// nothing (writeNewFolder).
func (s *Setup) WriteFolder(dir string) error {
	return writeNewFolder(dir, func(tmp string) error {
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
		return nil
	})
}

// writeNewFolder makes the folder dir, which must not exist: fill writes
// its files into a folder made under a temporary name beside dir (mode
// 0700), which is renamed to dir at the end, so a failed write leaves
// nothing behind and dir is never seen half-written.
func writeNewFolder(dir string, fill func(tmp string) error) error {
	if err := CheckNew(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	if err := fill(tmp); err != nil {
		return err
	}
	if err := CheckNew(dir); err != nil { // made meanwhile: rename would replace an empty folder
		return err
	}
	return os.Rename(tmp, dir)
}
