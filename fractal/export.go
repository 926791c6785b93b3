package fractal

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/statetree"
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

// Domain-separation contexts of the transfer hashes. State-key text never
// holds a zero byte, so none of these tree keys can be a note's.
const (
	ctxExportID    = "fractal export v1\x00"
	ctxOutboxKey   = "fractal outbox v1\x00"
	ctxOutboxEntry = "fractal outbox entry v1\x00"
	ctxImportKey   = "fractal import v1\x00"
)

// exportRecordVersion is the first byte of an ExportRecord encoding.
const exportRecordVersion = 1

// ExportRecord is one note that instance From committed, in transaction
// TxID (its Index-th export), for instance To.
type ExportRecord struct {
	From  [32]byte
	To    [32]byte
	TxID  [32]byte
	Index uint32
	Note  notes.Note
}

// ID is the export's unique name: SHA-256(context || from || txid || index).
// The destination's import index is keyed by it.
func (r *ExportRecord) ID() [32]byte {
	return exportID(r.From, r.TxID, r.Index)
}

func exportID(from, txid [32]byte, index uint32) [32]byte {
	w := enc.NewWriter(90)
	w.Fixed([]byte(ctxExportID))
	w.Fixed(from[:])
	w.Fixed(txid[:])
	w.U32(index)
	return sha256.Sum256(w.Bytes())
}

// outboxKey is the state-tree key of an export in its source's tree.
func outboxKey(txid [32]byte, index uint32) [32]byte {
	w := enc.NewWriter(60)
	w.Fixed([]byte(ctxOutboxKey))
	w.Fixed(txid[:])
	w.U32(index)
	return sha256.Sum256(w.Bytes())
}

// outboxValue is the state-tree value of an export: it binds the
// destination and the note.
func outboxValue(to [32]byte, n *notes.Note) [32]byte {
	w := enc.NewWriter(256)
	w.Fixed([]byte(ctxOutboxEntry))
	w.Fixed(to[:])
	w.Var(n.Encode())
	return sha256.Sum256(w.Bytes())
}

// importKey is the state-tree key of an import index entry.
func importKey(exportID [32]byte) [32]byte {
	return sha256.Sum256(append([]byte(ctxImportKey), exportID[:]...))
}

// Encode returns the canonical encoding: version, from, to, txid, index,
// note.
func (r *ExportRecord) Encode() []byte {
	w := enc.NewWriter(256)
	w.U8(exportRecordVersion)
	w.Fixed(r.From[:])
	w.Fixed(r.To[:])
	w.Fixed(r.TxID[:])
	w.U32(r.Index)
	w.Var(r.Note.Encode())
	return w.Bytes()
}

// DecodeExportRecord parses an export record encoding.
func DecodeExportRecord(data []byte) (*ExportRecord, error) {
	r := enc.NewReader(data)
	rec, err := readExportRecord(r)
	if err == nil {
		err = r.Finish()
	}
	if err != nil {
		return nil, fmt.Errorf("fractal: export record: %w", err)
	}
	return rec, nil
}

func readExportRecord(r *enc.Reader) (*ExportRecord, error) {
	rec := &ExportRecord{}
	if v := r.U8(); r.Err() == nil && v != exportRecordVersion {
		return nil, fmt.Errorf("unknown version %d", v)
	}
	r.Into(rec.From[:])
	r.Into(rec.To[:])
	r.Into(rec.TxID[:])
	rec.Index = r.U32()
	raw := r.Var(maxNoteBytes, "note")
	if err := r.Err(); err != nil {
		return nil, err
	}
	n, err := notes.Decode(raw)
	if err != nil {
		return nil, err
	}
	if rec.Index >= phases.MaxExports {
		return nil, fmt.Errorf("export index %d out of range", rec.Index)
	}
	rec.Note = *n
	return rec, nil
}

// transferChanges is the state-tree change list of an outcome's exports
// and import, applied after its notes' changes.
func transferChanges(o *phases.Outcome) []statetree.Change {
	var changes []statetree.Change
	for i := range o.Exports {
		v := outboxValue(o.Exports[i].To, &o.Exports[i].Note)
		changes = append(changes, statetree.Change{Key: outboxKey(o.Receipt.TxID, uint32(i)), Value: &v})
	}
	if o.Import != nil {
		id := o.Created[0].ID()
		changes = append(changes, statetree.Change{Key: importKey(o.Import.ExportID), Value: &id})
	}
	return changes
}

// storeTransfers writes an accepted outcome's outbox and import index
// entries into txn and returns their state-tree changes.
func storeTransfers(txn *badger.Txn, o *phases.Outcome) ([]statetree.Change, error) {
	for i := range o.Exports {
		ex := &o.Exports[i]
		w := enc.NewWriter(256)
		w.Fixed(o.Receipt.TxID[:])
		w.U32(uint32(i))
		w.Var(ex.Note.Encode())
		if err := txn.Set(outboxStoreKey(ex.To, outboxKey(o.Receipt.TxID, uint32(i))), w.Bytes()); err != nil {
			return nil, err
		}
	}
	if o.Import != nil {
		k := hashKey(prefixImportIx, o.Import.ExportID)
		if _, err := txn.Get(k); err == nil {
			return nil, fmt.Errorf("export %x is already imported", o.Import.ExportID)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, err
		}
		id := o.Created[0].ID()
		if err := txn.Set(k, id[:]); err != nil {
			return nil, err
		}
	}
	return transferChanges(o), nil
}

func outboxStoreKey(to, key [32]byte) []byte {
	return append(hashKey(prefixOutbox, to), key[:]...)
}

// Exports returns the exports this instance committed, in storage order
// (by destination, then outbox key); only those for *to when to is not nil.
func (in *Instance) Exports(to *[32]byte) ([]*ExportRecord, error) {
	prefix := []byte{prefixOutbox}
	if to != nil {
		prefix = hashKey(prefixOutbox, *to)
	}
	var out []*ExportRecord
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
func storedExport(from [32]byte, k, v []byte) (*ExportRecord, error) {
	if len(k) != 65 {
		return nil, errors.New("malformed key")
	}
	rec := &ExportRecord{From: from}
	copy(rec.To[:], k[1:33])
	r := enc.NewReader(v)
	r.Into(rec.TxID[:])
	rec.Index = r.U32()
	raw := r.Var(maxNoteBytes, "note")
	if err := r.Finish(); err != nil {
		return nil, err
	}
	n, err := notes.Decode(raw)
	if err != nil {
		return nil, err
	}
	rec.Note = *n
	if ok := outboxKey(rec.TxID, rec.Index); string(k[33:]) != string(ok[:]) {
		return nil, errors.New("stored under another export's key")
	}
	return rec, nil
}
