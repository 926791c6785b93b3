// Package guard keeps an executor's double-sign guard: a small file beside
// the store, never inside it, recording the last block the executor signed
// for one instance (height and hash) and, while a signature is being made,
// the block being signed. The file is written and synced before the key
// signs, and checked against the store when the instance opens and before
// every signature. A store that lost committed blocks is therefore refused
// instead of being extended by a second, different block at a height the
// executor already signed (CometBFT keeps priv_validator_state.json for the
// same reason). The guard knows nothing of keys or badger: the instance
// gives it the store's blocks through Chain.
//
// File format: docs/formats/instance.md; decision 095.
package guard

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fractalvm/fractal/internal/atomicfile"
)

// fileVersion is the version of the guard file this code reads and writes.
const fileVersion = 1

// maxFileBytes bounds the guard file read: its JSON is about 300 bytes.
const maxFileBytes = 4096

// Block names one block of the instance.
type Block struct {
	Height uint64
	Hash   [32]byte
}

func (b Block) String() string { return fmt.Sprintf("%d (hash %x…)", b.Height, b.Hash[:8]) }

// Chain is what the guard checks: the blocks the store holds.
type Chain interface {
	// Head returns the store's last block.
	Head() (Block, error)
	// HashAt returns the hash of the block stored at height h, and false
	// when the store holds none there.
	HashAt(h uint64) ([32]byte, bool, error)
}

// Guard is the signing record of one executor key for one instance. It is
// not safe for concurrent use; the instance serializes its writers.
type Guard struct {
	path     string
	instance [32]byte
	signed   *Block // the last block signed and stored; nil only while the genesis block is signed
	signing  *Block // the block being signed, recorded before the signature is made
}

// New returns a guard for an instance that has signed nothing yet; its file
// is written by the first Begin.
func New(path string, instance [32]byte) *Guard {
	return &Guard{path: path, instance: instance}
}

// Create writes a guard file recording head as the last block signed, for
// an instance that has none (an instance from before guards, or a
// restored one). It refuses to replace an existing file.
func Create(path string, instance [32]byte, head Block) (*Guard, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("guard: %s already exists", path)
	}
	g := &Guard{path: path, instance: instance, signed: &head}
	if err := g.write(); err != nil {
		return nil, err
	}
	return g, nil
}

// Load reads the guard file at path, which must be about instance. A
// missing file is reported as an error wrapping os.ErrNotExist.
func Load(path string, instance [32]byte) (*Guard, error) {
	raw, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	g, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("guard: %s: %w", path, err)
	}
	if g.instance != instance {
		return nil, fmt.Errorf("guard: %s is about instance %x, not this one", path, g.instance)
	}
	g.path = path
	return g, nil
}

// readBounded reads at most maxFileBytes of a regular file.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileBytes)
	}
	return raw, nil
}

// Signed returns the last block signed and stored, false before genesis.
func (g *Guard) Signed() (Block, bool) {
	if g.signed == nil {
		return Block{}, false
	}
	return *g.signed, true
}

// Path returns the guard file's path.
func (g *Guard) Path() string { return g.path }

// Check compares the guard with the store. A block recorded as being
// signed is settled first: kept as signed when the store holds it, else
// forgotten (its signature was made but never stored, so it never left the
// process). The store must then hold the last signed block; a store behind
// it, or holding another block at its height, is refused. A store ahead of
// the guard (a guard file older than the store) raises the guard to the
// store's head. Any change is written before Check returns.
func (g *Guard) Check(c Chain) error {
	changed := false
	if g.signing != nil {
		h, ok, err := c.HashAt(g.signing.Height)
		if err != nil {
			return fmt.Errorf("guard: %w", err)
		}
		if ok && h == g.signing.Hash {
			g.signed = g.signing
		}
		g.signing, changed = nil, true
	}
	head, err := c.Head()
	if err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	if g.signed != nil {
		s := *g.signed
		if head.Height < s.Height {
			return &BehindError{Store: head, Signed: s, Path: g.path}
		}
		h, ok, err := c.HashAt(s.Height)
		if err != nil {
			return fmt.Errorf("guard: %w", err)
		}
		if !ok {
			return &BehindError{Store: head, Signed: s, Path: g.path}
		}
		if h != s.Hash {
			return fmt.Errorf("the store's block %d is %x but this executor signed block %d as %x (%s): the store holds another history; restore a backup of this instance (docs/cli/backup.md)",
				s.Height, h, s.Height, s.Hash, g.path)
		}
	}
	if g.signed == nil || head.Height > g.signed.Height {
		g.signed, changed = &head, true
	}
	if changed {
		return g.write()
	}
	return nil
}

