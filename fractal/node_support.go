package fractal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// What a long-running node (package fractal/node) reads of an instance
// beyond what the command-line verbs need: where a transaction is, pages of
// notes and exports, the queue depth, a snapshot of the notes before a seal,
// a block's signed header alone, and a simulation that commits nothing.

// TxState says where a transaction is.
type TxState uint8

const (
	TxUnknown   TxState = iota // neither queued nor committed
	TxQueued                   // admitted, waiting for a block
	TxCommitted                // executed and committed in a block
)

// ErrCommitted reports a transaction that was already executed (a replay).
var ErrCommitted = errors.New("transaction already executed")

// TxState returns where the transaction id is and, when committed, the
// height of its block.
func (in *Instance) TxState(id notes.Hash) (TxState, uint64, error) {
	var st TxState
	var height uint64
	err := in.db.View(func(txn *badger.Txn) (err error) {
		st, height, err = txState(txn, id)
		return err
	})
	if err != nil {
		return TxUnknown, 0, fmt.Errorf("fractal: transaction %x: %w", id[:8], err)
	}
	if st == TxUnknown && in.checkQueued(id) != nil {
		st = TxQueued
	}
	return st, height, nil
}

func txState(txn *badger.Txn, id notes.Hash) (TxState, uint64, error) {
	item, err := txn.Get(hashKey(prefixTx, id))
	if err == nil {
		var h uint64
		err = item.Value(func(raw []byte) error {
			if len(raw) < 8 {
				return fmt.Errorf("transaction index entry has %d bytes", len(raw))
			}
			h = binary.BigEndian.Uint64(raw)
			return nil
		})
		return TxCommitted, h, err
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return TxUnknown, 0, err
	}
	if _, err := txn.Get(hashKey(prefixPending, id)); err == nil {
		return TxQueued, 0, nil
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return TxUnknown, 0, err
	}
	return TxUnknown, 0, nil
}

// Transaction returns the queued or committed transaction id with its state
// and, when committed, its block's height. An unknown ID gives TxUnknown and
// a nil transaction.
func (in *Instance) Transaction(id notes.Hash) (*phases.Tx, TxState, uint64, error) {
	var raw []byte
	var st TxState
	var height uint64
	err := in.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, hashKey(prefixTx, id))
		if err == nil {
			if len(v) < 8 {
				return fmt.Errorf("transaction index entry has %d bytes", len(v))
			}
			st, height, raw = TxCommitted, binary.BigEndian.Uint64(v), v[8:]
			return nil
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		seq, err := getValue(txn, hashKey(prefixPending, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			if e := in.mem.lookup(id); e != nil {
				st, raw = TxQueued, e.tx.Encode()
			}
			return nil
		}
		if err != nil {
			return err
		}
		if len(seq) != 8 {
			return fmt.Errorf("pending entry has %d bytes", len(seq))
		}
		st = TxQueued
		raw, err = getValue(txn, seqKey(prefixQueue, binary.BigEndian.Uint64(seq)))
		return err
	})
	if err == nil && raw != nil {
		var tx *phases.Tx
		if tx, err = phases.DecodeTx(raw); err == nil && tx.ID() != id {
			err = errors.New("stored under another transaction's ID")
		}
		if err == nil {
			return tx, st, height, nil
		}
	}
	if err != nil {
		return nil, TxUnknown, 0, fmt.Errorf("fractal: transaction %x: %w", id[:8], err)
	}
	return nil, TxUnknown, 0, nil
}

