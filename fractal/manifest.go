package fractal

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
)

// Storage prefixes of the verifiable chain (docs/formats/chain.md), beside
// those of layout.go.
const (
	prefixImported = 'i' // i + u64 height + 32-byte hash: a manifest imported from another copy
	prefixEvidence = 'e' // e + 32-byte pair hash: fork evidence
)

// manifestFileVersion is the first byte of a manifest export file.
const manifestFileVersion = 1

// MaxManifestFileBlocks bounds the blocks one manifest file may carry.
const MaxManifestFileBlocks = 1 << 20

// maxImported bounds the imported manifests an instance stores, all imports
// together, so other copies cannot grow its store and every later import
// without end; an import that would store more is refused whole. A
// variable only so tests can lower it.
var maxImported = 1 << 16

// maxBlockBytes bounds one block encoding inside a file or record: the
// encoding of a block of MaxBlockTxs transactions (version 1, instance 32,
// height 8, prev 32, transactions hash 32, roots 4+32n, state root 32,
// commitment root 32, executor 32, signature 64, transactions 4+32n).
const maxBlockBytes = 273 + 64*MaxBlockTxs

// EncodeManifests returns the manifest file holding blocks: version, count,
// then each block's canonical encoding as a var.
func EncodeManifests(blocks []*Block) []byte {
	w := enc.NewWriter(64 * len(blocks))
	w.U8(manifestFileVersion)
	w.U32(uint32(len(blocks)))
	for _, b := range blocks {
		w.Var(b.Encode())
	}
	return w.Bytes()
}

// DecodeManifests parses a manifest file. It checks each block's encoding
// and internal consistency, not its signature.
func DecodeManifests(data []byte) ([]*Block, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != manifestFileVersion {
		return nil, fmt.Errorf("fractal: manifest file: unknown version %d", v)
	}
	n := r.Count(MaxManifestFileBlocks, "blocks")
	var out []*Block
	for i := 0; i < n && r.Err() == nil; i++ {
		raw := r.Var(maxBlockBytes, "block")
		if r.Err() != nil {
			break
		}
		b, err := DecodeBlock(raw)
		if err != nil {
			return nil, fmt.Errorf("fractal: manifest file: block %d: %w", i, err)
		}
		out = append(out, b)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: manifest file: %w", err)
	}
	return out, nil
}

