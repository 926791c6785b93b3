package fractal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// VerifyError names the first place where the stored chain disagrees with
// its own signatures, hashes or re-execution.
type VerifyError struct {
	Kind   string   `json:"kind"`            // "block", "transaction", "receipt", "root", "note", "code", "manifest", "guard", "store"
	Height uint64   `json:"height"`          // block height, when the finding is about a block
	Tx     int      `json:"tx"`              // index in the block; -1 when not about one transaction
	TxID   [32]byte `json:"-"`               // the transaction's ID when Tx >= 0
	Where  string   `json:"where,omitempty"` // the state key or storage key, for note, code, manifest and store findings
	Detail string   `json:"detail"`
}

func (e *VerifyError) Error() string {
	switch {
	case e.Tx >= 0:
		return fmt.Sprintf("verify: block %d transaction %d (%x): %s: %s", e.Height, e.Tx, e.TxID[:8], e.Kind, e.Detail)
	case e.Where != "":
		return fmt.Sprintf("verify: %s %s: %s", e.Kind, e.Where, e.Detail)
	default:
		return fmt.Sprintf("verify: block %d: %s: %s", e.Height, e.Kind, e.Detail)
	}
}

// VerifyReport sums up a successful verification.
type VerifyReport struct {
	Instance     [32]byte
	Height       uint64 // last block
	Transactions int
	Notes        int
	StateRoot    [32]byte
	Manifests    int // imported manifests checked
}

// Verify checks the whole chain held in the store: the genesis descriptor,
// every block's signature, hash link and transactions hash, every stored
// transaction against its ID, and then re-executes every block from genesis
// into a fresh temporary store, comparing every per-transaction root, the
// final roots and every stored receipt with the replay, and finally the live
// notes, the outbox and the import index with the replayed ones. It also
// checks deployed code against its hash, imported manifests against their
// signatures, that the chain reaches every block known to have been signed
// or handed out (checkReach), and every encrypted batch against the blocks
// it opened into (decision 079). The first disagreement is returned as a
// *VerifyError. progress, when not nil, is called after each block with the
// blocks done and the total.
func (in *Instance) Verify(ctx context.Context, progress func(done, total uint64)) (*VerifyReport, error) {
	rep := &VerifyReport{Instance: in.id}
	// The guard is read before the snapshot: a block it records as signed
	// is committed before it is recorded, so the snapshot holds it.
	var signed guard.Block
	var hasSigned bool
	if in.guard != nil {
		in.lock()
		signed, hasSigned = in.guard.Signed(guard.Blocks)
		in.mu.Unlock()
	}
	rp, err := in.newReplay()
	if err != nil {
		return nil, fmt.Errorf("fractal: verify: %w", err)
	}
	defer rp.close()
	err = in.db.View(func(txn *badger.Txn) error {
		if err := checkCode(txn); err != nil {
			return err
		}
		exec, err := in.checkGenesis(txn)
		if err != nil {
			return err
		}
		head, err := headHeight(txn)
		if err != nil {
			return &VerifyError{Kind: "store", Tx: -1, Where: "head", Detail: err.Error()}
		}
		prev, err := in.verifiedBlock(txn, 0, exec)
		if err != nil {
			return err
		}
		// Encrypted batches: the order fixed before decryption (encrypted_verify.go).
		if err := in.verifyBatches(txn, exec, head); err != nil {
			return err
		}
		for h := uint64(1); h <= head; h++ {
			b, err := in.verifiedBlock(txn, h, exec)
			if err != nil {
				return err
			}
			if b.Prev != prev.Hash() {
				return &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: "previous-block hash does not match block " + fmt.Sprint(h-1)}
			}
			txs, err := storedTxs(txn, b)
			if err != nil {
				return err
			}
			x, err := rp.block(ctx, prev, b, txs, func(r *TxResult) error {
				return compareTx(txn, b, r.Index, r.Outcome, r.Root)
			})
			if err != nil {
				return err
			}
			if err := compareBlock(b, x); err != nil {
				return err
			}
			rep.Transactions += len(txs)
			prev = b
			if progress != nil {
				progress(h, head)
			}
		}
		rep.Height, rep.StateRoot = head, prev.StateRoot
		if err := checkTail(txn, head, prev.StateRoot, rep.Transactions); err != nil {
			return err
		}
		if rep.Notes, err = compareReplayed(txn, rp.db); err != nil {
			return err
		}
		if rep.Manifests, err = verifyImported(txn, in.id, exec); err != nil {
			return err
		}
		return in.checkReach(txn, head, exec, signed, hasSigned)
	})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return nil, ve
		}
		return nil, fmt.Errorf("fractal: verify: %w", err)
	}
	return rep, nil
}

