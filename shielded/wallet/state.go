package wallet

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/shielded"
)

// Files of a wallet folder.
const (
	keyFile   = "spend.key" // standard base64 of the 32-byte spending key, one line
	stateFile = "state.bin" // State's encoding
)

// Owned is one note the wallet found.
type Owned struct {
	Note     note.Note
	Position uint64 // leaf position in the commitment tree
	Height   uint64 // block that created it
	Name     string // asset name "<application hex>/<issuer>:<symbol>" from the transaction's header
	Spent    bool
}

// State is what a sync has learned: the instance and the next block to
// scan (with the hash of the last one scanned, so a changed chain is
// noticed), the commitment tree with witnesses of the unspent notes, and the
// notes found.
type State struct {
	Instance [32]byte
	Next     uint64 // next block height to scan; 0 before the first sync
	Last     [32]byte
	Tree     *merkle.Tree
	Notes    []Owned
}

// Limits of a state encoding.
const (
	maxNotes = 1 << 20
	maxName  = 256
	maxTree  = 64 << 20
	stateVer = 1
	// maxStateFile is the longest state encoding the limits above allow.
	maxStateFile = 1 + 32 + 8 + 32 + 4 + maxTree + 4 + maxNotes*(note.Size+8+8+4+maxName+1)
	// maxKeyFile bounds spend.key: one base64 line.
	maxKeyFile = 4 << 10
)

// MarshalBinary encodes the state: u8 version=1 | instance (32) | next u64 |
// last (32) | var tree | u32 n | n × (note (128) | position u64 | height u64
// | string name | bool spent).
func (s *State) MarshalBinary() ([]byte, error) {
	tree, err := s.Tree.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w := enc.NewWriter(1 + 32 + 8 + 32 + 4 + len(tree) + 4 + len(s.Notes)*(note.Size+64))
	w.U8(stateVer)
	w.Fixed(s.Instance[:])
	w.U64(s.Next)
	w.Fixed(s.Last[:])
	w.Var(tree)
	w.U32(uint32(len(s.Notes)))
	for _, o := range s.Notes {
		raw, err := o.Note.MarshalBinary()
		if err != nil {
			return nil, err
		}
		w.Fixed(raw)
		w.U64(o.Position)
		w.U64(o.Height)
		w.String(o.Name)
		w.Bool(o.Spent)
	}
	return w.Bytes(), nil
}

// UnmarshalBinary decodes MarshalBinary's output, refusing another version,
// truncation, trailing bytes, a bad tree or note, and an unspent note whose
// witness the tree does not keep.
func (s *State) UnmarshalBinary(b []byte) error {
	if err := s.unmarshal(b); err != nil {
		return fmt.Errorf("wallet: state: %w", err)
	}
	return nil
}

func (s *State) unmarshal(b []byte) error {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != stateVer {
		return fmt.Errorf("version %d, want %d", v, stateVer)
	}
	r.Into(s.Instance[:])
	s.Next = r.U64()
	r.Into(s.Last[:])
	tree := r.Var(maxTree, "tree")
	n := r.Count(maxNotes, "notes")
	s.Notes = nil
	for i := 0; i < n && r.Err() == nil; i++ {
		var o Owned
		raw := r.Fixed(note.Size)
		if r.Err() != nil {
			break
		}
		if err := o.Note.UnmarshalBinary(raw); err != nil {
			return fmt.Errorf("note %d: %w", i+1, err)
		}
		o.Position, o.Height = r.U64(), r.U64()
		o.Name = r.String(maxName, "asset name")
		o.Spent = r.Bool()
		s.Notes = append(s.Notes, o)
	}
	if err := r.Finish(); err != nil {
		return err
	}
	s.Tree = merkle.New()
	if err := s.Tree.UnmarshalBinary(tree); err != nil {
		return err
	}
	for i, o := range s.Notes {
		if o.Spent {
			continue
		}
		p, err := s.Tree.Witness(o.Position)
		if err != nil || p.Root(o.Note.Commitment()) != s.Tree.Root() {
			return fmt.Errorf("note %d: the tree keeps no valid witness for position %d", i+1, o.Position)
		}
	}
	return nil
}