// BehindError is Check's refusal of a store that lacks blocks the executor
// signed.
type BehindError struct {
	Store  Block  // the store's head
	Signed Block  // the last block the executor signed
	Path   string // the guard file that records it
}

func (e *BehindError) Error() string {
	return fmt.Sprintf("the store is at height %d but this executor signed height %d (hash %x…, %s): committed blocks are missing; restore a backup taken at height %d or later (docs/cli/backup.md)",
		e.Store.Height, e.Signed.Height, e.Signed.Hash[:8], e.Path, e.Signed.Height)
}

// Begin records b as the block about to be signed and syncs the file; the
// signature may be made once it returns. Only the block after the last
// signed one may be signed, or the last signed block itself again (the
// same bytes). Call Check first, so that an earlier Begin whose block was
// never stored is settled.
func (g *Guard) Begin(b Block) error {
	if g.signed != nil && b == *g.signed {
		return nil
	}
	next := uint64(0)
	if g.signed != nil {
		next = g.signed.Height + 1
	}
	if b.Height != next {
		if g.signed != nil && b.Height <= g.signed.Height {
			return fmt.Errorf("refusing to sign block %s: this executor already signed up to block %s", b, g.signed)
		}
		return fmt.Errorf("refusing to sign block %s: the next block to sign is %d", b, next)
	}
	g.signing = &b
	return g.write()
}

// Done records b, begun and now stored, as the last block signed.
func (g *Guard) Done(b Block) error {
	if g.signing == nil || *g.signing != b {
		return fmt.Errorf("guard: block %s was not begun", b)
	}
	g.signed, g.signing = g.signing, nil
	return g.write()
}

// fileJSON is the guard file.
type fileJSON struct {
	Version  int        `json:"version"`
	Instance string     `json:"instance"`
	Signed   *blockJSON `json:"signed,omitempty"`
	Signing  *blockJSON `json:"signing,omitempty"`
}

type blockJSON struct {
	Height uint64 `json:"height"`
	Hash   string `json:"hash"`
}

func toJSON(b *Block) *blockJSON {
	if b == nil {
		return nil
	}
	return &blockJSON{Height: b.Height, Hash: hex.EncodeToString(b.Hash[:])}
}

func (g *Guard) write() error {
	raw, err := json.MarshalIndent(fileJSON{
		Version: fileVersion, Instance: hex.EncodeToString(g.instance[:]),
		Signed: toJSON(g.signed), Signing: toJSON(g.signing),
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(g.path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	return nil
}

// decode parses a guard file strictly: known fields only, one JSON value,
// hashes as 64 lower-case hex digits.
func decode(raw []byte) (*Guard, error) {
	var f fileJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("version %d, this program reads %d", f.Version, fileVersion)
	}
	g := &Guard{}
	if err := parseHash(f.Instance, &g.instance); err != nil {
		return nil, fmt.Errorf("instance: %w", err)
	}
	var err error
	if g.signed, err = fromJSON(f.Signed); err != nil {
		return nil, fmt.Errorf("signed: %w", err)
	}
	if g.signing, err = fromJSON(f.Signing); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	switch {
	case g.signed == nil && g.signing == nil:
		return nil, errors.New("records no block")
	case g.signing != nil && g.signed != nil && g.signing.Height != g.signed.Height+1:
		return nil, fmt.Errorf("signing block %d after block %d", g.signing.Height, g.signed.Height)
	case g.signing != nil && g.signed == nil && g.signing.Height != 0:
		return nil, fmt.Errorf("signing block %d with nothing signed before", g.signing.Height)
	}
	return g, nil
}

func fromJSON(j *blockJSON) (*Block, error) {
	if j == nil {
		return nil, nil
	}
	b := &Block{Height: j.Height}
	if err := parseHash(j.Hash, &b.Hash); err != nil {
		return nil, err
	}
	return b, nil
}

func parseHash(s string, out *[32]byte) error {
	if len(s) != 64 {
		return fmt.Errorf("%q is not 64 hex digits", s)
	}
	if _, err := hex.Decode(out[:], []byte(s)); err != nil || hex.EncodeToString(out[:]) != s {
		return fmt.Errorf("%q is not lower-case hex", s)
	}
	return nil
}