// checkReach checks that the chain, ending at block head, reaches every
// block known to have been signed or handed out: the last block the guard
// records as signed, the last block exported in a manifest file, and every
// manifest imported from another copy (all signed by this instance's
// executor, checked by verifyImported before). A chain shorter than any of
// them has lost committed blocks; one holding another block at the height
// of the guard's or the export's block is another history. An imported
// manifest that differs from the chain at a height the chain holds is fork
// evidence, kept apart (decision 056).
func (in *Instance) checkReach(txn *badger.Txn, head uint64, exec keys.PublicKey, signed guard.Block, hasSigned bool) error {
	reach := func(kind, where, what string, b guard.Block, sameHash bool) error {
		fail := func(d string) error { return &VerifyError{Kind: kind, Tx: -1, Where: where, Detail: d} }
		if b.Height > head {
			return fail(fmt.Sprintf("%s block %d (hash %x…) but the chain ends at block %d: committed blocks are missing", what, b.Height, b.Hash[:8], head))
		}
		if !sameHash {
			return nil
		}
		ours, err := in.verifiedBlock(txn, b.Height, exec)
		if err != nil {
			return err
		}
		if h := ours.Hash(); h != b.Hash {
			return fail(fmt.Sprintf("%s block %d as %x but the chain's block %d is %x", what, b.Height, b.Hash, b.Height, h))
		}
		return nil
	}
	if hasSigned {
		if err := reach("guard", in.guard.Path(), "this executor signed", signed, true); err != nil {
			return err
		}
	}
	raw, err := getValue(txn, metaExported)
	switch {
	case err == nil && len(raw) == 40:
		b := guard.Block{Height: binary.BigEndian.Uint64(raw)}
		copy(b.Hash[:], raw[8:])
		if err := reach("manifest", "exported", "a manifest file exported", b, true); err != nil {
			return err
		}
	case err == nil:
		return &VerifyError{Kind: "store", Tx: -1, Where: "exported", Detail: fmt.Sprintf("record has %d bytes", len(raw))}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	return eachValue(txn, prefixImported, func(k, v []byte) error {
		b, err := chain.DecodeBlock(v) // checked by verifyImported before
		if err != nil {
			return err
		}
		return reach("manifest", hex.EncodeToString(k), "another copy's manifest, imported, holds", guard.Block{Height: b.Height, Hash: b.Hash()}, false)
	})
}

// checkCode checks every deployed fragment against the hash it is stored
// under, so the replay runs exactly the code the transactions named.
func checkCode(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixCode}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		src, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if len(k) != 33 || !bytes.Equal(k[1:], hashOf(src)) {
			return &VerifyError{Kind: "code", Tx: -1, Where: hex.EncodeToString(k[1:]), Detail: "stored code does not hash to its name"}
		}
	}
	return nil
}

