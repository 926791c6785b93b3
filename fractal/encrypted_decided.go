package fractal

// The encrypted mempool on a validator set (decisions 136, 161): an
// encrypted transaction is a consensus transaction carrying a payload; the
// batch of a decided block is its well-formed payloads in block order,
// fixed when the block is executed and waiting for shares; the validators'
// shares come back from the consensus engine with a later block (package
// fractal/abci reads them from vote extensions), which opens the batch and
// runs its transactions first, in slot order.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// encryptedTxMagic starts a consensus transaction carrying an encrypted
// transaction's payload (a tfhe.Payload encoding, tag 0x04).
const encryptedTxMagic = "fractal encrypted v1\x00"

// EncryptedTx returns the consensus transaction carrying payload.
func EncryptedTx(payload []byte) []byte { return append([]byte(encryptedTxMagic), payload...) }

// encryptedPayload returns the payload an encrypted transaction carries;
// ok is false for any other transaction.
func encryptedPayload(raw []byte) ([]byte, bool) {
	if !isEncryptedTx(raw) {
		return nil, false
	}
	return raw[len(encryptedTxMagic):], true
}

func isEncryptedTx(raw []byte) bool { return bytes.HasPrefix(raw, []byte(encryptedTxMagic)) }

// A WaitingBatch is a validator-set instance's encrypted batch waiting for
// the validators' shares: its record (the executor field names the set,
// the signature is zero) and its payloads in slot order.
type WaitingBatch struct {
	Record   *chain.EncryptedBatch
	Key      *tfhe.PublicKey
	Payloads []*tfhe.Payload
	raws     [][]byte
}

// CheckShares verifies one keyholder's share batch for w: its key, its
// index, one share per slot, every proof (tfhe.VerifyShare). The error
// names the keyholder (*tfhe.ShareError).
func (w *WaitingBatch) CheckShares(sb *tfhe.ShareBatch) error {
	return (&pendingBatch{pk: w.Key, batch: w.Record, payloads: w.Payloads}).check(sb)
}

// encPlan is what a decided block does to the encrypted mempool: the
// waiting batch it opens (open, with at least k share batches) or closes
// as expired (expire, decision 164), the batch its own encrypted
// transactions fix (fixed), why each encrypted transaction not taken was
// refused (by index in the block), and the batch that waits after it
// (after).
type encPlan struct {
	open    *pendingBatch
	openN   uint64
	expire  *pendingBatch
	shares  []*tfhe.ShareBatch // valid shares that did not open the waiting batch
	fixed   *WaitingBatch
	refused map[int]error
	taken   map[int][32]byte // block index → payload ID fixed into the batch
	after   *WaitingBatch
}

// planEncrypted plans the encrypted part of the decided block at
// consensus height h against the committed state view: the waiting batch
// opens when shares holds at least k share batches for it (verified by the
// caller, ascending keyholder index); otherwise it expires when h is its
// fixing height plus the instance's window (decision 164; h = 0 never
// expires it); the block's encrypted transactions fix a new batch when no
// batch waits after that, and are refused otherwise, as are malformed
// payloads, payloads for another key or instance, repeats and payloads
// already fixed or opened. It depends only on the block, shares and the
// committed state.
func (in *Instance) planEncrypted(view *badger.Txn, h uint64, txs [][]byte, shares []*tfhe.ShareBatch) (*encPlan, error) {
	plan := &encPlan{refused: map[int]error{}, taken: map[int][32]byte{}}
	n, waiting, err := waitingBatch(view)
	if err != nil {
		return nil, err
	}
	if waiting {
		pb, err := loadBatch(view, n)
		if err != nil {
			return nil, fmt.Errorf("encrypted batch %d: %w", n, err)
		}
		expired, err := expiresAt(view, n, h)
		switch {
		case err != nil:
			return nil, fmt.Errorf("encrypted batch %d: %w", n, err)
		case len(shares) >= pb.pk.K:
			pb.shares, plan.open, plan.openN = shares, pb, n
		case expired:
			plan.expire = pb
		default:
			plan.shares = shares
			plan.after = &WaitingBatch{Record: pb.batch, Key: pb.pk, Payloads: pb.payloads}
		}
	}
	var pk *tfhe.PublicKey
	fixed := &WaitingBatch{}
	seen := map[[32]byte]bool{}
	for i, raw := range txs {
		body, ok := encryptedPayload(raw)
		if !ok {
			continue
		}
		if plan.after != nil {
			plan.refused[i] = fmt.Errorf("encrypted batch %d waits for shares", plan.after.Record.Number)
			continue
		}
		if pk == nil {
			if pk, err = thresholdKey(view); errors.Is(err, ErrNoThresholdKey) {
				pk, plan.refused[i] = nil, errors.New("this validator set has no threshold key")
				continue
			} else if err != nil {
				return nil, err
			}
		}
		id, p, err := in.checkDecidedPayload(view, pk, body, seen, len(fixed.raws))
		if err != nil {
			plan.refused[i] = err
			continue
		}
		seen[id], plan.taken[i] = true, id
		fixed.raws, fixed.Payloads = append(fixed.raws, body), append(fixed.Payloads, p)
	}
	if len(fixed.raws) == 0 {
		return plan, nil
	}
	last, err := lastBatch(view)
	if err != nil {
		return nil, err
	}
	head, err := headHeight(view)
	if err != nil {
		return nil, err
	}
	fixed.Key = pk
	fixed.Record = &chain.EncryptedBatch{Instance: in.id, Key: pk.ID(), Number: last + 1, Head: head, Executor: in.pub}
	for _, raw := range fixed.raws {
		fixed.Record.PayloadIDs = append(fixed.Record.PayloadIDs, sha256.Sum256(raw))
	}
	plan.fixed, plan.after = fixed, fixed
	return plan, nil
}