// Manifests returns this instance's signed blocks from genesis to the head.
func (in *Instance) Manifests() ([]*Block, error) {
	var out []*Block
	err := in.db.View(func(txn *badger.Txn) error {
		head, err := headHeight(txn)
		if err != nil {
			return err
		}
		for h := uint64(0); h <= head; h++ {
			b, err := in.blockAt(txn, h)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: manifests: %w", err)
	}
	return out, nil
}

// ExportManifests returns the manifest file of this instance's chain, from
// genesis to the head, and the number of blocks in it. It first records the
// head as exported (when higher than the last recorded), so that verify
// fails on a chain that later ends before a block handed out.
func (in *Instance) ExportManifests() ([]byte, int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	blocks, err := in.Manifests()
	if err != nil {
		return nil, 0, err
	}
	head := blocks[len(blocks)-1]
	err = in.db.Update(func(txn *badger.Txn) error {
		raw, err := getValue(txn, metaExported)
		if err == nil && len(raw) == 40 && binary.BigEndian.Uint64(raw) >= head.Height {
			return nil
		}
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		h := head.Hash()
		return txn.Set(metaExported, append(u64(head.Height), h[:]...))
	})
	if err != nil {
		return nil, 0, fmt.Errorf("fractal: manifest export: %w", err)
	}
	return EncodeManifests(blocks), len(blocks), nil
}

// Conflict says how two signed manifests of one instance contradict each
// other.
type Conflict uint8

const (
	SameHeight Conflict = 1 // two different blocks at one height
	SameParent Conflict = 2 // two different blocks extending one block
)

func (c Conflict) String() string {
	switch c {
	case SameHeight:
		return "same height"
	case SameParent:
		return "same parent"
	}
	return fmt.Sprintf("conflict(%d)", uint8(c))
}

// Evidence is a fork: two blocks of one instance, both validly signed by its
// executor key, that cannot both be part of its history. A is the block
// with the smaller hash, so one fork has one record.
type Evidence struct {
	Conflict Conflict
	A, B     *Block
}

const evidenceVersion = 1

// Encode returns the record: version, conflict, then both block encodings.
func (e *Evidence) Encode() []byte {
	w := enc.NewWriter(512)
	w.U8(evidenceVersion)
	w.U8(uint8(e.Conflict))
	w.Var(e.A.Encode())
	w.Var(e.B.Encode())
	return w.Bytes()
}

// DecodeEvidence parses an evidence record and checks that its two blocks
// are validly signed by one key, of one instance, in canonical order, and do
// conflict as it says.
func DecodeEvidence(data []byte) (*Evidence, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != evidenceVersion {
		return nil, fmt.Errorf("fractal: evidence: unknown version %d", v)
	}
	e := &Evidence{Conflict: Conflict(r.U8())}
	rawA, rawB := r.Var(maxBlockBytes, "block"), r.Var(maxBlockBytes, "block")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: evidence: %w", err)
	}
	var err error
	if e.A, err = DecodeBlock(rawA); err != nil {
		return nil, fmt.Errorf("fractal: evidence: %w", err)
	}
	if e.B, err = DecodeBlock(rawB); err != nil {
		return nil, fmt.Errorf("fractal: evidence: %w", err)
	}
	ha, hb := e.A.Hash(), e.B.Hash()
	if bytes.Compare(ha[:], hb[:]) >= 0 {
		return nil, errors.New("fractal: evidence: blocks out of order")
	}
	if c, ok := conflict(e.A, e.B); !ok || c != e.Conflict {
		return nil, errors.New("fractal: evidence: the blocks do not conflict as recorded")
	}
	for _, b := range []*Block{e.A, e.B} {
		if b.Executor != e.A.Executor {
			return nil, errors.New("fractal: evidence: blocks signed by different keys")
		}
		if err := VerifyBlock(b); err != nil {
			return nil, fmt.Errorf("fractal: evidence: %w", err)
		}
	}
	return e, nil
}

// conflict reports whether two blocks of one instance contradict each other.
func conflict(a, b *Block) (Conflict, bool) {
	switch {
	case a.Instance != b.Instance || a.Hash() == b.Hash():
		return 0, false
	case a.Height == b.Height:
		return SameHeight, true
	case a.Prev == b.Prev && a.Height > 0 && b.Height > 0:
		return SameParent, true
	}
	return 0, false
}

func newEvidence(c Conflict, a, b *Block) *Evidence {
	ha, hb := a.Hash(), b.Hash()
	if bytes.Compare(ha[:], hb[:]) > 0 {
		a, b = b, a
	}
	return &Evidence{Conflict: c, A: a, B: b}
}

func (e *Evidence) key() []byte {
	ha, hb := e.A.Hash(), e.B.Hash()
	return hashKey(prefixEvidence, sha256.Sum256(append(ha[:], hb[:]...)))
}

// slot names what an evidence record proves forked: its conflict kind and
// the height (SameHeight) or parent (SameParent) the two blocks share.
func (e *Evidence) slot() string {
	if e.Conflict == SameHeight {
		return string(binary.BigEndian.AppendUint64([]byte{byte(SameHeight)}, e.A.Height))
	}
	return string(append([]byte{byte(e.Conflict)}, e.A.Prev[:]...))
}

// evidenceSlots returns the slots of the stored evidence records.
func evidenceSlots(txn *badger.Txn) (map[string]bool, error) {
	slots := map[string]bool{}
	err := eachValue(txn, prefixEvidence, func(k, v []byte) error {
		e, err := DecodeEvidence(v)
		if err != nil {
			return fmt.Errorf("evidence record %x: %w", k[1:], err)
		}
		slots[e.slot()] = true
		return nil
	})
	return slots, err
}

// ImportResult says what an import did with each manifest.
type ImportResult struct {
	Known    int         // identical to a block this instance holds or imported before
	Stored   int         // new, consistent with everything known, kept for later comparison
	Evidence []*Evidence // new fork evidence found, stored
	// Unstored counts further conflicts found at a height or parent that
	// already has evidence of that kind: one record proves the fork, and
	// storing every pair would grow quadratically with an equivocator's blocks.
	Unstored int
}

// ImportManifests checks a manifest file from another copy of this
// instance: every block must be of this instance and validly signed by its
// executor key, or the whole file is refused and nothing is stored. Each
// block is then compared with this instance's chain and with manifests
// imported before; a block that conflicts with a known one at the same
// height or with the same parent is stored as evidence (never adopted), a
// new consistent one is kept. Only the first conflict found per height and
// per parent is stored (ImportResult.Unstored counts the rest), in file
// order against known blocks in the order they became known. An import
// that would keep more than maxImported manifests in all is refused whole.
func (in *Instance) ImportManifests(data []byte) (*ImportResult, error) {
	blocks, err := DecodeManifests(data)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	res := &ImportResult{}
	err = in.db.Update(func(txn *badger.Txn) error {
		g, err := in.blockAt(txn, 0)
		if err != nil {
			return err
		}
		for i, b := range blocks {
			if err := checkForeign(b, in.id, keys.PublicKey(g.Executor)); err != nil {
				return fmt.Errorf("block %d of the file: %w", i, err)
			}
		}
		known, err := in.knownBlocks(txn)
		if err != nil {
			return err
		}
		covered, err := evidenceSlots(txn)
		if err != nil {
			return err
		}
		for _, b := range blocks {
			h := b.Hash()
			if known.has(h) {
				res.Known++
				continue
			}
			if known.imported >= maxImported {
				return fmt.Errorf("this instance already holds %d imported manifests, the limit (%d); the file's block at height %d would be one more", known.imported, maxImported, b.Height)
			}
			for _, k := range known.rivals(b) {
				c, ok := conflict(k, b)
				if !ok {
					continue
				}
				e := newEvidence(c, k, b)
				if covered[e.slot()] {
					res.Unstored++
					continue
				}
				covered[e.slot()] = true
				if err := txn.Set(e.key(), e.Encode()); err != nil {
					return err
				}
				res.Evidence = append(res.Evidence, e)
			}
			if err := txn.Set(importedKey(b.Height, h), b.Encode()); err != nil {
				return err
			}
			known.add(b)
			known.imported++
			res.Stored++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: manifest import: %w", err)
	}
	return res, nil
}

// refuseImportedRival refuses to sign b when a manifest imported from
// another copy of this instance shows that its executor already signed a
// different block at b's height: signing b would make the fork.
func refuseImportedRival(txn *badger.Txn, b guard.Block) error {
	prefix := binary.BigEndian.AppendUint64([]byte{prefixImported}, b.Height)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if h := it.Item().Key()[len(prefix):]; !bytes.Equal(h, b.Hash[:]) {
			return fmt.Errorf("refusing to sign block %s: a manifest imported from another copy shows this executor signed block %d as %x…", b, b.Height, h[:min(8, len(h))])
		}
	}
	return nil
}

// checkForeign checks a block from outside against the instance ID and its
// executor key.
func checkForeign(b *Block, id [32]byte, exec keys.PublicKey) error {
	if b.Instance != id {
		return fmt.Errorf("height %d: belongs to instance %x, not this one", b.Height, b.Instance[:8])
	}
	if b.Executor != exec {
		return fmt.Errorf("height %d: not signed by this instance's executor key", b.Height)
	}
	if err := VerifyBlock(b); err != nil {
		return fmt.Errorf("height %d: invalid executor signature", b.Height)
	}
	return nil
}

func importedKey(height uint64, h [32]byte) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixImported}, height)
	return append(k, h[:]...)
}