func hashOf(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// checkGenesis checks that the instance ID is the hash of the stored genesis
// descriptor and that the genesis block names its executor; it returns the
// executor key every block must be signed by.
func (in *Instance) checkGenesis(txn *badger.Txn) (keys.PublicKey, error) {
	desc, err := getValue(txn, metaGenesis)
	if err != nil {
		return keys.PublicKey{}, &VerifyError{Kind: "store", Tx: -1, Where: "genesis descriptor", Detail: err.Error()}
	}
	gen, err := chain.DecodeGenesis(desc)
	if err != nil || sha256.Sum256(desc) != in.id {
		return keys.PublicKey{}, &VerifyError{Kind: "store", Tx: -1, Where: "genesis descriptor", Detail: "does not hash to the instance ID"}
	}
	if gen.ValidatorSet != (in.validators != nil) {
		return keys.PublicKey{}, &VerifyError{Kind: "store", Tx: -1, Where: "genesis descriptor", Detail: fmt.Sprintf("names a validator set: %v, this instance's kind: %v", gen.ValidatorSet, in.validators != nil)}
	}
	exec := gen.Executor
	g, err := in.verifiedBlock(txn, 0, exec)
	if err != nil {
		return exec, err
	}
	if g.StateRoot != statetree.EmptyRoot || len(g.TxIDs) != 0 || g.Prev != ([32]byte{}) {
		return exec, &VerifyError{Kind: "block", Tx: -1, Detail: "genesis block is not empty"}
	}
	return exec, nil
}

// verifiedBlock reads block h and checks its encoding, instance, height and
// executor signature.
func (in *Instance) verifiedBlock(txn *badger.Txn, h uint64, exec keys.PublicKey) (*chain.Block, error) {
	raw, err := getValue(txn, seqKey(prefixBlock, h))
	if err != nil {
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: "missing: " + err.Error()}
	}
	b, err := chain.DecodeBlock(raw)
	if err != nil {
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: err.Error()}
	}
	switch {
	case b.Instance != in.id:
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: fmt.Sprintf("names instance %x", b.Instance[:8])}
	case b.Height != h:
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: fmt.Sprintf("stored at height %d but says %d", h, b.Height)}
	case b.Executor != exec && in.validators != nil:
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: "does not name the instance's validator set"}
	case b.Executor != exec:
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: "not signed by the instance's executor key"}
	case in.validators != nil && b.Signature != [64]byte{}:
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: "a validator set's block carries a signature"}
	case in.validators != nil:
		return b, nil // certified by its validators' commits, which the store does not hold
	}
	if err := chain.VerifyBlock(b); err != nil {
		return nil, &VerifyError{Kind: "block", Height: h, Tx: -1, Detail: "bad executor signature"}
	}
	return b, nil
}