// checkDecidedPayload checks one payload of a decided block, the n-th
// taken so far: its size and form, its context (this instance), its key
// (the attached one), that it is not earlier in the block (seen), nor in a
// batch already.
func (in *Instance) checkDecidedPayload(view *badger.Txn, pk *tfhe.PublicKey, body []byte, seen map[[32]byte]bool, n int) ([32]byte, *tfhe.Payload, error) {
	id := sha256.Sum256(body)
	if len(body) > in.cfg.MaxTxBytes+payloadOverhead {
		return id, nil, fmt.Errorf("payload is %d bytes, limit %d", len(body), in.cfg.MaxTxBytes+payloadOverhead)
	}
	if n >= in.cfg.MaxBlockTxs {
		return id, nil, fmt.Errorf("the block's batch is full (max_block_txs %d)", in.cfg.MaxBlockTxs)
	}
	p, err := tfhe.DecodePayload(body)
	if err != nil {
		return id, nil, err
	}
	if !bytes.Equal(p.Context, EncryptedContext(in.id)) {
		return id, nil, errors.New("payload is not bound to this instance (wrong context)")
	}
	if err := p.Check(pk); err != nil {
		return id, nil, err
	}
	if seen[id] {
		return id, nil, errors.New("payload repeats one earlier in this block")
	}
	if _, err := view.Get(encKeyOf(encIndex, id[:])); err == nil {
		return id, nil, errors.New("payload waits in a batch already")
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return id, nil, err
	}
	if out, err := readOutcome(view, id); err == nil {
		return id, nil, fmt.Errorf("payload was already opened in encrypted batch %d", out.Batch)
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return id, nil, err
	}
	return id, p, nil
}

