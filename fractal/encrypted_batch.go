package fractal

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// maxBatchBytes bounds the payload bytes fixed into one batch, so that a
// batch's commit fits one badger transaction; a batch always takes at least
// one payload.
const maxBatchBytes = 4 << 20

// EncryptedState says where an encrypted batch stands.
type EncryptedState uint8

// The states an EncryptedStatus reports.
const (
	BatchFixed   EncryptedState = 1 // this seal fixed the batch's order
	BatchWaiting EncryptedState = 2 // the batch waits for keyholder shares
	BatchOpened  EncryptedState = 3 // the batch was decrypted and executed
	BatchExpired EncryptedState = 4 // the batch was closed undecrypted (ExpireEncrypted)
)

func (s EncryptedState) String() string {
	switch s {
	case BatchFixed:
		return "fixed"
	case BatchWaiting:
		return "waiting"
	case BatchOpened:
		return "opened"
	case BatchExpired:
		return "expired"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// EncryptedStatus reports an encrypted batch: its record, its state, the
// keyholders whose verified shares are in (ascending) and how many are
// needed.
type EncryptedStatus struct {
	Batch  *chain.EncryptedBatch
	State  EncryptedState
	Shares []int
	Needed int
	// Chain is, on a validator set, where a waiting batch stands in
	// consensus heights; Shares are then the keyholders of the last shares
	// transaction (decision 164).
	Chain *ChainWait
}

// proposeEncrypted is Propose's first step. A batch waiting for shares is
// opened when k are in (p takes its transactions) and otherwise waited for
// (p.Encrypted says so): nothing queued after it runs first. A payload
// queued before the first plaintext transaction in q starts a new batch,
// fixed here (p.Encrypted). Otherwise q comes back cut before the first
// queued payload, and nothing comes back in the other cases.
func (in *Instance) proposeEncrypted(ctx context.Context, view *badger.Txn, p *Proposal, q []queued, max int) ([]queued, error) {
	n, waiting, err := waitingBatch(view)
	if err != nil {
		return nil, fmt.Errorf("encrypted mempool: %w", err)
	}
	if waiting {
		if err := in.openBatch(view, n, p, max); err != nil { // Seal halves max for a block too large for one write
			return nil, fmt.Errorf("encrypted batch %d: %w", n, err)
		}
		return nil, nil
	}
	first, ok, err := firstEncrypted(view)
	if err != nil || !ok {
		return q, err
	}
	if len(q) > 0 && q[0].seq < first {
		for i, e := range q {
			if e.seq > first {
				return q[:i], nil
			}
		}
		return q, nil
	}
	limit := ^uint64(0)
	if len(q) > 0 {
		limit = q[0].seq
	}
	if p.Encrypted, err = in.fixBatch(ctx, view, limit, max); err != nil {
		return nil, fmt.Errorf("encrypted mempool: %w", err)
	}
	return nil, nil
}

func waitingBatch(txn *badger.Txn) (uint64, bool, error) {
	raw, err := getValue(txn, encKeyOf(encWaiting))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(raw) != 8 {
		return 0, false, fmt.Errorf("waiting batch entry has %d bytes", len(raw))
	}
	return binary.BigEndian.Uint64(raw), true, nil
}

// fixBatch takes the queued payloads that arrived before sequence limit (up
// to max of them and maxBatchBytes), signs their order as the next batch and
// stores it as the batch waiting for shares, in one badger transaction.
func (in *Instance) fixBatch(ctx context.Context, view *badger.Txn, limit uint64, max int) (*EncryptedStatus, error) {
	pk, err := thresholdKey(view)
	if err != nil {
		return nil, err
	}
	pre := encKeyOf(encQueue)
	var seqs []uint64
	var raws [][]byte
	b := &chain.EncryptedBatch{Instance: in.id, Key: pk.ID()}
	size := 0
	it := view.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: pre})
	for it.Rewind(); it.Valid() && len(seqs) < max; it.Next() {
		k := it.Item().Key()
		if len(k) != len(pre)+8 {
			it.Close()
			return nil, fmt.Errorf("encrypted queue key %x is malformed", k)
		}
		seq := binary.BigEndian.Uint64(k[len(pre):])
		if seq >= limit || (len(seqs) > 0 && size+int(it.Item().ValueSize()) > maxBatchBytes) {
			break
		}
		raw, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return nil, err
		}
		size += len(raw)
		seqs = append(seqs, seq)
		raws = append(raws, raw)
		b.PayloadIDs = append(b.PayloadIDs, sha256.Sum256(raw))
	}
	it.Close()
	if b.Number, err = lastBatch(view); err != nil {
		return nil, err
	}
	if b.Head, err = headHeight(view); err != nil {
		return nil, err
	}
	b.Number++
	b.Executor = in.pub

	txn := in.db.NewTransaction(true)
	defer txn.Discard()
	for i, seq := range seqs {
		if err := txn.Delete(encKeyOf(encQueue, u64(seq))); err != nil {
			return nil, err
		}
		if err := txn.Set(encKeyOf(encSlot, u64(b.Number), u32(uint32(i))), raws[i]); err != nil {
			return nil, err
		}
	}
	if err := txn.Set(encKeyOf(encWaiting), u64(b.Number)); err != nil {
		return nil, err
	}
	// The record is signed last, once everything else is in txn.
	err = in.signGuarded(ctx, guard.Batches, guard.Block{Height: b.Number, Hash: b.Hash()}, b.SignedMessage(), func(sig []byte) error {
		copy(b.Signature[:], sig)
		if err := txn.Set(encKeyOf(encBatch, u64(b.Number)), b.Encode()); err != nil {
			return err
		}
		return txn.Commit()
	})
	if err != nil {
		return nil, err
	}
	return &EncryptedStatus{Batch: b, State: BatchFixed, Needed: pk.K}, nil
}

