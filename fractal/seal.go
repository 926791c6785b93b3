package fractal

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// tree is the state tree over the live notes: SHA-256(state-key text) to
// note ID, under prefixTree.
var tree = statetree.New([]byte{prefixTree})

// Sealed is the result of a seal: the block (nil when no transaction was
// accepted) and the receipt of every transaction taken from the queue, in
// queue order, accepted and refused.
type Sealed struct {
	Block    *chain.Block
	Receipts []*phases.Receipt
	// Encrypted reports the encrypted batch this seal fixed, opened or is
	// waiting for; nil when no encrypted batch was involved (encrypted.go).
	Encrypted *EncryptedStatus
}

// Seal takes up to Config.MaxBlockTxs queued transactions in arrival order,
// runs them through phases 1–3 and commits, in one badger transaction, the
// effects and receipts of the accepted ones, the new block and the state
// roots, and removes every taken transaction from the queue. Refused
// transactions leave no trace but their returned receipts. If nothing is
// queued, Seal returns an empty result and writes nothing.
func (in *Instance) Seal() (*Sealed, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := in.cfg.MaxBlockTxs
	for {
		s, err := in.seal(n)
		// A block too big for one badger transaction is retried with
		// fewer transactions; the rest stay queued for the next block.
		if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
			n /= 2
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fractal: seal: %w", err)
		}
		return s, nil
	}
}

func (in *Instance) seal(max int) (*Sealed, error) {
	// Phases 1–3 read a consistent snapshot; writers are serialized by
	// in.mu, so nothing changes the notes before the commit below.
	view := in.db.NewTransaction(false)
	defer view.Discard()
	q, err := readQueue(view, max)
	if err != nil {
		return nil, err
	}
	// An encrypted batch ahead in arrival order is fixed, opened or waited
	// for first; otherwise q is cut before the first encrypted entry.
	q, s, err := in.sealEncrypted(view, q, max)
	if err != nil || s != nil {
		return s, err
	}
	if len(q) == 0 {
		return &Sealed{}, nil
	}
	txs := make([]*phases.Tx, len(q))
	for i, e := range q {
		txs[i] = e.tx
	}
	return in.commitTxs(view, txs, func(txn *badger.Txn, i int, _ *phases.Receipt) error {
		if err := txn.Delete(seqKey(prefixQueue, q[i].seq)); err != nil {
			return err
		}
		return txn.Delete(hashKey(prefixPending, txs[i].ID()))
	}, nil)
}

