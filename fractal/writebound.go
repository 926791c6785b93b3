package fractal

import (
	"fmt"

	"github.com/fractalvm/fractal/fractal/kv"
)

// A block's writes are bounded by a count of Fractal's own (decision
// 167), not by the store's accounting: every key and value a commit writes
// (a deletion writes a key) counts its length plus writeEntryOverhead, and
// a block whose writes pass MaxBlockWriteBytes or MaxBlockWriteEntries is
// cut (Seal's halving, ExecuteDecided's cut). Whether a block is cut
// depends only on what it writes, so every validator cuts it at the same
// place whatever the store. The bounds are below what one badger write
// takes with the options every home opens with (badger refuses a write of
// 15% of its 64 MiB memtable, 10,066,329 bytes by an estimate of at most
// key + value + 12 per entry, or of 104,857 entries): TestBlockWriteBound
// commits a write at each bound.
const (
	MaxBlockWriteBytes   = 9_961_472 // 9.5 MiB
	MaxBlockWriteEntries = 100_000
	writeEntryOverhead   = 12 // what badger adds per entry: two meta bytes and the key's version
)

// errBlockWritesOverBound is what a write past the bounds answers.
var errBlockWritesOverBound = fmt.Errorf("the block's writes pass %d bytes or %d entries", MaxBlockWriteBytes, MaxBlockWriteEntries)

// boundedWrite is a block's store write that counts what goes into it and
// refuses a write that takes it past the bounds.
type boundedWrite struct {
	kv.Store
	bytes, entries int
	side           *sideLog // a validator set's decided block: its side records (sidedigest.go)
}

// Set implements kv.Writer.
func (w *boundedWrite) Set(key, value []byte) error {
	if err := w.count(len(key) + len(value)); err != nil {
		return err
	}
	w.side.set(key, value)
	return w.Store.Set(key, value)
}

// Delete implements kv.Writer.
func (w *boundedWrite) Delete(key []byte) error {
	if err := w.count(len(key)); err != nil {
		return err
	}
	w.side.delete(key)
	return w.Store.Delete(key)
}

func (w *boundedWrite) count(n int) error {
	w.bytes += n + writeEntryOverhead
	w.entries++
	if w.bytes > MaxBlockWriteBytes || w.entries > MaxBlockWriteEntries {
		return errBlockWritesOverBound
	}
	return nil
}

// room says whether kvs can still be written within the bounds, without
// writing or counting them.
func (w *boundedWrite) room(kvs [][2][]byte) error {
	c := *w
	for _, kv := range kvs {
		if err := c.count(len(kv[0]) + len(kv[1])); err != nil {
			return err
		}
	}
	return nil
}