// Transactions returns the stored transactions of b, in block order, each
// checked against its ID.
func (in *Instance) Transactions(b *chain.Block) ([]*phases.Tx, error) {
	var txs []*phases.Tx
	err := in.db.View(func(txn *badger.Txn) (err error) {
		txs, err = storedTxs(txn, b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: %w", err)
	}
	return txs, nil
}

// storedTxs reads the transactions of b from the transaction index and
// checks each against its ID and block.
func storedTxs(txn *badger.Txn, b *chain.Block) ([]*phases.Tx, error) {
	txs := make([]*phases.Tx, len(b.TxIDs))
	for i, id := range b.TxIDs {
		fail := func(d string) error {
			return &VerifyError{Kind: "transaction", Height: b.Height, Tx: i, TxID: id, Detail: d}
		}
		raw, err := getValue(txn, hashKey(prefixTx, id))
		if err != nil {
			return nil, fail("not stored: " + err.Error())
		}
		if len(raw) < 8 || binary.BigEndian.Uint64(raw) != b.Height {
			return nil, fail("stored transaction is not indexed under this block")
		}
		tx, err := phases.DecodeTx(raw[8:])
		if err != nil {
			return nil, fail("stored transaction is damaged: " + err.Error())
		}
		if tx.ID() != id {
			return nil, fail("stored transaction does not match its ID")
		}
		txs[i] = tx
	}
	return txs, nil
}

// compareTx compares one replayed transaction with the stored block and
// receipt.
func compareTx(txn *badger.Txn, b *chain.Block, i int, o *phases.Outcome, root [32]byte) error {
	id := b.TxIDs[i]
	fail := func(kind, d string) error {
		return &VerifyError{Kind: kind, Height: b.Height, Tx: i, TxID: id, Detail: d}
	}
	if !o.Committed() {
		return fail("transaction", "refused on replay without paying a fee: "+o.Receipt.Err().Error())
	}
	if root != b.Roots[i] {
		return fail("root", fmt.Sprintf("block says root %x after it, the replay gives %x", b.Roots[i][:8], root[:8]))
	}
	raw, err := getValue(txn, hashKey(prefixReceipt, id))
	if err != nil {
		return fail("receipt", "not stored: "+err.Error())
	}
	if !bytes.Equal(raw, o.Receipt.Encode()) {
		return fail("receipt", "stored receipt differs from the replay")
	}
	return nil
}

// checkTail checks what lies beyond the blocks: the head's root, no block
// past the head, and exactly one index entry and receipt per committed
// transaction.
func checkTail(txn *badger.Txn, head uint64, root [32]byte, txCount int) error {
	raw, err := getValue(txn, metaRoot)
	if err != nil || !bytes.Equal(raw, root[:]) {
		return &VerifyError{Kind: "store", Tx: -1, Where: "state root", Detail: "stored head root differs from the last block's"}
	}
	if _, err := txn.Get(seqKey(prefixBlock, head+1)); err == nil {
		return &VerifyError{Kind: "block", Height: head + 1, Tx: -1, Detail: "stored beyond the head"}
	}
	for _, p := range []struct {
		prefix byte
		what   string
	}{{prefixTx, "transaction index"}, {prefixReceipt, "receipts"}} {
		if n := countPrefix(txn, []byte{p.prefix}); n != txCount {
			return &VerifyError{Kind: "store", Tx: -1, Where: p.what, Detail: fmt.Sprintf("%d entries for %d committed transactions", n, txCount)}
		}
	}
	return nil
}

func countPrefix(txn *badger.Txn, prefix []byte) int {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// replayedSets are the stored sets that sealing writes beside the state
// tree and that the replay rebuilds: the live notes, the outbox and the
// import index (which refuses a second import of one export, so a missing
// entry must not pass). Each is compared entry by entry with the replay.
var replayedSets = []struct {
	prefix byte
	kind   string // the finding's Kind, and the noun of its detail
	where  func(k []byte) string
}{
	{prefixNote, "note", func(k []byte) string { return string(k[1:]) }},
	{prefixOutbox, "outbox", func(k []byte) string { return hex.EncodeToString(k[1:]) }},
	{prefixImportIx, "import index", func(k []byte) string { return hex.EncodeToString(k[1:]) }},
}

// compareReplayed compares every set of replayedSets with the replay and
// returns the number of live notes.
func compareReplayed(txn *badger.Txn, replayed *badger.DB) (int, error) {
	rtxn := replayed.NewTransaction(false)
	defer rtxn.Discard()
	notes := 0
	for _, s := range replayedSets {
		n, err := compareSet(txn, rtxn, s.prefix, func(k []byte, d string) error {
			return &VerifyError{Kind: s.kind, Tx: -1, Where: s.where(k), Detail: strings.ReplaceAll(d, "entry", s.kind)}
		})
		if err != nil {
			return 0, err
		}
		if s.prefix == prefixNote {
			notes = n
		}
	}
	return notes, nil
}

// compareSet walks the stored and the replayed entries under prefix side
// by side and fails at the first key where they differ.
func compareSet(txn, rtxn *badger.Txn, prefix byte, fail func(k []byte, d string) error) (int, error) {
	opts := badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte{prefix}}
	a, b := txn.NewIterator(opts), rtxn.NewIterator(opts)
	defer a.Close()
	defer b.Close()
	n := 0
	a.Rewind()
	b.Rewind()
	for ; a.Valid() || b.Valid(); a.Next() {
		switch {
		case !b.Valid():
			return n, fail(a.Item().Key(), "stored but not in the replay")
		case !a.Valid():
			return n, fail(b.Item().Key(), "in the replay but not stored")
		}
		ka, kb := a.Item().Key(), b.Item().Key()
		if c := bytes.Compare(ka, kb); c < 0 {
			return n, fail(ka, "stored but not in the replay")
		} else if c > 0 {
			return n, fail(kb, "in the replay but not stored")
		}
		va, err := a.Item().ValueCopy(nil)
		if err != nil {
			return n, err
		}
		vb, err := b.Item().ValueCopy(nil)
		if err != nil {
			return n, err
		}
		if !bytes.Equal(va, vb) {
			return n, fail(ka, "stored entry differs from the replay")
		}
		n++
		b.Next()
	}
	return n, nil
}

// compareBlock compares a block with its replayed execution, once every
// transaction matched: the commitment-tree root, and then the whole
// manifest (the replay's must hash as the block does).
func compareBlock(b *chain.Block, x *Execution) error {
	r := x.Block
	if r == nil {
		return &VerifyError{Kind: "block", Height: b.Height, Tx: -1, Detail: "the replay accepts none of its transactions"}
	}
	if r.CommitmentRoot != b.CommitmentRoot {
		return &VerifyError{Kind: "root", Height: b.Height, Tx: -1,
			Detail: fmt.Sprintf("block says commitment-tree root %x, the replay gives %x", b.CommitmentRoot[:8], r.CommitmentRoot[:8])}
	}
	if h, rh := b.Hash(), r.Hash(); h != rh {
		return &VerifyError{Kind: "block", Height: b.Height, Tx: -1, Detail: fmt.Sprintf("the replay gives another manifest (hash %x, the block's is %x)", rh[:8], h[:8])}
	}
	return nil
}

// replay re-executes blocks, through the stage Execute, into a fresh store
// in the instance's scratch folder (tmpDir), which the next open empties if
// this process is killed before close (decision 097).
type replay struct {
	in  *Instance
	dir string
	db  *badger.DB
}

func (in *Instance) newReplay() (*replay, error) {
	parent := filepath.Join(in.home, tmpDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "replay-*")
	if err != nil {
		return nil, err
	}
	// The replay store is thrown away, so it need not survive a crash.
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(false))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("replay store: %w", err)
	}
	return &replay{in: in, dir: dir, db: db}, nil
}