// commitTxs runs txs through phases 1–3 against view and commits, in one
// badger transaction, the effects and receipts of the accepted ones, the new
// block (when any was accepted) and the state roots. taken is called for
// every transaction, accepted or refused, to remove it from wherever it
// waited; finish, when not nil, is called last before the commit.
func (in *Instance) commitTxs(view *badger.Txn, txs []*phases.Tx,
	taken func(txn *badger.Txn, i int, rc *phases.Receipt) error,
	finish func(txn *badger.Txn, res *Sealed) error) (*Sealed, error) {
	sh, err := in.shielded.Begin(badgerdb.KV{Txn: view})
	if err != nil {
		return nil, err
	}
	txn := in.db.NewTransaction(true)
	defer txn.Discard()
	head, err := headHeight(txn)
	if err != nil {
		return nil, err
	}
	prev, err := in.blockAt(txn, head)
	if err != nil {
		return nil, err
	}
	// Per-transaction roots are computed in memory; only the final root's
	// new nodes are written (decision 058).
	batch := tree.Begin(badgerdb.KV{Txn: txn}, prev.StateRoot)
	root := prev.StateRoot
	b := &chain.Block{Instance: in.id, Height: head + 1, Prev: prev.Hash()}
	res := &Sealed{}
	// Each outcome is committed into txn, in block order, while later
	// transactions still run; txn commits only once all are in.
	commit := func(i int, o *phases.Outcome) error {
		id := txs[i].ID()
		res.Receipts = append(res.Receipts, &o.Receipt)
		if err := taken(txn, i, &o.Receipt); err != nil {
			return err
		}
		if o.Receipt.Status != phases.Accepted {
			return nil
		}
		if root, err = applyEffects(txn, batch, o); err != nil {
			return fmt.Errorf("transaction %x: %w", id[:8], err)
		}
		if err := sh.Commit(badgerdb.KV{Txn: txn}, txs[i], b.Height); err != nil {
			return fmt.Errorf("transaction %x: %w", id[:8], err)
		}
		if err := txn.Set(hashKey(prefixTx, id), append(u64(b.Height), txs[i].Encode()...)); err != nil {
			return err
		}
		if err := txn.Set(hashKey(prefixReceipt, id), o.Receipt.Encode()); err != nil {
			return err
		}
		b.TxIDs = append(b.TxIDs, id)
		b.Roots = append(b.Roots, root)
		return nil
	}
	// The shielded pool admits its transactions first (shielded.go).
	if err := in.executeBlock(view, sh, txs, commit); err != nil {
		return nil, err
	}
	if _, err := batch.Commit(badgerdb.KV{Txn: txn}); err != nil {
		return nil, err
	}
	if len(b.TxIDs) > 0 {
		b.TxsHash = chain.TxsHash(b.TxIDs)
		b.StateRoot = root
		if b.CommitmentRoot, err = sh.Finish(badgerdb.KV{Txn: txn}); err != nil {
			return nil, err
		}
		for _, kv := range [][2][]byte{
			{metaHead, u64(b.Height)},
			{metaRoot, root[:]},
		} {
			if err := txn.Set(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
		res.Block = b
	}
	if finish != nil {
		if err := finish(txn, res); err != nil {
			return nil, err
		}
	}
	// Everything but the block itself is in txn: the block is signed, set
	// and committed last, so that a seal that fails before wastes no
	// signature.
	if res.Block != nil {
		err = in.signAndStore(context.Background(), txn, b)
	} else {
		err = txn.Commit()
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// applyEffects deletes an accepted transaction's inputs and writes its
// outputs into txn, applies its tree changes to batch, and returns the new
// root (written when the caller commits batch). Phases 1–3 already checked
// that the inputs are live and the output keys free; the checks here guard
// the store against a disagreement.
func applyEffects(txn *badger.Txn, batch *statetree.Batch, o *phases.Outcome) (statetree.Hash, error) {
	root := batch.Root()
	for i := range o.Spent {
		n := &o.Spent[i]
		sk := n.StateKey().String()
		k := noteKey(sk)
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return root, fmt.Errorf("input %s is not live", sk)
		}
		if err != nil {
			return root, err
		}
		same := false
		if err := item.Value(func(raw []byte) error { same = bytes.Equal(raw, n.Encode()); return nil }); err != nil {
			return root, err
		}
		if !same {
			return root, fmt.Errorf("input %s differs from the live note", sk)
		}
		if err := txn.Delete(k); err != nil {
			return root, err
		}
	}
	for i := range o.Created {
		n := &o.Created[i]
		sk := n.StateKey().String()
		k := noteKey(sk)
		if _, err := txn.Get(k); err == nil {
			return root, fmt.Errorf("output key %s is occupied", sk)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return root, err
		}
		if err := txn.Set(k, n.Encode()); err != nil {
			return root, err
		}
	}
	if err := storeTransfers(txn, o); err != nil { // outbox and import index (export.go)
		return root, err
	}
	return batch.Apply(chain.EffectChanges(o))
}

// Receipt returns the stored receipt of the committed transaction id.
func (in *Instance) Receipt(id notes.Hash) (*phases.Receipt, error) {
	var rc *phases.Receipt
	err := in.db.View(func(txn *badger.Txn) error {
		raw, err := getValue(txn, hashKey(prefixReceipt, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errors.New("no committed transaction with this ID")
		}
		if err != nil {
			return err
		}
		rc, err = phases.DecodeReceipt(raw)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: receipt %x: %w", id, err)
	}
	return rc, nil
}
