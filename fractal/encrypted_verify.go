package fractal

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// verifyBatches checks every encrypted batch record against the chain
// (decision 079): the executor's signature on the order; that no block was
// sealed between fixing a batch and closing it; and, for an opened batch,
// that decrypting its stored payloads again with the stored shares of the
// keyholders that opened it gives, slot by slot, the stored outcomes and,
// for the accepted transactions in slot order, exactly the block's
// transactions. An expired batch must carry the executor's signed expiry
// and a drop receipt in every slot. Blocks must be verified separately.
func (in *Instance) verifyBatches(txn *badger.Txn, exec keys.PublicKey, head uint64) error {
	last, err := lastBatch(txn)
	if err != nil {
		return &VerifyError{Kind: "store", Tx: -1, Where: "encrypted batches", Detail: err.Error()}
	}
	closedAt := uint64(0) // the chain height when the previous batch closed
	slots := 0
	for n := uint64(1); n <= last; n++ {
		at, closed, err := in.verifyBatch(txn, exec, head, n, last, closedAt)
		if err != nil {
			return err
		}
		closedAt = at
		slots += closed
	}
	if got := countPrefix(txn, encKeyOf(encOutcome)); got != slots {
		return &VerifyError{Kind: "store", Tx: -1, Where: "encrypted outcomes", Detail: fmt.Sprintf("%d outcomes for %d slots of closed batches", got, slots)}
	}
	return nil
}