// Wallet is a wallet folder: its keys and its synced state.
type Wallet struct {
	Dir   string
	Keys  *Keys
	State *State
	// Signer signs the transfers and unshields the wallet builds. A
	// shielded spend is authorised by its proof, not by a signature, so by
	// default (nil) each transaction gets a fresh one-time key.
	Signer *keys.PrivateKey
	// Workers is how many goroutines a sync tries outputs on; 0 (the
	// default) means one per core. The result is the same whatever it is.
	Workers int
	// BundleVersion is the version of the bundles the wallet builds: 0
	// (the default) means shielded.BundleV2; shielded.BundleV1 builds the
	// older form, which instances still accept.
	BundleVersion byte
}

func (w *Wallet) bundleVersion() byte {
	if w.BundleVersion == 0 {
		return shielded.BundleV2
	}
	return w.BundleVersion
}

// Create makes a new wallet in dir (created if absent) with a fresh
// spending key. It refuses a folder that already holds one.
func Create(dir string) (*Wallet, error) {
	if _, err := os.Stat(filepath.Join(dir, keyFile)); err == nil {
		return nil, fmt.Errorf("wallet: %s already holds a wallet", dir)
	}
	k, err := GenerateKeys(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	w := &Wallet{Dir: dir, Keys: k, State: &State{Tree: merkle.New()}}
	line := base64.StdEncoding.EncodeToString(k.Spend.Bytes()) + "\n"
	if err := atomicfile.Write(filepath.Join(dir, keyFile), []byte(line), 0o600); err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	return w, w.Save()
}

// Open reads the wallet in dir.
func Open(dir string) (*Wallet, error) {
	line, err := inputfile.Read(filepath.Join(dir, keyFile), maxKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("wallet: %s holds no wallet (run `fractal shielded address --new`)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(string(line)))
	if err != nil {
		return nil, fmt.Errorf("wallet: %s: %w", keyFile, err)
	}
	sk, err := note.ParseSpendingKey(raw)
	if err != nil {
		return nil, fmt.Errorf("wallet: %s: %w", keyFile, err)
	}
	k, err := NewKeys(sk)
	if err != nil {
		return nil, err
	}
	st := &State{}
	b, err := inputfile.Read(filepath.Join(dir, stateFile), maxStateFile)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	if err := st.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return &Wallet{Dir: dir, Keys: k, State: st}, nil
}

// Save writes the state through a temporary file and a rename, so a crash
// leaves the previous state whole.
func (w *Wallet) Save() error {
	b, err := w.State.MarshalBinary()
	if err != nil {
		return fmt.Errorf("wallet: save: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(w.Dir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("wallet: save: %w", err)
	}
	return nil
}

// Balance is the unspent total of one asset.
type Balance struct {
	Name  string `json:"asset"`
	Value uint64 `json:"value"`
	Notes int    `json:"notes"`
}

// Balances returns the unspent totals per asset, by asset name.
func (w *Wallet) Balances() []Balance {
	by := map[string]*Balance{}
	var out []Balance
	for _, o := range w.State.Notes {
		if o.Spent {
			continue
		}
		b := by[o.Name]
		if b == nil {
			b = &Balance{Name: o.Name}
			by[o.Name] = b
		}
		b.Value += o.Note.Value
		b.Notes++
	}
	for _, b := range by {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// nullifiers maps the nullifier of every owned note, spent or not, to its
// index: spent ones too, so a copy of a spent note is not counted as new.
func (w *Wallet) nullifiers() map[fr.Element]int {
	nk := w.Keys.Spend.NullifierKey()
	m := map[fr.Element]int{}
	for i, o := range w.State.Notes {
		m[note.Nullifier(nk, o.Note.Rho)] = i
	}
	return m
}

// clone returns a deep copy of the state, for applying a block that may
// fail part-way.
func (s *State) clone() *State {
	c := *s
	c.Tree = s.Tree.Clone()
	c.Notes = slices.Clone(s.Notes)
	return &c
}
