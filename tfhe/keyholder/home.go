// Package keyholder is a keyholder's side of a threshold key on disk and on
// the wire: its home folder (its Fractal key pair and, per epoch, its own
// share with the public key and the DKG's transcript), the peers file that
// lists the keyholders of a DKG, and running its one party of the DKG
// against the others (RunDKG). Outside tests, the only folder that ever
// holds more than one share is the labelled development dealer's
// (devdealer.go). docs/cli/keyholder.md, docs/decisions/131–133.
//
//	HOME/keyholder.key          the keyholder's Fractal key (mode 0600)
//	HOME/epoch-E/share.key      its share of epoch E's key (mode 0600)
//	HOME/epoch-E/public.key     the threshold public key
//	HOME/epoch-E/transcript.bin the DKG's transcript
//	HOME/party.state            a chain DKG's party in progress (mode 0600)
package keyholder

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// Files of a keyholder's home and of a key folder.
const (
	KeyFile        = "keyholder.key"
	PublicKeyFile  = "public.key"
	ShareFile      = "share.key"
	TranscriptFile = "transcript.bin"
	PartyFile      = "party.state"
)

// maxKeyFile bounds a public key or key share file: a share holds the key.
const maxKeyFile = 1 << 14

// Home is a keyholder's folder and its key.
type Home struct {
	Dir string
	Key keys.PrivateKey
}

// Init makes a keyholder's home: the folder dir (mode 0700; it may exist
// if empty) with a fresh key pair. It refuses a folder that holds anything.
func Init(dir string) (*Home, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	if len(entries) > 0 {
		return nil, fmt.Errorf("keyholder: %s is not empty; refusing to make a keyholder home there", dir)
	}
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := keys.WriteKeyFile(filepath.Join(dir, KeyFile), k); err != nil {
		return nil, err
	}
	return &Home{Dir: dir, Key: k}, nil
}

// OpenHome reads a keyholder's home.
func OpenHome(dir string) (*Home, error) {
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keyholder: %s is not a keyholder home (no %s; run fractal keyholder init --home %s)", dir, KeyFile, dir)
	}
	k, err := keys.LoadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	return &Home{Dir: dir, Key: k}, nil
}

// EpochDir is the folder of epoch e's key.
func (h *Home) EpochDir(e uint64) string { return filepath.Join(h.Dir, fmt.Sprintf("epoch-%d", e)) }

// WriteEpoch writes this keyholder's share of epoch e's key with the key
// and the transcript, all or nothing; an epoch's folder is never replaced.
func (h *Home) WriteEpoch(e uint64, pk *tfhe.PublicKey, share *tfhe.KeyShare, t *dkg.Transcript) error {
	return writeNewFolder(h.EpochDir(e), func(tmp string) error {
		if err := atomicfile.Write(filepath.Join(tmp, ShareFile), share.Encode(), 0o600); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(tmp, PublicKeyFile), pk.Encode(), 0o644); err != nil {
			return err
		}
		return atomicfile.Write(filepath.Join(tmp, TranscriptFile), t.Encode(), 0o644)
	})
}

// Share reads this keyholder's share of epoch e's key.
func (h *Home) Share(e uint64) (*tfhe.KeyShare, error) {
	return readEpochFile(h, e, ShareFile, maxKeyFile, tfhe.DecodeKeyShare)
}

// DropShare deletes this keyholder's share of epoch e's key, once nothing
// sealed to that key can still need it; the key and transcript stay.
func (h *Home) DropShare(e uint64) error {
	err := os.Remove(filepath.Join(h.EpochDir(e), ShareFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// SaveParty writes the state of this keyholder's party in a DKG on a
// chain (dkg.Party.State: it holds the secret polynomial), mode 0600,
// synced, before any envelope of it leaves (decision 175).
func (h *Home) SaveParty(state []byte) error {
	return atomicfile.Write(filepath.Join(h.Dir, PartyFile), state, 0o600)
}

// LoadParty reads the saved party state, nil when there is none.
func (h *Home) LoadParty() ([]byte, error) {
	path := filepath.Join(h.Dir, PartyFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	raw, err := inputfile.Read(path, dkg.MaxState)
	if err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	return raw, nil
}

// DropParty deletes the saved party state, once its share is written or
// its DKG is over without one.
func (h *Home) DropParty() error {
	err := os.Remove(filepath.Join(h.Dir, PartyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Transcript reads the transcript of epoch e's DKG.
func (h *Home) Transcript(e uint64) (*dkg.Transcript, error) {
	return readEpochFile(h, e, TranscriptFile, dkg.MaxTranscript, dkg.DecodeTranscript)
}

// readEpochFile reads and decodes one file of epoch e's folder.
func readEpochFile[T any](h *Home, e uint64, name string, max int64, decode func([]byte) (T, error)) (T, error) {
	var zero T
	if _, err := os.Stat(h.EpochDir(e)); errors.Is(err, fs.ErrNotExist) {
		return zero, fmt.Errorf("keyholder: %s holds no share for epoch %d (fractal keyholder dkg makes one)", h.Dir, e)
	}
	path := filepath.Join(h.EpochDir(e), name)
	raw, err := inputfile.Read(path, max)
	if err != nil {
		return zero, fmt.Errorf("keyholder: epoch %d: %w", e, err)
	}
	v, err := decode(raw)
	if err != nil {
		return zero, fmt.Errorf("keyholder: %s: %w", path, err)
	}
	return v, nil
}
