// Package guard keeps an executor's double-sign guard: a small file beside
// the store, never inside it, recording for one instance the last record of
// each kind the executor signed (number and hash: blocks by height,
// encrypted batch records and their expiries by batch number) and, while a
// signature is being made, the record being signed. The file is written
// and synced before the key signs, and checked against the store when the
// instance opens and before every signature. A store that lost committed
// blocks or records is therefore refused instead of being extended by a
// second, different one where the executor already signed (CometBFT keeps
// priv_validator_state.json for the same reason). The guard knows nothing
// of keys or badger: the instance gives it the store's records through
// Chain.
//
// File format: docs/formats/instance.md; decisions 095 and 102.
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

// Block names one signed record of the instance: a block by its height, or
// for the other kinds, the encrypted batch the record is about by its
// number (in Height).
type Block struct {
	Height uint64
	Hash   [32]byte
}

func (b Block) String() string { return fmt.Sprintf("%d (hash %x…)", b.Height, b.Hash[:8]) }

// Kind is what a guarded signature is over.
type Kind int

const (
	// Blocks are signed one height after the other, from genesis (0).
	Blocks Kind = iota
	// Batches are the encrypted batch records that fix an order before
	// decryption, numbered from 1 one after the other.
	Batches
	// Expiries close an encrypted batch undecrypted; each names a later
	// batch than the one before.
	Expiries
	kinds
)

// noun names one record of the kind in messages.
func (k Kind) noun() string {
	return [...]string{"block", "encrypted batch", "expiry of encrypted batch"}[k]
}

// Chain is what the guard checks: the records the store holds.
type Chain interface {
	// Last returns the store's last record of kind k (its head block, its
	// last batch record, the expiry of the highest expired batch); ok is
	// false when the store holds none of that kind.
	Last(k Kind) (b Block, ok bool, err error)
	// HashAt returns the hash of the record of kind k numbered h, and
	// false when the store holds none there.
	HashAt(k Kind, h uint64) ([32]byte, bool, error)
}

// track is the signing record of one kind.
type track struct {
	signed  *Block // the last one signed and stored; nil before the first
	signing *Block // the one being signed, recorded before the signature is made
}

