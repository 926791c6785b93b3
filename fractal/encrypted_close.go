package fractal

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// How an encrypted batch closed: opened with k keyholders' shares, or
// expired undecrypted: by the executor (decision 078), or on a validator
// set by the chain once it waited its window (decision 164). The record is
// kept so that verification can re-derive every outcome (decision 079).

// batchClose is the record under E o n once batch n has closed.
type batchClose struct {
	Expired bool
	// Opened: the height of the block it opened into (0 when no transaction
	// was accepted) and the keyholders whose shares decrypted it, ascending.
	Block      uint64
	Keyholders []int
	// Expired by the executor: its signature over encExpirySigContext ||
	// batch hash.
	Signature [64]byte
	// Expired by a validator set's chain: the consensus height whose block
	// closed it (then Signature is zero).
	At uint64
}

const (
	closeVersion   = 1
	closeOpened    = 1
	closeExpired   = 2
	closeExpiredAt = 3
	// maxKeyholders bounds a close record's keyholder list (tfhe keys have
	// at most this many keyholders).
	maxKeyholders = 1 << 16
)

func (c *batchClose) encode() []byte {
	w := enc.NewWriter(80 + 4*len(c.Keyholders))
	w.U8(closeVersion)
	if c.Expired && c.At != 0 {
		w.U8(closeExpiredAt)
		w.U64(c.At)
		return w.Bytes()
	}
	if c.Expired {
		w.U8(closeExpired)
		w.Fixed(c.Signature[:])
		return w.Bytes()
	}
	w.U8(closeOpened)
	w.U64(c.Block)
	w.U32(uint32(len(c.Keyholders)))
	for _, i := range c.Keyholders {
		w.U32(uint32(i))
	}
	return w.Bytes()
}

func decodeClose(b []byte) (*batchClose, error) {
	r := enc.NewReader(b)
	c := &batchClose{}
	if v := r.U8(); r.Err() == nil && v != closeVersion {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	switch how := r.U8(); {
	case r.Err() != nil:
	case how == closeExpired:
		c.Expired = true
		r.Into(c.Signature[:])
	case how == closeExpiredAt:
		c.Expired, c.At = true, r.U64()
		if r.Err() == nil && c.At == 0 {
			r.Fail(errors.New("expired at height 0"))
		}
	case how == closeOpened:
		c.Block = r.U64()
		n := r.Count(maxKeyholders, "keyholders")
		for range n {
			c.Keyholders = append(c.Keyholders, int(r.U32()))
		}
	default:
		r.Fail(fmt.Errorf("unknown closing %d", how))
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("batch close record: %w", err)
	}
	return c, nil
}

// closeBatch stores how batch n closed and clears the waiting mark.
func closeBatch(w kv.Writer, n uint64, c *batchClose) error {
	if err := w.Set(encKeyOf(encOpened, u64(n)), c.encode()); err != nil {
		return err
	}
	return w.Delete(encKeyOf(encWaiting))
}

// readClose returns how batch n closed; badger.ErrKeyNotFound when it has
// not.
func readClose(txn *badger.Txn, n uint64) (*batchClose, error) {
	raw, err := getValue(txn, encKeyOf(encOpened, u64(n)))
	if err != nil {
		return nil, err
	}
	return decodeClose(raw)
}

// expiredReason is the drop reason of every slot of an expired batch.
func expiredReason(k int) string {
	return fmt.Sprintf("expired: not decrypted by %d keyholders", k)
}

// ExpireEncrypted closes batch n, the batch waiting for shares, without
// decrypting it: the executor signs the expiry, every slot is dropped with a
// receipt "expired: not decrypted by k keyholders", and what arrived after
// the batch can be sealed again. It is refused when n is not the waiting
// batch or k shares are already in (then Seal opens it). Shares for an
// expired batch are refused afterwards (decision 078).
func (in *Instance) ExpireEncrypted(ctx context.Context, n uint64) (*Sealed, error) {
	if err := in.errValidatorSet("expire encrypted"); err != nil {
		return nil, err
	}
	in.lock()
	defer in.mu.Unlock()
	var res *Sealed
	txn := in.db.NewTransaction(true)
	defer txn.Discard()
	err := func() error {
		w, ok, err := waitingBatch(txn)
		switch {
		case err != nil:
			return err
		case !ok:
			return errors.New("no encrypted batch is waiting for shares")
		case w != n:
			return fmt.Errorf("encrypted batch %d is not waiting (batch %d is)", n, w)
		}
		p, err := loadBatch(txn, n)
		if err != nil {
			return fmt.Errorf("encrypted batch %d: %w", n, err)
		}
		if len(p.shares) >= p.pk.K {
			return fmt.Errorf("encrypted batch %d has %d of %d shares: seal opens it", n, len(p.shares), p.pk.K)
		}
		res = &Sealed{Encrypted: p.status(BatchExpired)}
		if res.Receipts, err = recordExpired(badgerdb.KV{Txn: txn}, p); err != nil {
			return err
		}
		// The expiry is signed last, once everything else is in txn.
		return in.signGuarded(ctx, guard.Expiries, guard.Block{Height: n, Hash: p.batch.Hash()}, p.batch.ExpiryMessage(), func(sig []byte) error {
			c := &batchClose{Expired: true}
			copy(c.Signature[:], sig)
			if err := closeBatch(badgerdb.KV{Txn: txn}, n, c); err != nil {
				return err
			}
			return txn.Commit()
		})
	}()
	if err != nil {
		return nil, fmt.Errorf("fractal: expire: %w", err)
	}
	return res, nil
}

// refuseClosed refuses shares made for a batch that has already closed
// (opened or expired), naming it; nil when the shares name no closed
// payload.
func refuseClosed(txn *badger.Txn, sb *tfhe.ShareBatch) error {
	if len(sb.Shares) == 0 {
		return nil
	}
	o, err := readOutcome(txn, sb.Shares[0].Ciphertext)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	c, err := readClose(txn, o.Batch)
	if err != nil {
		return fmt.Errorf("encrypted batch %d: %w", o.Batch, err)
	}
	if c.Expired {
		return fmt.Errorf("encrypted batch %d expired: shares are no longer accepted", o.Batch)
	}
	return fmt.Errorf("encrypted batch %d is already opened", o.Batch)
}

// recordExpired stores the outcome of every slot of batch p, expired
// undecrypted, and returns their receipts.
func recordExpired(w kv.Writer, p *pendingBatch) ([]*phases.Receipt, error) {
	receipts := expiredReceipts(p.batch, p.pk.K)
	for i, rc := range receipts {
		if err := recordOutcome(w, p.batch, uint32(i), [32]byte{}, rc); err != nil {
			return nil, err
		}
	}
	return receipts, nil
}

// expiredReceipts are the receipts of an expired batch's slots.
func expiredReceipts(b *chain.EncryptedBatch, k int) []*phases.Receipt {
	out := make([]*phases.Receipt, len(b.PayloadIDs))
	for i, id := range b.PayloadIDs {
		out[i] = dropReceipt(id, "%s", expiredReason(k))
	}
	return out
}