// BatchAfter returns the batch that waits for shares once the block txs
// at consensus height h, with the verified share batches shares from its
// first transaction, is executed (nil when none): what a validator's
// precommit for the block carries shares for (decision 161). It changes
// nothing.
func (in *Instance) BatchAfter(h uint64, txs [][]byte, shares []*tfhe.ShareBatch) (*WaitingBatch, error) {
	var w *WaitingBatch
	err := in.db.View(func(view *badger.Txn) error {
		plan, err := in.planEncrypted(view, h, txs, shares)
		if plan != nil {
			w = plan.after
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: batch after block: %w", err)
	}
	return w, nil
}

// Waiting returns the batch waiting for shares in the committed state, nil
// when none waits (a batch whose window ends at the next height waits
// until that block's shares leave it shut).
func (in *Instance) Waiting() (*WaitingBatch, error) { return in.BatchAfter(0, nil, nil) }

// decidedEncPart is a decided block's part in the encrypted mempool: the
// batch it opens (whose transactions run first) or expires, the valid
// shares that left the waiting batch shut, and the batch it fixes.
type decidedEncPart struct {
	height uint64 // the block's consensus height
	open   *batchPart
	expire *pendingBatch
	shares []*tfhe.ShareBatch
	fixed  *WaitingBatch
	waits  uint64 // the batch that waited before the block and still waits (0: none)
}

func (d *decidedEncPart) admit(txs []*phases.Tx) []error { return make([]error, len(txs)) }

func (d *decidedEncPart) apply(*TxResult) error { return nil }

func (d *decidedEncPart) finish(*chain.Block) {}

func (d *decidedEncPart) write(w kv.Store, x *Execution) error {
	if o := d.open; o != nil {
		// The shares that opened it, for verify (they came in the block).
		for _, sb := range o.used {
			if err := w.Set(encKeyOf(encShares, u64(o.n), u32(uint32(sb.Index))), sb.Encode()); err != nil {
				return err
			}
		}
		if err := o.write(w, x); err != nil {
			return err
		}
	}
	if e := d.expire; e != nil {
		if err := writeExpired(w, e, d.height); err != nil {
			return err
		}
	}
	if d.waits != 0 {
		if err := w.Set(encKeyOf(encLastShares, u64(d.waits)), lastSharesOf(d.height, d.shares).encode()); err != nil {
			return err
		}
	}
	if f := d.fixed; f != nil {
		n := f.Record.Number
		if err := w.Set(encKeyOf(encFixedAt, u64(n)), u64(d.height)); err != nil {
			return err
		}
		for i, raw := range f.raws {
			id := f.Record.PayloadIDs[i]
			if err := w.Set(encKeyOf(encSlot, u64(n), u32(uint32(i))), raw); err != nil {
				return err
			}
			if err := w.Set(encKeyOf(encIndex, id[:]), u64(n)); err != nil {
				return err
			}
		}
		if err := w.Set(encKeyOf(encBatch, u64(n)), f.Record.Encode()); err != nil {
			return err
		}
		if err := w.Set(encKeyOf(encWaiting), u64(n)); err != nil {
			return err
		}
	}
	return nil
}

// openDecided plans decided block d's encrypted part: the transactions of
// the batch it opens go first into p.Txs, in slot order (their IDs into
// seen, so that a plaintext copy later in the block is a replay), and
// p.mempool takes the part.
func (in *Instance) openDecided(view *badger.Txn, d *DecidedBlock, p *Proposal, seen map[notes.Hash]bool, keep int) (*encPlan, error) {
	plan, err := in.planEncrypted(view, d.Height, d.Txs, d.Shares)
	if err != nil {
		return plan, err
	}
	part := &decidedEncPart{height: d.Height, expire: plan.expire, fixed: plan.fixed}
	if plan.after != nil && plan.fixed == nil { // the batch from before still waits
		part.waits, part.shares = plan.after.Record.Number, plan.shares
	}
	if plan.open == nil && plan.expire == nil && plan.fixed == nil && part.waits == 0 {
		return plan, nil
	}
	if plan.open != nil {
		if part.open, err = in.openLoaded(view, plan.openN, plan.open, p, keep); err != nil {
			return nil, fmt.Errorf("encrypted batch %d: %w", plan.openN, err)
		}
		part.open.at = p.Parent.Height + 1
		for _, e := range part.open.run {
			seen[e.tx.ID()] = true
		}
	}
	p.mempool = part
	return plan, nil
}

// result fills r, the result of the block's i-th transaction, when it is
// an encrypted transaction: fixed into the batch, or refused.
func (plan *encPlan) result(i int, r *DecidedResult) bool {
	if id, ok := plan.taken[i]; ok {
		r.Encrypted = &id
		return true
	}
	if err, ok := plan.refused[i]; ok {
		r.Refused = fmt.Errorf("encrypted transaction refused: %w", err)
		return true
	}
	return false
}

// checkEncryptedPending is CheckPending for an encrypted transaction's
// payload: its form, instance, key, and that no batch holds it yet.
func (in *Instance) checkEncryptedPending(body []byte) (*Pending, error) {
	var id [32]byte
	err := in.db.View(func(view *badger.Txn) error {
		pk, err := thresholdKey(view)
		if err != nil {
			return err
		}
		id, _, err = in.checkDecidedPayload(view, pk, body, nil, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: check encrypted %x: %w", id[:8], err)
	}
	return &Pending{Encrypted: &id}, nil
}
