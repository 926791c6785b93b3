package smartlua

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
)

// Store is a chain store in a folder, as plain files named by lower-case
// hex hash (docs/formats/smartlua.md):
//
//	states/<hash>       serialized state
//	transitions/<hash>  canonical transition encoding
//	signatures/<hash>   canonical signature list
//	next/<prev hash>    the hash of the one successor of <prev>
//
// A record exists once its transition file exists; that file is written
// last, each file through a temporary file and a rename. Nothing in the
// folder is trusted: Verifier checks every byte it uses.
type Store struct{ dir string }

var storeDirs = []string{"states", "transitions", "signatures", "next"}

// The longest file of each kind the decoders accept: nothing longer is read.
const (
	maxTransitionFile = 1 + 1 + 32 + 4 + maxFragment + 4 + MaxKeys*32
	maxSigsFile       = 4 + MaxKeys*(4+keys.SignatureSize)
	maxNextFile       = 64 + 2 // a hash in hex and a line end
)

// ErrNotFound reports a hash the store has no record of.
var ErrNotFound = errors.New("smartlua: no such state")

// OpenStore opens (creating if needed) the chain store in dir.
func OpenStore(dir string) (*Store, error) {
	for _, d := range storeDirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("smartlua: open store: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(kind string, h Hash) string { return filepath.Join(s.dir, kind, h.String()) }

// Get reads the record named h. It decodes but does not verify it.
func (s *Store) Get(h Hash) (*Record, error) {
	tb, err := inputfile.Read(s.path("transitions", h), maxTransitionFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	if err != nil {
		return nil, fmt.Errorf("smartlua: read %s: %w", h, err)
	}
	t, err := DecodeTransition(tb)
	if err != nil {
		return nil, fmt.Errorf("smartlua: state %s: %w", h, err)
	}
	st, err := inputfile.Read(s.path("states", h), maxState)
	if err != nil {
		return nil, fmt.Errorf("smartlua: read state %s: %w", h, err)
	}
	sb, err := inputfile.Read(s.path("signatures", h), maxSigsFile)
	if err != nil {
		return nil, fmt.Errorf("smartlua: read signatures %s: %w", h, err)
	}
	sigs, err := DecodeSigs(sb)
	if err != nil {
		return nil, fmt.Errorf("smartlua: state %s: %w", h, err)
	}
	return &Record{Hash: h, Transition: t, State: st, Sigs: sigs}, nil
}

// Next returns the recorded successor of h, if any.
func (s *Store) Next(h Hash) (Hash, bool, error) {
	b, err := inputfile.Read(s.path("next", h), maxNextFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Hash{}, false, nil
	}
	if err != nil {
		return Hash{}, false, fmt.Errorf("smartlua: read successor of %s: %w", h, err)
	}
	n, err := ParseHash(strings.TrimSpace(string(b)))
	if err != nil {
		return Hash{}, false, fmt.Errorf("smartlua: successor index of %s: %w", h, err)
	}
	return n, true, nil
}

// Put stores rec. A second, different successor of a state is refused with
// a *ForkError naming both; storing the same record again changes nothing.
func (s *Store) Put(rec *Record) error {
	if rec.Transition.Prev != nil {
		if err := s.checkFork(rec); err != nil {
			return err
		}
	}
	if err := writeAtomic(s.path("states", rec.Hash), rec.State); err != nil {
		return err
	}
	if err := writeAtomic(s.path("signatures", rec.Hash), EncodeSigs(rec.Sigs)); err != nil {
		return err
	}
	if rec.Transition.Prev != nil {
		// O_EXCL makes the first of two racing successors win.
		f, err := os.OpenFile(s.path("next", *rec.Transition.Prev), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			if err := s.checkFork(rec); err != nil {
				return err
			}
		} else if err != nil {
			return fmt.Errorf("smartlua: store: %w", err)
		} else {
			_, werr := f.WriteString(rec.Hash.String() + "\n")
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return fmt.Errorf("smartlua: store: %w", werr)
			}
		}
	}
	return writeAtomic(s.path("transitions", rec.Hash), rec.Transition.Encode())
}

func (s *Store) checkFork(rec *Record) error {
	prev := *rec.Transition.Prev
	other, ok, err := s.Next(prev)
	if err != nil || !ok || other == rec.Hash {
		return err
	}
	first, err := s.Get(other)
	if err != nil {
		return fmt.Errorf("smartlua: state %s already has successor %s, which cannot be read: %w", prev, other, err)
	}
	return &ForkError{Prev: prev, First: first, Second: rec}
}

// Hashes lists every stored record, in ascending hash order.
func (s *Store) Hashes() ([]Hash, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "transitions"))
	if err != nil {
		return nil, fmt.Errorf("smartlua: list: %w", err)
	}
	var hs []Hash
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		h, err := ParseHash(e.Name())
		if err != nil {
			return nil, fmt.Errorf("smartlua: list: stray file transitions/%s", e.Name())
		}
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].String() < hs[j].String() })
	return hs, nil
}

func writeAtomic(path string, b []byte) error {
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("smartlua: store: %w", err)
	}
	return nil
}
