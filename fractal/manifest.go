package fractal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/keys"
)

// maxImported bounds the imported manifests an instance stores, all imports
// together, so other copies cannot grow its store and every later import
// without end; an import that would store more is refused whole. A
// variable only so tests can lower it.
var maxImported = 1 << 16

// Manifests returns this instance's signed blocks from genesis to the head.
func (in *Instance) Manifests() ([]*chain.Block, error) {
	var out []*chain.Block
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
	in.lock()
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
	return chain.EncodeManifests(blocks), len(blocks), nil
}

// evidenceKey is the storage key of an evidence record.
func evidenceKey(e *chain.Evidence) []byte { return hashKey(prefixEvidence, e.ID()) }

// slot names what an evidence record proves forked: its conflict kind and
// the height (SameHeight) or parent (SameParent) the two blocks share.
func evidenceSlot(e *chain.Evidence) string {
	if e.Conflict == chain.SameHeight {
		return string(binary.BigEndian.AppendUint64([]byte{byte(chain.SameHeight)}, e.A.Height))
	}
	return string(append([]byte{byte(e.Conflict)}, e.A.Prev[:]...))
}

// evidenceSlots returns the slots of the stored evidence records.
func evidenceSlots(txn *badger.Txn) (map[string]bool, error) {
	slots := map[string]bool{}
	err := eachValue(txn, prefixEvidence, func(k, v []byte) error {
		e, err := chain.DecodeEvidence(v)
		if err != nil {
			return fmt.Errorf("evidence record %x: %w", k[1:], err)
		}
		slots[evidenceSlot(e)] = true
		return nil
	})
	return slots, err
}

// ImportResult says what an import did with each manifest.
type ImportResult struct {
	Known    int               // identical to a block this instance holds or imported before
	Stored   int               // new, consistent with everything known, kept for later comparison
	Evidence []*chain.Evidence // new fork evidence found, stored
	// Unstored counts further conflicts found at a height or parent that
	// already has evidence of that kind: one record proves the fork, and
	// storing every pair would grow quadratically with an equivocator's blocks.
	Unstored int
	// Ahead counts certified blocks above a validator's head: consensus
	// brings them (CometBFT's catch-up); they are checked, not stored.
	Ahead int
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
//
// A validator-set instance reads certified manifest files instead
// (importCertified).
func (in *Instance) ImportManifests(data []byte) (*ImportResult, error) {
	blocks, certs, err := chain.DecodeManifestFile(data)
	if err != nil {
		return nil, err
	}
	if in.validators != nil {
		return in.importCertified(blocks, certs)
	}
	if certs != nil {
		return nil, errors.New("fractal: manifest import: the file holds certified blocks (a validator set's); this solo instance's blocks are signed by its executor")
	}
	in.lock()
	defer in.mu.Unlock()
	res := &ImportResult{}
	err = in.db.Update(func(txn *badger.Txn) error {
		g, err := in.blockAt(txn, 0)
		if err != nil {
			return err
		}
		for i, b := range blocks {
			if err := chain.VerifyBlockOf(b, in.id, keys.PublicKey(g.Executor)); err != nil {
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
				c, ok := chain.Conflicting(k, b)
				if !ok {
					continue
				}
				e := chain.NewEvidence(c, k, b)
				if covered[evidenceSlot(e)] {
					res.Unstored++
					continue
				}
				covered[evidenceSlot(e)] = true
				if err := txn.Set(evidenceKey(e), e.Encode()); err != nil {
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

func importedKey(height uint64, h [32]byte) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixImported}, height)
	return append(k, h[:]...)
}

// blockSet is the blocks an import compares against: this instance's chain
// and the manifests imported before, indexed by height and by parent so an
// import costs about one lookup per block, not one comparison with every
// known block.
type blockSet struct {
	list     []*chain.Block // in the order added: chain by height, imported in key order, then the file's
	hashes   map[[32]byte]bool
	byHeight map[uint64][]int   // indexes into list
	byParent map[[32]byte][]int // indexes into list, blocks above genesis only
	imported int                // stored imported manifests
}

func (s *blockSet) has(h [32]byte) bool { return s.hashes[h] }

func (s *blockSet) add(b *chain.Block) {
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
func (s *blockSet) rivals(b *chain.Block) []*chain.Block {
	idx := append([]int(nil), s.byHeight[b.Height]...)
	if b.Height > 0 {
		idx = append(idx, s.byParent[b.Prev]...)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out := make([]*chain.Block, len(idx))
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
		b, err := chain.DecodeBlock(v)
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
func (in *Instance) Evidence() ([]*chain.Evidence, error) {
	var out []*chain.Evidence
	err := in.db.View(func(txn *badger.Txn) error {
		return eachValue(txn, prefixEvidence, func(k, v []byte) error {
			e, err := chain.DecodeEvidence(v)
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
		b, err := chain.DecodeBlock(v)
		if err != nil {
			return fail(k, "imported manifest is damaged: "+err.Error())
		}
		if err := chain.VerifyBlockOf(b, id, exec); err != nil {
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
		e, err := chain.DecodeEvidence(v)
		if err != nil {
			return fail(k, "evidence record is damaged: "+err.Error())
		}
		if e.A.Instance != id || e.A.Executor != exec {
			return fail(k, "evidence record is about another instance or key")
		}
		if !bytes.Equal(k, evidenceKey(e)) {
			return fail(k, "evidence record stored under another pair's key")
		}
		return nil
	})
	return n, err
}
