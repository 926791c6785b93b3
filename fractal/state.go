package fractal

import (
	"bytes"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
)

// snapshot is a read-only view of the live notes and the import index as
// of one read of a store (a committed badger transaction, or a replay's).
// It implements phases.State and phases.ImportIndex.
type snapshot struct{ r kv.Reader }

// Get returns the live note at k, or nil when there is none.
func (s snapshot) Get(k notes.StateKey) (*notes.Note, error) {
	key := noteKeyOf(&k)
	raw, ok, err := s.r.Get(key)
	if err != nil {
		return nil, fmt.Errorf("fractal: note %s: %w", key[1:], err)
	}
	if !ok {
		return nil, nil
	}
	return decodeStored(key[1:], raw)
}

// Scan calls fn for every live note whose state key matches p, in state-key
// text order. It reads from the pattern's literal prefix, so a narrow
// pattern reads only the notes under it.
func (s snapshot) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	return s.r.Scan(noteKey(p.Prefix()), func(k, raw []byte) error {
		n, err := decodeStored(k[1:], raw)
		if err != nil {
			return err
		}
		if !p.Match(n.StateKey()) {
			return nil
		}
		return fn(n)
	})
}

// Imported implements phases.ImportIndex.
func (s snapshot) Imported(id notes.Hash) (bool, error) {
	_, ok, err := s.r.Get(hashKey(prefixImportIx, id))
	if err != nil {
		return false, fmt.Errorf("fractal: import index: %w", err)
	}
	return ok, nil
}

// decodeStored decodes a stored note and checks that it lives at its own
// state key, so a damaged store is reported rather than believed.
func decodeStored(sk []byte, raw []byte) (*notes.Note, error) {
	n, err := notes.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("fractal: note %s: %w", sk, err)
	}
	var buf [256]byte // most keys' text: compared without a string of its own
	if k := n.StateKey(); !bytes.Equal(k.AppendText(buf[:0]), sk) {
		return nil, fmt.Errorf("fractal: note stored at %s belongs at %s", sk, k.String())
	}
	return n, nil
}

// Notes returns the live notes matching p, in state-key order.
func (in *Instance) Notes(p notes.Pattern) ([]*notes.Note, error) {
	var out []*notes.Note
	err := in.db.View(func(txn *badger.Txn) error {
		return snapshot{badgerdb.KV{Txn: txn}}.Scan(p, func(n *notes.Note) error {
			out = append(out, n)
			return nil
		})
	})
	return out, err
}
