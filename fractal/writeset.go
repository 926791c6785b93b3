package fractal

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
)

// A writeSet is a block's writes held in memory over the store as it was
// before them (base): reads see the set's writes first (decision 186).
// A pipelined seal (SealNext) builds its block into one, hands it to badger
// in one write once the block before is durable, and keeps it as the view
// the next block executes over while that write is applied. It is not
// safe for concurrent use.
type writeSet struct {
	base  kv.Reader
	m     map[string]setEntry
	order []string // keys in the order first written, for a flush in that order
	// sorted, once the set is frozen (sent: it takes no more writes), are
	// its keys in byte order, made by the first Scan and shared by every
	// view over the set, so that a Scan seeks its prefix instead of going
	// through every key of the block before (decision 186).
	sorted *sortedKeys
}

// sortedKeys are a frozen write set's keys in byte order, made once.
type sortedKeys struct {
	once sync.Once
	keys []string
}

// freeze marks the set as taking no more writes: its Scans, and those of
// the views over it, use its keys sorted once.
func (w *writeSet) freeze() { w.sorted = &sortedKeys{} }

// under returns the set's keys that start with prefix, in byte order.
func (w *writeSet) under(prefix string) []string {
	if w.sorted == nil {
		var mine []string
		for k := range w.m {
			if strings.HasPrefix(k, prefix) {
				mine = append(mine, k)
			}
		}
		slices.Sort(mine)
		return mine
	}
	s := w.sorted
	s.once.Do(func() {
		s.keys = slices.Sorted(maps.Keys(w.m))
	})
	i, _ := slices.BinarySearch(s.keys, prefix)
	j := i
	for j < len(s.keys) && strings.HasPrefix(s.keys[j], prefix) {
		j++
	}
	return s.keys[i:j]
}

// setEntry is a key's last write: a value, or its deletion.
type setEntry struct {
	value   []byte
	deleted bool
}

// newWriteSet returns an empty write set over base, with room for about
// keys writes.
func newWriteSet(base kv.Reader, keys int) *writeSet {
	return &writeSet{base: base, m: make(map[string]setEntry, keys), order: make([]string, 0, keys)}
}

// Get implements kv.Reader.
func (w *writeSet) Get(key []byte) ([]byte, bool, error) {
	if e, ok := w.m[string(key)]; ok {
		if e.deleted {
			return nil, false, nil
		}
		return bytes.Clone(e.value), true, nil
	}
	return w.base.Get(key)
}

// Scan implements kv.Reader: the base's keys under prefix merged, in byte
// order, with the set's, whose writes win.
func (w *writeSet) Scan(prefix []byte, fn func(key, value []byte) error) error {
	mine := w.under(string(prefix))
	next := 0
	// emitMine hands on the set's keys before key (all of them when key is
	// nil), skipping deletions.
	emitMine := func(key []byte) error {
		for ; next < len(mine) && (key == nil || mine[next] < string(key)); next++ {
			if e := w.m[mine[next]]; !e.deleted {
				if err := fn([]byte(mine[next]), bytes.Clone(e.value)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := w.base.Scan(prefix, func(key, value []byte) error {
		if err := emitMine(key); err != nil {
			return err
		}
		if next < len(mine) && mine[next] == string(key) {
			next++
			if e := w.m[string(key)]; !e.deleted {
				return fn(key, bytes.Clone(e.value))
			}
			return nil
		}
		return fn(key, value)
	})
	if err != nil {
		return err
	}
	return emitMine(nil)
}

// Set implements kv.Writer.
func (w *writeSet) Set(key, value []byte) error {
	w.put(key, setEntry{value: value})
	return nil
}

// Delete implements kv.Writer.
func (w *writeSet) Delete(key []byte) error {
	w.put(key, setEntry{deleted: true})
	return nil
}

func (w *writeSet) put(key []byte, e setEntry) {
	k := string(key)
	if _, ok := w.m[k]; !ok {
		w.order = append(w.order, k)
	}
	w.m[k] = e
}

// flush writes the set into txn, each key once, in the order first
// written.
func (w *writeSet) flush(txn *badger.Txn) error {
	for _, k := range w.order {
		e := w.m[k]
		var err error
		if e.deleted {
			err = txn.Delete([]byte(k))
		} else {
			err = txn.Set([]byte(k), e.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
