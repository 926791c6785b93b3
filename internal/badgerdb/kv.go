package badgerdb

import (
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
)

// KV is a kv.Store over one badger transaction: reads see the
// transaction's own writes; writes to a read-only transaction fail with
// badger's error.
type KV struct{ Txn *badger.Txn }

var _ kv.Store = KV{}

// Get implements kv.Reader.
func (s KV) Get(key []byte) ([]byte, bool, error) {
	item, err := s.Txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

// Scan implements kv.Reader.
func (s KV) Scan(prefix []byte, fn func(key, value []byte) error) error {
	it := s.Txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: prefix})
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		item := it.Item()
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(item.Key(), v); err != nil {
			return err
		}
	}
	return nil
}

// Set implements kv.Writer.
func (s KV) Set(key, value []byte) error { return s.Txn.Set(key, value) }

// Delete implements kv.Writer.
func (s KV) Delete(key []byte) error { return s.Txn.Delete(key) }