// NotesPage returns up to limit live notes matching p whose state keys sort
// after the state key text after ("" for the first page), in state-key
// order, and the head height they were read at. It looks at no more than
// budget stored notes, so a sparse pattern costs a bounded read per page:
// next is where the following page starts (the last state key looked at),
// empty when nothing is left; a page may hold fewer than limit notes, even
// none, while next is not empty.
func (in *Instance) NotesPage(p notes.Pattern, after string, limit, budget int) (page []*notes.Note, next string, height uint64, err error) {
	err = in.db.View(func(txn *badger.Txn) error {
		if height, err = headHeight(txn); err != nil {
			return err
		}
		prefix := noteKey(p.Prefix())
		start := prefix
		if k := noteKey(after + "\x00"); after != "" && string(k) > string(start) {
			start = k
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		looked, last := 0, ""
		for it.Seek(start); it.Valid(); it.Next() {
			if len(page) == limit || looked == budget {
				next = last
				return nil
			}
			looked++
			key := it.Item().Key()[1:]
			sk := string(key)
			raw, err := it.Item().ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("note %s: %w", sk, err)
			}
			n, err := decodeStored(key, raw)
			if err != nil {
				return err
			}
			last = sk
			if p.Match(n.StateKey()) {
				page = append(page, n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", 0, fmt.Errorf("fractal: notes: %w", err)
	}
	return page, next, height, nil
}

// ExportsPage returns up to limit exports of this instance in storage order
// (by destination, then outbox key), only those for *to when to is not nil,
// starting after the position after (nil for the first page); next is the
// position of the last one returned, nil when nothing is left. heights holds
// the height of the block that committed each export's transaction.
func (in *Instance) ExportsPage(to *[32]byte, after []byte, limit int) (recs []*chain.ExportRecord, heights []uint64, next []byte, err error) {
	prefix := []byte{prefixOutbox}
	if to != nil {
		prefix = hashKey(prefixOutbox, *to)
	}
	err = in.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		start := prefix
		if after != nil {
			start = append(append([]byte{prefixOutbox}, after...), 0)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if len(recs) == limit {
				next = exportPosition(recs[len(recs)-1])
				return nil
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			rec, err := storedExport(in.id, k, v)
			if err != nil {
				return fmt.Errorf("outbox entry %x: %w", k[1:], err)
			}
			st, h, err := txState(txn, rec.TxID)
			if err != nil {
				return err
			}
			if st != TxCommitted {
				return fmt.Errorf("outbox entry %x: its transaction is not committed", k[1:])
			}
			recs, heights = append(recs, rec), append(heights, h)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fractal: exports: %w", err)
	}
	return recs, heights, next, nil
}

// position is where an export sits in the outbox's storage order: its
// destination and outbox key (64 bytes).
func exportPosition(r *chain.ExportRecord) []byte {
	k := chain.OutboxKey(r.TxID, r.Index)
	return append(append([]byte(nil), r.To[:]...), k[:]...)
}

// QueueDepth returns the number of queued submissions, plain and encrypted.
func (in *Instance) QueueDepth() (int, error) {
	// The seal in flight settled first: its transactions are then either
	// committed or queued again.
	in.lock()
	defer in.mu.Unlock()
	n := 0
	err := in.db.View(func(txn *badger.Txn) error {
		n = in.countQueued(txn)
		return nil
	})
	return n, err
}

// Snapshot is a read-only view of the live notes as they were when it was
// taken; a node takes one before a seal to name the notes the seal spends.
// Close it when done.
type Snapshot struct{ txn *badger.Txn }

// Snapshot returns a view of the live notes as they are now.
func (in *Instance) Snapshot() *Snapshot { return &Snapshot{in.db.NewTransaction(false)} }

// Note returns the note that lived at k when the snapshot was taken, or nil.
func (s *Snapshot) Note(k notes.StateKey) (*notes.Note, error) {
	return snapshot{badgerdb.KV{Txn: s.txn}}.Get(k)
}

// Close releases the snapshot.
func (s *Snapshot) Close() { s.txn.Discard() }

// Simulate runs the admission checks and phases 1–3 of tx against the state
// after the head block, as the next seal would if tx were first in its
// block, and commits nothing. It returns the receipt (with the gas of each
// phase and the fee it would pay) and the head height.
// With allowUnsigned, missing signatures are taken as given (the signatures
// present are still verified); tx is then marked verified. A transaction
// already executed is refused with ErrCommitted; one that is malformed,
// oversize, wrongly signed or offers a fee admission refuses (decision
// 140) with the reason. Simulate does not wait for
// seals or submissions: it reads one snapshot.
func (in *Instance) Simulate(ctx context.Context, tx *phases.Tx, allowUnsigned bool) (*phases.Receipt, uint64, error) {
	if _, err := in.checkForm(tx); err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	if err := in.CheckTxGas(tx); err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	if err := verifyPresent(tx, allowUnsigned); err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	view := in.db.NewTransaction(false)
	defer view.Discard()
	st, h, err := txState(view, tx.ID())
	if err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	if st == TxCommitted {
		return nil, 0, fmt.Errorf("fractal: simulate: %w in block %d", ErrCommitted, h)
	}
	if err := in.checkFee(badgerdb.KV{Txn: view}, tx, false); err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	head, err := headHeight(view)
	if err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	p := &Proposal{Producer: in.pub, Txs: []*phases.Tx{tx}}
	if p.Parent, err = in.blockAt(view, head); err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	var rc *phases.Receipt
	_, err = in.execute(ctx, badgerdb.KV{Txn: view}, p, func(r *TxResult) error {
		rc = &r.Outcome.Receipt
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("fractal: simulate: %w", err)
	}
	return rc, head, nil
}

// verifyPresent checks tx's signatures: all of them, or with allowUnsigned
// only those present, after which tx is marked verified so that admission
// does not ask for the missing ones.
func verifyPresent(tx *phases.Tx, allowUnsigned bool) error {
	if !allowUnsigned {
		return tx.VerifySignatures()
	}
	if len(tx.Signers) == 0 {
		return phases.ErrNoSigners
	}
	if err := VerifyPresentSignatures(tx); err != nil {
		return err
	}
	tx.MarkVerified()
	return nil
}

// VerifyPresentSignatures checks every signature tx carries and names the
// first signer whose signature does not verify; missing signatures are not
// an error (a transaction being signed apart, or simulated before all its
// signers signed).
func VerifyPresentSignatures(tx *phases.Tx) error {
	id := tx.ID()
	for i, sig := range tx.Signatures {
		if len(sig) == 0 {
			continue
		}
		if err := keys.Verify(tx.Signers[i], id[:], sig); err != nil {
			return fmt.Errorf("signer %d (%s): %w", i+1, tx.Signers[i], err)
		}
	}
	return nil
}

// ImportedNote returns the ID of the note an import of the export named id
// created here, and whether it was imported.
func (in *Instance) ImportedNote(id [32]byte) (notes.Hash, bool, error) {
	var note notes.Hash
	var ok bool
	err := in.db.View(func(txn *badger.Txn) error {
		raw, err := getValue(txn, hashKey(prefixImportIx, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(raw) != 32 {
			return fmt.Errorf("import index entry has %d bytes", len(raw))
		}
		copy(note[:], raw)
		ok = true
		return nil
	})
	if err != nil {
		return note, false, fmt.Errorf("fractal: import index: %w", err)
	}
	return note, ok, nil
}

// PendingPayloads returns the encodings of the payloads of the batch waiting
// for shares, in slot order (what a keyholder computes its shares over), or
// nil when none waits.
func (in *Instance) PendingPayloads() ([][]byte, error) {
	var out [][]byte
	err := in.withWaiting(func(_ *badger.Txn, p *pendingBatch) error {
		for _, pl := range p.payloads {
			out = append(out, pl.Encode())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: pending payloads: %w", err)
	}
	return out, nil
}