// blockSet is the blocks an import compares against: this instance's chain
// and the manifests imported before, indexed by height and by parent so an
// import costs about one lookup per block, not one comparison with every
// known block.
type blockSet struct {
	list     []*Block // in the order added: chain by height, imported in key order, then the file's
	hashes   map[[32]byte]bool
	byHeight map[uint64][]int   // indexes into list
	byParent map[[32]byte][]int // indexes into list, blocks above genesis only
	imported int                // stored imported manifests
}

func (s *blockSet) has(h [32]byte) bool { return s.hashes[h] }

func (s *blockSet) add(b *Block) {
	i := len(s.list)
	s.list = append(s.list, b)
	s.hashes[b.Hash()] = true
	s.byHeight[b.Height] = append(s.byHeight[b.Height], i)
	if b.Height > 0 {
		s.byParent[b.Prev] = append(s.byParent[b.Prev], i)
	}
}

// rivals returns the known blocks that may conflict with b (same height, or
// same parent above genesis), in the order they were added, so evidence
// comes out in the same order whatever the maps do.
func (s *blockSet) rivals(b *Block) []*Block {
	idx := append([]int(nil), s.byHeight[b.Height]...)
	if b.Height > 0 {
		idx = append(idx, s.byParent[b.Prev]...)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out := make([]*Block, len(idx))
	for j, i := range idx {
		out[j] = s.list[i]
	}
	return out
}

func (in *Instance) knownBlocks(txn *badger.Txn) (*blockSet, error) {
	s := &blockSet{hashes: map[[32]byte]bool{}, byHeight: map[uint64][]int{}, byParent: map[[32]byte][]int{}}
	head, err := headHeight(txn)
	if err != nil {
		return nil, err
	}
	for h := uint64(0); h <= head; h++ {
		b, err := in.blockAt(txn, h)
		if err != nil {
			return nil, err
		}
		s.add(b)
	}
	err = eachValue(txn, prefixImported, func(k, v []byte) error {
		b, err := DecodeBlock(v)
		if err != nil {
			return fmt.Errorf("imported manifest %x: %w", k[1:], err)
		}
		s.add(b)
		s.imported++
		return nil
	})
	return s, err
}

// Evidence returns the stored fork evidence, in storage order.
func (in *Instance) Evidence() ([]*Evidence, error) {
	var out []*Evidence
	err := in.db.View(func(txn *badger.Txn) error {
		return eachValue(txn, prefixEvidence, func(k, v []byte) error {
			e, err := DecodeEvidence(v)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: evidence: %w", err)
	}
	return out, nil
}

func eachValue(txn *badger.Txn, prefix byte, fn func(k, v []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(it.Item().KeyCopy(nil), v); err != nil {
			return err
		}
	}
	return nil
}

// verifyImported checks every imported manifest and evidence record: each
// must decode, be signed by the executor, and sit under its own key.
func verifyImported(txn *badger.Txn, id [32]byte, exec keys.PublicKey) (int, error) {
	n := 0
	fail := func(k []byte, d string) error {
		return &VerifyError{Kind: "manifest", Tx: -1, Where: fmt.Sprintf("%x", k), Detail: d}
	}
	err := eachValue(txn, prefixImported, func(k, v []byte) error {
		b, err := DecodeBlock(v)
		if err != nil {
			return fail(k, "imported manifest is damaged: "+err.Error())
		}
		if err := checkForeign(b, id, exec); err != nil {
			return fail(k, "imported manifest: "+err.Error())
		}
		if !bytes.Equal(k, importedKey(b.Height, b.Hash())) {
			return fail(k, "imported manifest stored under another block's key")
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	err = eachValue(txn, prefixEvidence, func(k, v []byte) error {
		e, err := DecodeEvidence(v)
		if err != nil {
			return fail(k, "evidence record is damaged: "+err.Error())
		}
		if e.A.Instance != id || e.A.Executor != exec {
			return fail(k, "evidence record is about another instance or key")
		}
		if !bytes.Equal(k, e.key()) {
			return fail(k, "evidence record stored under another pair's key")
		}
		return nil
	})
	return n, err
}

// SignBlock fills b.Executor and b.Signature with key's signature over the
// block header: how a second executor of an instance signs its own result
// for the same block (the dispute game compares two such claims).
func SignBlock(b *Block, key keys.PrivateKey) error {
	b.Executor = key.Public()
	sig, err := key.Sign(rand.Reader, b.signedMessage())
	if err != nil {
		return fmt.Errorf("fractal: sign block: %w", err)
	}
	copy(b.Signature[:], sig)
	return nil
}
