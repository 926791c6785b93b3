// Package kv is the small key-value interface through which the state tree
// and the instance's components (the shielded pool, the transfer outbox)
// read and write their storage, so that none of them imports a storage
// engine. The instance backs it with badger transactions
// (internal/badgerdb); Map is a store in memory, enough for a dispute
// referee's witness and for tests.
package kv

import (
	"bytes"
	"slices"
	"strings"
)

// Reader reads a store as it is at one moment.
type Reader interface {
	// Get returns the value stored under key, which the caller may keep
	// and change; ok is false when the key holds nothing.
	Get(key []byte) (value []byte, ok bool, err error)
	// Scan calls fn for every key that starts with prefix, in byte order
	// of the keys, with its value. key is valid only during the call;
	// value is the caller's. An error from fn stops the scan and is
	// returned.
	Scan(prefix []byte, fn func(key, value []byte) error) error
}

// Writer changes a store. A store may keep the key and value slices until
// the write ends, so the caller must not change them after the call.
type Writer interface {
	Set(key, value []byte) error
	// Delete removes key; deleting a key that holds nothing is no error.
	Delete(key []byte) error
}

// Store reads and writes one transaction of a store: its reads see its
// own earlier writes.
type Store interface {
	Reader
	Writer
}

// Map is a Store held in a Go map, keyed by the key bytes as a string. It
// is not safe for concurrent use.
type Map map[string][]byte

// Get implements Reader.
func (m Map) Get(key []byte) ([]byte, bool, error) {
	v, ok := m[string(key)]
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(v), true, nil
}

// Scan implements Reader.
func (m Map) Scan(prefix []byte, fn func(key, value []byte) error) error {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn([]byte(k), bytes.Clone(m[k])); err != nil {
			return err
		}
	}
	return nil
}

// Set implements Writer; the map keeps a copy of value.
func (m Map) Set(key, value []byte) error {
	m[string(key)] = bytes.Clone(value)
	return nil
}

// Delete implements Writer.
func (m Map) Delete(key []byte) error {
	delete(m, string(key))
	return nil
}
