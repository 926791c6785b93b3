package fractal

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Cross-instance transfer (docs/formats/cross-instance.md): the outbox of
// exports this instance committed and the index of exports it imported.
// Both live in the state tree, so a query proof against a signed block
// proves them, and in badger under their own prefixes.
const (
	prefixOutbox   = 'o' // o + destination[32] + outbox key[32]: txid, u32 index, note of an export
	prefixImportIx = 'x' // x + export ID[32]: ID of the note the import created
)

// storeTransfers writes an accepted outcome's outbox and import index
// entries into txn (their state-tree changes are part of
// chain.EffectChanges).
func storeTransfers(txn *badger.Txn, o *phases.Outcome) error {
	for i := range o.Exports {
		ex := &o.Exports[i]
		w := enc.NewWriter(256)
		w.Fixed(o.Receipt.TxID[:])
		w.U32(uint32(i))
		w.Var(ex.Note.Encode())
		if err := txn.Set(outboxStoreKey(ex.To, chain.OutboxKey(o.Receipt.TxID, uint32(i))), w.Bytes()); err != nil {
			return err
		}
	}
	if o.Import != nil {
		k := hashKey(prefixImportIx, o.Import.ExportID)
		if _, err := txn.Get(k); err == nil {
			return fmt.Errorf("export %x is already imported", o.Import.ExportID)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		id := o.Created[0].ID()
		if err := txn.Set(k, id[:]); err != nil {
			return err
		}
	}
	return nil
}

func outboxStoreKey(to, key [32]byte) []byte {
	return append(hashKey(prefixOutbox, to), key[:]...)
}

// Exports returns the exports this instance committed, in storage order
// (by destination, then outbox key); only those for *to when to is not nil.
func (in *Instance) Exports(to *[32]byte) ([]*chain.ExportRecord, error) {
	prefix := []byte{prefixOutbox}
	if to != nil {
		prefix = hashKey(prefixOutbox, *to)
	}
	var out []*chain.ExportRecord
	err := in.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			rec, err := storedExport(in.id, k, v)
			if err != nil {
				return fmt.Errorf("outbox entry %x: %w", k[1:], err)
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: exports: %w", err)
	}
	return out, nil
}

// storedExport rebuilds a record from its outbox entry and checks that it
// sits under its own key.
func storedExport(from [32]byte, k, v []byte) (*chain.ExportRecord, error) {
	if len(k) != 65 {
		return nil, errors.New("malformed key")
	}
	rec := &chain.ExportRecord{From: from}
	copy(rec.To[:], k[1:33])
	r := enc.NewReader(v)
	r.Into(rec.TxID[:])
	rec.Index = r.U32()
	raw := r.Var(chain.MaxNoteBytes, "note")
	if err := r.Finish(); err != nil {
		return nil, err
	}
	n, err := notes.Decode(raw)
	if err != nil {
		return nil, err
	}
	rec.Note = *n
	if ok := chain.OutboxKey(rec.TxID, rec.Index); string(k[33:]) != string(ok[:]) {
		return nil, errors.New("stored under another export's key")
	}
	return rec, nil
}