func (r *replay) close() {
	r.db.Close()
	os.RemoveAll(r.dir)
}

// block re-executes txs as the block b (by its producer) after parent,
// against the replay's state after parent, and calls check with every
// result; when all pass it writes their effects and the block's state
// changes into the replay store, as a commit does (the store's own records,
// receipts and blocks excepted). It returns the execution.
func (r *replay) block(ctx context.Context, parent, b *chain.Block, txs []*phases.Tx, check func(*TxResult) error) (*Execution, error) {
	txn := r.db.NewTransaction(true)
	defer txn.Discard()
	x, err := r.execute(ctx, txn, parent, b, txs, check)
	if err != nil {
		return nil, err
	}
	if err := txn.Commit(); err != nil {
		return nil, fmt.Errorf("block %d: replay commit: %w", b.Height, err)
	}
	return x, nil
}

// execute is block without the commit: it leaves the effects and the tree
// nodes of the root after txs (only those: decision 058) in txn.
func (r *replay) execute(ctx context.Context, txn *badger.Txn, parent, b *chain.Block, txs []*phases.Tx, check func(*TxResult) error) (*Execution, error) {
	view := r.db.NewTransaction(false)
	defer view.Discard()
	w := badgerdb.KV{Txn: txn}
	p := &Proposal{Parent: parent, Producer: keys.PublicKey(b.Executor), Txs: txs}
	x, err := r.in.execute(ctx, badgerdb.KV{Txn: view}, p, func(res *TxResult) error {
		if res.Outcome.Committed() {
			if err := writeNotes(w, res.Outcome); err != nil {
				return &VerifyError{Kind: "transaction", Height: b.Height, Tx: res.Index, TxID: res.Tx.ID(), Detail: "replay cannot apply its effects: " + err.Error()}
			}
		}
		if check != nil {
			return check(res)
		}
		return nil
	})
	if err == nil {
		err = x.writeState(w)
	}
	var ve *VerifyError
	if err != nil && !errors.As(err, &ve) {
		err = fmt.Errorf("block %d: replay: %w", b.Height, err)
	}
	return x, err
}