// lastBatch returns the number of the last batch record, 0 for none.
func lastBatch(txn *badger.Txn) (uint64, error) {
	pre := encKeyOf(encBatch)
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: pre})
	defer it.Close()
	it.Seek(append(pre, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	if !it.Valid() {
		return 0, nil
	}
	k := it.Item().Key()
	if len(k) != len(pre)+8 {
		return 0, fmt.Errorf("encrypted batch key %x is malformed", k)
	}
	return binary.BigEndian.Uint64(k[len(pre):]), nil
}

// pendingBatch is the stored state of batch n.
type pendingBatch struct {
	pk       *tfhe.PublicKey
	batch    *chain.EncryptedBatch
	payloads []*tfhe.Payload
	shares   []*tfhe.ShareBatch // ascending keyholder index
}

func loadBatch(txn *badger.Txn, n uint64) (*pendingBatch, error) {
	raw, err := getValue(txn, encKeyOf(encBatch, u64(n)))
	if err != nil {
		return nil, fmt.Errorf("batch record: %w", err)
	}
	p := &pendingBatch{}
	if p.batch, err = chain.DecodeEncryptedBatch(raw); err != nil {
		return nil, err
	}
	// The key the batch was fixed under: on a validator set with epochs it
	// may have been replaced since (decision 162); a solo instance changes
	// its key only when no batch waits.
	if p.pk, err = archivedKey(txn, p.batch.Key); err != nil {
		return nil, err
	}
	p.payloads = make([]*tfhe.Payload, len(p.batch.PayloadIDs))
	for i, id := range p.batch.PayloadIDs {
		raw, err := getValue(txn, encKeyOf(encSlot, u64(n), u32(uint32(i))))
		if err != nil {
			return nil, fmt.Errorf("slot %d: %w", i, err)
		}
		if sha256.Sum256(raw) != id {
			return nil, fmt.Errorf("slot %d: payload differs from the batch record", i)
		}
		if p.payloads[i], err = tfhe.DecodePayload(raw); err != nil {
			return nil, fmt.Errorf("slot %d: %w", i, err)
		}
	}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: encKeyOf(encShares, u64(n))})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		raw, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		sb, err := tfhe.DecodeShareBatch(raw)
		if err != nil {
			return nil, err
		}
		p.shares = append(p.shares, sb)
	}
	return p, nil
}

func (p *pendingBatch) status(state EncryptedState) *EncryptedStatus {
	s := &EncryptedStatus{Batch: p.batch, State: state, Needed: p.pk.K, Shares: []int{}}
	for _, sb := range p.shares {
		s.Shares = append(s.Shares, sb.Index)
	}
	return s
}

// withWaiting calls fn with the batch waiting for keyholder shares, when
// one waits, in the view it was read from.
func (in *Instance) withWaiting(fn func(txn *badger.Txn, p *pendingBatch) error) error {
	return in.db.View(func(txn *badger.Txn) error {
		n, ok, err := waitingBatch(txn)
		if err != nil || !ok {
			return err
		}
		p, err := loadBatch(txn, n)
		if err != nil {
			return fmt.Errorf("encrypted batch %d: %w", n, err)
		}
		return fn(txn, p)
	})
}