// verifyBatch checks batch n (see verifyBatches), fixed after the previous
// batch closed at height closedAt. It returns the height at which batch n
// closed and how many slots it closed (0 while it waits).
func (in *Instance) verifyBatch(txn *badger.Txn, exec keys.PublicKey, head, n, last, closedAt uint64) (uint64, int, error) {
	fail := func(where, format string, args ...any) error {
		w := fmt.Sprintf("batch %d", n)
		if where != "" {
			w += " " + where
		}
		return &VerifyError{Kind: "encrypted", Tx: -1, Where: w, Detail: fmt.Sprintf(format, args...)}
	}
	raw, err := getValue(txn, encKeyOf(encBatch, u64(n)))
	if err != nil {
		return 0, 0, fail("", "record not stored: %v", err)
	}
	b, err := chain.DecodeEncryptedBatch(raw)
	if err != nil {
		return 0, 0, fail("", "%v", err)
	}
	// On a validator set (decision 161) the record is unsigned (the
	// validators' commits certify the block that fixed it), a batch may be
	// fixed in the block that opened the one before, and plain blocks go on
	// while a batch waits.
	vs := in.validators != nil
	switch {
	case b.Number != n:
		return 0, 0, fail("", "record says batch %d", b.Number)
	case b.Instance != in.id:
		return 0, 0, fail("", "record names instance %x", b.Instance[:8])
	case keys.PublicKey(b.Executor) != exec:
		return 0, 0, fail("", "not signed by the instance's executor key")
	case vs && b.Signature != [64]byte{}:
		return 0, 0, fail("", "a validator set's batch record carries a signature")
	case !vs && b.Verify() != nil:
		return 0, 0, fail("", "bad executor signature on the batch record")
	case vs && (b.Head+1 < closedAt || b.Head > head):
		return 0, 0, fail("", "fixed at height %d, but the previous batch closed at %d and the head is %d", b.Head, closedAt, head)
	case !vs && (b.Head < closedAt || b.Head > head):
		return 0, 0, fail("", "fixed at height %d, but the previous batch closed at %d and the head is %d", b.Head, closedAt, head)
	}
	waiting, isWaiting, err := waitingBatch(txn)
	if err != nil {
		return 0, 0, fail("", "%v", err)
	}
	c, err := readClose(txn, n)
	if errors.Is(err, badger.ErrKeyNotFound) {
		switch {
		case n != last:
			return 0, 0, fail("", "never closed, yet batch %d was fixed after it", n+1)
		case !isWaiting || waiting != n:
			return 0, 0, fail("", "neither closed nor waiting for shares")
		case !vs && head != b.Head:
			return 0, 0, fail("", "block %d was sealed while it waited for shares", b.Head+1)
		}
		return b.Head, 0, nil
	}
	if err != nil {
		return 0, 0, fail("", "%v", err)
	}
	if isWaiting && waiting == n {
		return 0, 0, fail("", "closed, yet still marked as waiting")
	}
	payloads := make([]*tfhe.Payload, len(b.PayloadIDs))
	for i, id := range b.PayloadIDs {
		where := fmt.Sprintf("slot %d", i)
		raw, err := getValue(txn, encKeyOf(encSlot, u64(n), u32(uint32(i))))
		if err != nil {
			return 0, 0, fail(where, "payload not stored: %v", err)
		}
		if sha256.Sum256(raw) != id {
			return 0, 0, fail(where, "stored payload differs from the batch record")
		}
		if payloads[i], err = tfhe.DecodePayload(raw); err != nil {
			return 0, 0, fail(where, "%v", err)
		}
	}
	pkRaw, err := getValue(txn, encKeyOf(encArchive, b.Key[:]))
	if err != nil {
		return 0, 0, fail("", "threshold key %x not stored: %v", b.Key[:8], err)
	}
	pk, err := tfhe.DecodePublicKey(pkRaw)
	if err != nil || pk.ID() != b.Key {
		return 0, 0, fail("", "stored threshold key %x is damaged", b.Key[:8])
	}

	if c.Expired {
		if err := in.verifyExpiry(txn, b, c); err != nil {
			return 0, 0, fail("", "%v", err)
		}
		if got := countPrefix(txn, encKeyOf(encShares, u64(n))); got >= pk.K {
			return 0, 0, fail("", "expired with %d of %d shares stored: it could have opened", got, pk.K)
		}
		receipts := expiredReceipts(b, pk.K)
		for i := range b.PayloadIDs {
			want := &EncryptedOutcome{Batch: n, Slot: uint32(i), Receipt: receipts[i]}
			if err := sameOutcome(txn, b.PayloadIDs[i], want); err != nil {
				return 0, 0, fail(fmt.Sprintf("slot %d", i), "%v", err)
			}
		}
		return b.Head, len(b.PayloadIDs), nil
	}

	if len(c.Keyholders) != pk.K {
		return 0, 0, fail("", "opened with the shares of %d keyholders, %d needed", len(c.Keyholders), pk.K)
	}
	shares := make([]*tfhe.ShareBatch, len(c.Keyholders))
	for j, i := range c.Keyholders {
		where := fmt.Sprintf("keyholder %d", i)
		raw, err := getValue(txn, encKeyOf(encShares, u64(n), u32(uint32(i))))
		if err != nil {
			return 0, 0, fail(where, "shares that opened the batch are not stored")
		}
		if shares[j], err = tfhe.DecodeShareBatch(raw); err != nil {
			return 0, 0, fail(where, "%v", err)
		}
		if shares[j].Index != i {
			return 0, 0, fail(where, "stored shares are keyholder %d's", shares[j].Index)
		}
	}
	plain, slotErrs, err := tfhe.OpenBlock(pk, payloads, shares)
	if err != nil {
		var se *tfhe.ShareError
		if errors.As(err, &se) {
			return 0, 0, fail(fmt.Sprintf("keyholder %d", se.Keyholder), "%v", se.Err)
		}
		return 0, 0, fail("", "%v", err)
	}
	before := b.Head + 1 // the block it opened into: a replay is a copy in a block below
	if vs {
		before = c.Block // recorded even when it accepted nothing
	}
	run, dropped, err := in.classify(txn, b, plain, slotErrs, before)
	if err != nil {
		return 0, 0, fail("", "%v", err)
	}
	var accepted [][32]byte
	for i, rc := range dropped {
		if rc == nil {
			continue
		}
		want := &EncryptedOutcome{Batch: n, Slot: uint32(i), Receipt: rc}
		if err := sameOutcome(txn, b.PayloadIDs[i], want); err != nil {
			return 0, 0, fail(fmt.Sprintf("slot %d", i), "%v", err)
		}
	}
	cut := false // the block was too large for one store write from here on (batchPart.cut)
	for _, e := range run {
		where := fmt.Sprintf("slot %d", e.slot)
		dropped := &EncryptedOutcome{Batch: n, Slot: e.slot, Receipt: dropReceipt(b.PayloadIDs[e.slot], "%s", cutReason)}
		if err := sameOutcome(txn, b.PayloadIDs[e.slot], dropped); cut || err == nil {
			if err != nil {
				return 0, 0, fail(where, "ran after a slot the block left out as too large: %v", err)
			}
			cut = true
			continue
		}
		o, err := readOutcome(txn, b.PayloadIDs[e.slot])
		if err != nil {
			return 0, 0, fail(where, "outcome: %v", err)
		}
		id := e.tx.ID()
		if o.Batch != n || o.Slot != e.slot || o.TxID != id || o.Receipt.TxID != id {
			return 0, 0, fail(where, "outcome names transaction %x, the payload decrypts to %x", o.TxID[:8], id[:8])
		}
		if o.Receipt.Status == phases.Accepted {
			accepted = append(accepted, id)
		}
	}
	if c.Block == 0 {
		if len(accepted) > 0 {
			return 0, 0, fail("", "%d transactions accepted, but no block recorded", len(accepted))
		}
		return b.Head, len(b.PayloadIDs), nil
	}
	if vs && len(accepted) == 0 { // no block was made for it
		return c.Block, len(b.PayloadIDs), nil
	}
	if c.Block != b.Head+1 && (!vs || c.Block <= b.Head) {
		return 0, 0, fail("", "opened into block %d, but its order was fixed at height %d: something ran before it", c.Block, b.Head)
	}
	if c.Block > head {
		return 0, 0, fail("", "opened into block %d, beyond the head %d", c.Block, head)
	}
	blk, err := in.verifiedBlock(txn, c.Block, exec)
	if err != nil {
		return 0, 0, err
	}
	where := fmt.Sprintf("block %d", c.Block)
	// A validator set's block runs the batch first, then its own.
	if len(blk.TxIDs) != len(accepted) && (!vs || len(blk.TxIDs) < len(accepted)) {
		return 0, 0, fail(where, "holds %d transactions, the batch accepted %d", len(blk.TxIDs), len(accepted))
	}
	for i, id := range accepted {
		if blk.TxIDs[i] != id {
			return 0, 0, fail(where, "transaction %d is %x, the batch's slot order gives %x", i, blk.TxIDs[i][:8], id[:8])
		}
	}
	return c.Block, len(b.PayloadIDs), nil
}