// Guard is the signing record of one executor key for one instance. It is
// not safe for concurrent use; the instance serializes its writers.
type Guard struct {
	path     string
	instance [32]byte
	tracks   [kinds]track // blocks: signed is nil only while the genesis block is signed
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
	g := &Guard{path: path, instance: instance}
	g.tracks[Blocks].signed = &head
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

// Signed returns the last record of kind k signed and stored, false
// before the first.
func (g *Guard) Signed(k Kind) (Block, bool) {
	if s := g.tracks[k].signed; s != nil {
		return *s, true
	}
	return Block{}, false
}

// Path returns the guard file's path.
func (g *Guard) Path() string { return g.path }

// Check compares the guard with the store, kind by kind. A record being
// signed is settled first: kept as signed when the store holds it, else
// forgotten (its signature was made but never stored, so it never left the
// process). The store must then hold the last signed record; a store
// behind it, or holding another record with its number, is refused. A
// store ahead of the guard (a guard file older than the store) raises the
// guard to the store's last record. Any change is written before Check
// returns.
func (g *Guard) Check(c Chain) error {
	changed := false
	for k := range kinds {
		ch, err := g.tracks[k].check(k, c, g.path)
		if err != nil {
			return err
		}
		changed = changed || ch
	}
	if changed {
		return g.write()
	}
	return nil
}

func (t *track) check(k Kind, c Chain, path string) (changed bool, err error) {
	if t.signing != nil {
		h, ok, err := c.HashAt(k, t.signing.Height)
		if err != nil {
			return false, fmt.Errorf("guard: %w", err)
		}
		if ok && h == t.signing.Hash {
			t.signed = t.signing
		}
		t.signing, changed = nil, true
	}
	last, has, err := c.Last(k)
	if err != nil {
		return false, fmt.Errorf("guard: %w", err)
	}
	if t.signed != nil {
		s := *t.signed
		if !has || last.Height < s.Height {
			return false, &BehindError{Kind: k, Store: last, Empty: !has, Signed: s, Path: path}
		}
		h, ok, err := c.HashAt(k, s.Height)
		if err != nil {
			return false, fmt.Errorf("guard: %w", err)
		}
		if !ok {
			return false, &BehindError{Kind: k, Store: last, Signed: s, Path: path}
		}
		if h != s.Hash {
			return false, fmt.Errorf("the store's %s %d is %x but this executor signed %s %d as %x (%s): the store holds another history; restore a backup of this instance (docs/cli/backup.md)",
				k.noun(), s.Height, h, k.noun(), s.Height, s.Hash, path)
		}
	}
	if has && (t.signed == nil || last.Height > t.signed.Height) {
		t.signed, changed = &last, true
	}
	return changed, nil
}

// BehindError is Check's refusal of a store that lacks blocks or records
// the executor signed.
type BehindError struct {
	Kind   Kind
	Store  Block  // the store's last record of the kind
	Empty  bool   // the store holds none of the kind
	Signed Block  // the last one the executor signed
	Path   string // the guard file that records it
}

func (e *BehindError) Error() string {
	if e.Kind == Blocks {
		return fmt.Sprintf("the store is at height %d but this executor signed height %d (hash %x…, %s): committed blocks are missing; restore a backup taken at height %d or later (docs/cli/backup.md)",
			e.Store.Height, e.Signed.Height, e.Signed.Hash[:8], e.Path, e.Signed.Height)
	}
	store := "holds none"
	if !e.Empty {
		store = fmt.Sprintf("ends at %s %d", e.Kind.noun(), e.Store.Height)
	}
	return fmt.Sprintf("the store %s but this executor signed %s %d (hash %x…, %s): committed records are missing; restore a backup taken after it (docs/cli/backup.md)",
		store, e.Kind.noun(), e.Signed.Height, e.Signed.Hash[:8], e.Path)
}

// next returns the number the next record of kind k may have: the one
// after the last signed for blocks and batches, any later one for
// expiries (min, exact false).
func (t *track) next(k Kind) (n uint64, exact bool) {
	switch {
	case t.signed != nil && k == Expiries:
		return t.signed.Height + 1, false
	case t.signed != nil:
		return t.signed.Height + 1, true
	case k == Batches:
		return 1, true
	case k == Expiries:
		return 1, false
	}
	return 0, true
}

// Begin records b, a record of kind k, as about to be signed and syncs the
// file; the signature may be made once it returns. Only the record after
// the last signed one may be signed (for expiries, any later batch's), or
// the last signed one itself again (the same bytes). Call Check first, so
// that an earlier Begin whose record was never stored is settled.
func (g *Guard) Begin(k Kind, b Block) error {
	t := &g.tracks[k]
	if t.signed != nil && b == *t.signed {
		return nil
	}
	next, exact := t.next(k)
	if b.Height < next || exact && b.Height != next {
		if t.signed != nil && b.Height <= t.signed.Height {
			return fmt.Errorf("refusing to sign %s %s: this executor already signed up to %s %s", k.noun(), b, k.noun(), t.signed)
		}
		return fmt.Errorf("refusing to sign %s %s: the next %s to sign is %d", k.noun(), b, k.noun(), next)
	}
	t.signing = &b
	return g.write()
}

// Done records b, begun and now stored, as the last record of kind k
// signed.
func (g *Guard) Done(k Kind, b Block) error {
	t := &g.tracks[k]
	if t.signing == nil || *t.signing != b {
		return fmt.Errorf("guard: %s %s was not begun", k.noun(), b)
	}
	t.signed, t.signing = t.signing, nil
	return g.write()
}

// fileJSON is the guard file: blocks at the top level (as the first guard
// files had them), encrypted batch records and expiries beside them, each
// present once something of its kind was signed.
type fileJSON struct {
	Version  int          `json:"version"`
	Instance string       `json:"instance"`
	Signed   *blockJSON   `json:"signed,omitempty"`
	Signing  *blockJSON   `json:"signing,omitempty"`
	Batches  *recordsJSON `json:"batches,omitempty"`
	Expiries *recordsJSON `json:"expiries,omitempty"`
}

type blockJSON struct {
	Height uint64 `json:"height"`
	Hash   string `json:"hash"`
}

// recordsJSON is the track of batch records or expiries; height is the
// batch number.
type recordsJSON struct {
	Signed  *blockJSON `json:"signed,omitempty"`
	Signing *blockJSON `json:"signing,omitempty"`
}

func toJSON(b *Block) *blockJSON {
	if b == nil {
		return nil
	}
	return &blockJSON{Height: b.Height, Hash: hex.EncodeToString(b.Hash[:])}
}

func (t track) records() *recordsJSON {
	if t.signed == nil && t.signing == nil {
		return nil
	}
	return &recordsJSON{Signed: toJSON(t.signed), Signing: toJSON(t.signing)}
}

func (g *Guard) write() error {
	b := g.tracks[Blocks]
	raw, err := json.MarshalIndent(fileJSON{
		Version: fileVersion, Instance: hex.EncodeToString(g.instance[:]),
		Signed: toJSON(b.signed), Signing: toJSON(b.signing),
		Batches: g.tracks[Batches].records(), Expiries: g.tracks[Expiries].records(),
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
// hashes as 64 lower-case hex digits, and a record being signed only where
// the next one may be.
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
	for k, j := range [kinds]*recordsJSON{{f.Signed, f.Signing}, f.Batches, f.Expiries} {
		if j == nil {
			continue
		}
		if err := g.tracks[k].read(Kind(k), j); err != nil {
			return nil, err
		}
	}
	if b := g.tracks[Blocks]; b.signed == nil && b.signing == nil {
		return nil, errors.New("records no block")
	}
	return g, nil
}

// read fills a track from the file and checks that what it records being
// signed could be.
func (t *track) read(k Kind, j *recordsJSON) error {
	var err error
	where := func(s string) string {
		if k == Blocks {
			return s
		}
		return map[Kind]string{Batches: "batches", Expiries: "expiries"}[k] + " " + s
	}
	if t.signed, err = fromJSON(j.Signed); err != nil {
		return fmt.Errorf("%s: %w", where("signed"), err)
	}
	if t.signing, err = fromJSON(j.Signing); err != nil {
		return fmt.Errorf("%s: %w", where("signing"), err)
	}
	if k != Blocks && t.signed == nil && t.signing == nil {
		return fmt.Errorf("%s records nothing", where("track"))
	}
	if t.signing == nil {
		return nil
	}
	next, exact := t.next(k)
	switch {
	case t.signed == nil && (t.signing.Height < next || exact && t.signing.Height != next):
		return fmt.Errorf("signing %s %d with nothing signed before", k.noun(), t.signing.Height)
	case t.signed != nil && (t.signing.Height < next || exact && t.signing.Height != next):
		return fmt.Errorf("signing %s %d after %s %d", k.noun(), t.signing.Height, k.noun(), t.signed.Height)
	}
	return nil
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
