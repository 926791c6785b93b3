package fractal

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Cross-instance transfer (docs/formats/cross-instance.md): the outbox of
// exports this instance committed and the index of exports it imported.
// Both live in the state tree (chain.EffectChanges), so a query proof
// against a signed block proves them, and in the store under the prefixes
// of the transfers component (layout.go).

// transfers is the per-block component of cross-instance transfer: it
// keeps the accepted outcomes that export or import and writes their
// outbox and import index entries when the block commits.
type transfers struct {
	outcomes []*phases.Outcome
}

func (t *transfers) admit(txs []*phases.Tx) []error { return make([]error, len(txs)) }

func (t *transfers) apply(r *TxResult) error {
	if o := r.Outcome; o.Receipt.Status == phases.Accepted && (len(o.Exports) > 0 || o.Import != nil) {
		t.outcomes = append(t.outcomes, o)
	}
	return nil
}

func (t *transfers) finish(*chain.Block) {}

// write stores each export under its destination and outbox key, and each
// import under its export ID (refusing a second one: phases already did,
// this guards the store).
func (t *transfers) write(w kv.Store, _ *Execution) error {
	for _, o := range t.outcomes {
		for i := range o.Exports {
			ex := &o.Exports[i]
			e := enc.NewWriter(256)
			e.Fixed(o.Receipt.TxID[:])
			e.U32(uint32(i))
			e.Var(ex.Note.Encode())
			if err := w.Set(outboxStoreKey(ex.To, chain.OutboxKey(o.Receipt.TxID, uint32(i))), e.Bytes()); err != nil {
				return err
			}
		}
		if o.Import == nil {
			continue
		}
		k := hashKey(prefixImportIx, o.Import.ExportID)
		if _, done, err := w.Get(k); err != nil {
			return err
		} else if done {
			return fmt.Errorf("export %x is already imported", o.Import.ExportID)
		}
		id := o.Created[0].ID()
		if err := w.Set(k, id[:]); err != nil {
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