// verifyExpiry checks who expired batch b: on a solo instance the
// executor, signing it; on a validator set the chain, unsigned, at exactly
// the height its window ends (decision 164).
func (in *Instance) verifyExpiry(txn *badger.Txn, b *chain.EncryptedBatch, c *batchClose) error {
	if in.validators == nil {
		if c.At != 0 || b.VerifyExpiry(c.Signature[:]) != nil {
			return errors.New("bad executor signature on the expiry")
		}
		return nil
	}
	if c.At == 0 {
		return errors.New("a validator set's batch expired by a signature, not at a height")
	}
	at, err := fixedAt(txn, b.Number)
	if err != nil {
		return err
	}
	window, err := expiryWindow(txn)
	if err != nil {
		return err
	}
	if c.At != at+window {
		return fmt.Errorf("expired at height %d, but fixed at %d with a window of %d blocks", c.At, at, window)
	}
	return nil
}

// sameOutcome compares the stored outcome of a payload with the one
// re-derived.
func sameOutcome(txn *badger.Txn, payload [32]byte, want *EncryptedOutcome) error {
	raw, err := getValue(txn, encKeyOf(encOutcome, payload[:]))
	if err != nil {
		return fmt.Errorf("outcome not stored: %w", err)
	}
	if !bytes.Equal(raw, want.encode()) {
		return fmt.Errorf("stored outcome differs from the re-derived one (%s)", want.Receipt.Reason)
	}
	return nil
}
