package fractal

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/notes"
)

// snapshot is a read-only view of the live notes as of one badger
// transaction. It implements phases.State.
type snapshot struct{ txn *badger.Txn }

// Get returns the live note at k, or nil when there is none.
func (s snapshot) Get(k notes.StateKey) (*notes.Note, error) {
	sk := k.String()
	raw, err := getValue(s.txn, noteKey(sk))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fractal: note %s: %w", sk, err)
	}
	return decodeStored(sk, raw)
}

// Scan calls fn for every live note whose state key matches p, in state-key
// text order. It seeks to the pattern's literal prefix, so a narrow pattern
// reads only the notes under it.
func (s snapshot) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	prefix := noteKey(p.Prefix())
	it := s.txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: prefix})
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		item := it.Item()
		sk := string(item.Key()[1:])
		raw, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("fractal: note %s: %w", sk, err)
		}
		n, err := decodeStored(sk, raw)
		if err != nil {
			return err
		}
		if !p.Match(n.StateKey()) {
			continue
		}
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// decodeStored decodes a stored note and checks that it lives at its own
// state key, so a damaged store is reported rather than believed.
func decodeStored(sk string, raw []byte) (*notes.Note, error) {
	n, err := notes.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("fractal: note %s: %w", sk, err)
	}
	if got := n.StateKey().String(); got != sk {
		return nil, fmt.Errorf("fractal: note stored at %s belongs at %s", sk, got)
	}
	return n, nil
}

// Notes returns the live notes matching p, in state-key order.
func (in *Instance) Notes(p notes.Pattern) ([]*notes.Note, error) {
	var out []*notes.Note
	err := in.db.View(func(txn *badger.Txn) error {
		return snapshot{txn}.Scan(p, func(n *notes.Note) error {
			out = append(out, n)
			return nil
		})
	})
	return out, err
}