// PendingEncrypted reports the batch waiting for keyholder shares, or nil
// when none waits.
func (in *Instance) PendingEncrypted() (*EncryptedStatus, error) {
	var s *EncryptedStatus
	err := in.withWaiting(func(txn *badger.Txn, p *pendingBatch) error {
		s = p.status(BatchWaiting)
		if in.validators != nil {
			return chainWait(txn, p.batch.Number, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: pending encrypted batch: %w", err)
	}
	return s, nil
}

// MakeShares computes keyholder sk's decryption shares for the batch
// waiting for shares, in slot order (one tfhe.ShareBatch for the whole
// batch). It changes nothing; submit the result with SubmitShares. ctx can
// stop the work.
func (in *Instance) MakeShares(ctx context.Context, sk *tfhe.KeyShare) (*tfhe.ShareBatch, error) {
	var p *pendingBatch
	err := in.db.View(func(txn *badger.Txn) error {
		n, ok, err := waitingBatch(txn)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("no encrypted batch is waiting for shares")
		}
		if p, err = loadBatch(txn, n); err != nil {
			return fmt.Errorf("encrypted batch %d: %w", n, err)
		}
		return nil
	})
	if err == nil && sk.PK.ID() != p.pk.ID() {
		err = errors.New("key share is for another threshold key than the attached one")
	}
	if err != nil {
		return nil, fmt.Errorf("fractal: make shares: %w", err)
	}
	sb, err := tfhe.PartDecBatch(ctx, sk, p.payloads)
	if err != nil {
		return nil, fmt.Errorf("fractal: make shares for encrypted batch %d: %w", p.batch.Number, err)
	}
	return sb, nil
}

// SubmitShares checks one keyholder's share batch (a tfhe.ShareBatch
// encoding) against the batch waiting for shares and stores it. Every share
// is verified; a bad one is refused with an error naming the keyholder
// (a *tfhe.ShareError in the chain) and nothing is stored. A second batch
// from one keyholder is refused. The batch opens at the next Seal once k
// batches are in.
func (in *Instance) SubmitShares(raw []byte) (*EncryptedStatus, error) {
	sb, err := tfhe.DecodeShareBatch(raw)
	if err != nil {
		return nil, fmt.Errorf("fractal: submit shares: %w", err)
	}
	if err := in.errValidatorSet("submit shares"); err != nil {
		return nil, err
	}
	in.lock()
	defer in.mu.Unlock()
	var st *EncryptedStatus
	err = in.db.Update(func(txn *badger.Txn) error {
		if err := refuseClosed(txn, sb); err != nil {
			return err
		}
		n, ok, err := waitingBatch(txn)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("no encrypted batch is waiting for shares")
		}
		p, err := loadBatch(txn, n)
		if err != nil {
			return fmt.Errorf("encrypted batch %d: %w", n, err)
		}
		if err := p.check(sb); err != nil {
			return fmt.Errorf("encrypted batch %d: %w", n, err)
		}
		if err := txn.Set(encKeyOf(encShares, u64(n), u32(uint32(sb.Index))), sb.Encode()); err != nil {
			return err
		}
		p.shares = append(p.shares, sb)
		st = p.status(BatchWaiting)
		slices.Sort(st.Shares)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: submit shares: %w", err)
	}
	return st, nil
}

// check verifies a keyholder's share batch against the waiting batch.
func (p *pendingBatch) check(sb *tfhe.ShareBatch) error {
	if sb.Key != p.pk.ID() {
		return &tfhe.ShareError{Keyholder: sb.Index, Err: errors.New("shares are for another threshold key")}
	}
	if sb.Index < 1 || sb.Index > p.pk.N {
		return &tfhe.ShareError{Keyholder: sb.Index, Err: fmt.Errorf("index out of 1..%d", p.pk.N)}
	}
	for _, have := range p.shares {
		if have.Index == sb.Index {
			return &tfhe.ShareError{Keyholder: sb.Index, Err: errors.New("shares already submitted")}
		}
	}
	if len(sb.Shares) != len(p.payloads) {
		return &tfhe.ShareError{Keyholder: sb.Index, Err: fmt.Errorf("%d shares for %d payloads", len(sb.Shares), len(p.payloads))}
	}
	// The first bad slot is named, as one by one (workers.Each).
	return workers.Each(context.Background(), len(p.payloads), func(i int) error {
		err := errors.New("share index differs from the batch's")
		if sb.Shares[i].Index == sb.Index {
			err = tfhe.VerifyShare(p.pk, p.payloads[i], sb.Shares[i])
		}
		if err != nil {
			return fmt.Errorf("slot %d: %w", i, err)
		}
		return nil
	})
}

// slotTx is a decrypted transaction that goes on to phases 1–3.
type slotTx struct {
	slot  uint32
	tx    *phases.Tx
	plain uint64    // queue sequence of a plaintext copy of the same transaction, +1 (0: none)
	mem   *memEntry // the plaintext copy in the memory queue, if it is there
}

// dropReceipt is the receipt of a payload dropped before phases 1–3: refused
// in admission, naming the payload ID, with a reason that says why.
func dropReceipt(payload [32]byte, format string, args ...any) *phases.Receipt {
	reason := strings.ToValidUTF8(fmt.Sprintf("encrypted transaction dropped: "+format, args...), "?")
	if len(reason) > phases.MaxReason {
		reason = strings.ToValidUTF8(reason[:phases.MaxReason], "")
	}
	return &phases.Receipt{TxID: payload, Status: phases.Refused, Phase: phases.PhaseAdmission, Reason: reason}
}

// classify decides, from batch b's plaintexts (slotErrs says which did not
// decrypt), which slots go on to phases 1–3, in slot order, and the drop
// receipt of every other slot. A transaction stored in a block below height
// before is a replay. It depends only on the plaintexts, the configuration
// and the blocks below before, so verification recomputes it exactly.
func (in *Instance) classify(txn *badger.Txn, b *chain.EncryptedBatch, plain [][]byte, slotErrs []error, before uint64) ([]slotTx, []*phases.Receipt, error) {
	dropped := make([]*phases.Receipt, len(plain))
	drop := func(i int, format string, args ...any) {
		dropped[i] = dropReceipt(b.PayloadIDs[i], format, args...)
	}
	var run []slotTx
	seen := map[[32]byte]int{}
	var gas uint64
	for i := range plain {
		if slotErrs[i] != nil {
			drop(i, "payload does not decrypt")
			continue
		}
		tx, err := phases.DecodeTx(plain[i])
		if err != nil {
			drop(i, "plaintext does not parse: %v", err)
			continue
		}
		if _, err := in.admit(tx); err != nil {
			drop(i, "%v", err)
			continue
		}
		id := tx.ID()
		if j, ok := seen[id]; ok {
			drop(i, "transaction %x repeats slot %d", id[:8], j)
			continue
		}
		seen[id] = i
		if raw, err := getValue(txn, hashKey(prefixTx, id)); err == nil {
			if len(raw) < 8 {
				drop(i, "replayed transaction")
				continue
			}
			if h := binary.BigEndian.Uint64(raw); h < before {
				drop(i, "replayed transaction: already executed in block %d", h)
				continue
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, nil, err
		}
		// The batch runs in one block: its gas limits together keep the
		// block's rule, as a proposal's do.
		if gas+tx.GasLimit > in.cfg.MaxBlockGas {
			drop(i, "its gas limit %d takes the batch past max_block_gas %d: not run", tx.GasLimit, in.cfg.MaxBlockGas)
			continue
		}
		gas += tx.GasLimit
		run = append(run, slotTx{slot: uint32(i), tx: tx})
	}
	return run, dropped, nil
}

// cutReason is the drop reason of a slot a block too large for one store
// write left out (decision 139), worded as for a plain transaction.
var cutReason = ErrBlockWritesTooLarge.Error()

// cut drops the slots of part that run past the first keep, with
// cutReason.
func (part *batchPart) cut(keep int) {
	if keep < 0 || keep >= len(part.run) {
		return
	}
	for _, e := range part.run[keep:] {
		part.dropped[e.slot] = dropReceipt(part.batch.batch.PayloadIDs[e.slot], "%s", cutReason)
	}
	part.run = part.run[:keep]
}

// recordOutcome stores what became of slot of batch b and retires its
// payload ID from the index of waiting payloads.
func recordOutcome(w kv.Writer, b *chain.EncryptedBatch, slot uint32, txID [32]byte, rc *phases.Receipt) error {
	id := b.PayloadIDs[slot]
	o := &EncryptedOutcome{Batch: b.Number, Slot: slot, TxID: txID, Receipt: rc}
	if err := w.Set(encKeyOf(encOutcome, id[:]), o.encode()); err != nil {
		return err
	}
	return w.Delete(encKeyOf(encIndex, id[:]))
}

// openBatch decrypts batch n when k share batches are in and proposes its
// transactions in slot order (p.Txs) with the batch's part in the block
// (p.mempool). A payload that does not decrypt, a plaintext that does not
// parse or fails admission, a transaction already executed, and a second
// copy within the batch are dropped with a receipt; nothing else is
// affected. With fewer than k share batches it reports the batch waiting
// (p.Encrypted).
func (in *Instance) openBatch(view *badger.Txn, n uint64, p *Proposal, keep int) error {
	pb, err := loadBatch(view, n)
	if err != nil {
		return err
	}
	if len(pb.shares) < pb.pk.K {
		p.Encrypted = pb.status(BatchWaiting)
		return nil
	}
	part, err := in.openLoaded(view, n, pb, p, keep)
	if err != nil {
		return err
	}
	p.mempool = part
	return nil
}

// openLoaded decrypts batch n (pb, holding at least k share batches) with
// its k lowest keyholders' shares and appends its transactions, in slot
// order, to p.Txs; it returns the batch's part in the block.
func (in *Instance) openLoaded(view *badger.Txn, n uint64, pb *pendingBatch, p *Proposal, keep int) (*batchPart, error) {
	part := &batchPart{n: n, batch: pb, used: pb.shares[:pb.pk.K], mem: in.mem}
	plain, slotErrs, err := tfhe.OpenBlock(pb.pk, pb.payloads, part.used)
	if err != nil {
		return nil, err
	}
	// Every block stored now is before the one the batch opens into (on a
	// solo instance that is batch.Head+1; on a validator set the block
	// that fixed the batch may hold a plaintext copy).
	if part.run, part.dropped, err = in.classify(view, pb.batch, plain, slotErrs, p.Parent.Height+1); err != nil {
		return nil, err
	}
	part.cut(keep)
	for i := range part.run {
		e := &part.run[i]
		p.Txs = append(p.Txs, e.tx)
		if in.mem != nil { // it holds the store's queue too
			if e.mem = in.mem.lookup(e.tx.ID()); e.mem != nil {
				e.plain = e.mem.seq + 1
			}
		} else if raw, err := getValue(view, hashKey(prefixPending, e.tx.ID())); err == nil && len(raw) == 8 {
			e.plain = binary.BigEndian.Uint64(raw) + 1
		} else if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, err
		}
	}
	return part, nil
}

// batchPart is an opening encrypted batch's part in the block its
// transactions run in: when the block commits, the outcome of every slot is
// recorded, an accepted transaction retires a plaintext copy queued after
// it, and the batch is closed; the seal's receipts are the slots'.
type batchPart struct {
	n     uint64
	batch *pendingBatch
	used  []*tfhe.ShareBatch // the k share batches that decrypted it
	// at, on a validator set, is the height of the block the batch opens
	// into, recorded even when it accepts nothing (decision 161); 0 on a
	// solo instance, whose close record says 0 then.
	at      uint64
	run     []slotTx          // the slots that run, in slot order
	dropped []*phases.Receipt // by slot: the drop receipt, nil for a slot that runs
	// retired are the plaintext copies in the memory queue that the
	// block's write retires (write), taken out of memory once it commits.
	mem     *memQueue
	retired []*memEntry
}

func (b *batchPart) admit(txs []*phases.Tx) []error { return make([]error, len(txs)) }

func (b *batchPart) apply(*TxResult) error { return nil }

func (b *batchPart) finish(*chain.Block) {}

func (b *batchPart) committed() {
	if b.mem != nil {
		b.mem.committed(b.retired, nil, 0)
	}
}

func (b *batchPart) write(w kv.Store, x *Execution) error {
	batch := b.batch.batch
	receipts := make([]*phases.Receipt, len(b.batch.payloads))
	for i, e := range b.run {
		rc := x.Receipts[i]
		receipts[e.slot] = rc
		if err := recordOutcome(w, batch, e.slot, e.tx.ID(), rc); err != nil {
			return err
		}
		// The encrypted copy came first, so a committed one retires a
		// plaintext copy queued after it.
		if e.plain == 0 || !rc.Committed() {
			continue
		}
		if e.mem != nil {
			b.retired = append(b.retired, e.mem)
			if !e.mem.store {
				continue // logged, never in the store; the replay index has it now
			}
		}
		if err := dequeue(w, e.plain-1, e.tx); err != nil {
			return err
		}
	}
	for i, rc := range b.dropped {
		if rc == nil {
			continue
		}
		receipts[i] = rc
		if err := recordOutcome(w, batch, uint32(i), [32]byte{}, rc); err != nil {
			return err
		}
	}
	c := &batchClose{Block: b.at}
	if x.Block != nil {
		c.Block = x.Block.Height
	}
	for _, sb := range b.used {
		c.Keyholders = append(c.Keyholders, sb.Index)
	}
	if err := closeBatch(w, b.n, c); err != nil {
		return err
	}
	// The batch's transactions ran first; on a validator set the block's
	// own follow them (decision 161).
	x.Receipts = append(receipts, x.Receipts[len(b.run):]...)
	x.Encrypted = b.batch.status(BatchOpened)
	return nil
}
