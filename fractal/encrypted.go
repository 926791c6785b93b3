package fractal

// The encrypted mempool (issue 7): transactions sealed to the instance's
// threshold key (package tfhe) wait in arrival order beside the plaintext
// queue, are fixed into a signed encrypted batch while still encrypted, and
// are decrypted and executed in that order once k keyholders' shares are in.
// This file holds the key, the queue and the outcomes; encrypted_batch.go
// fixes, shares and opens batches. Format: docs/formats/encrypted-mempool.md;
// ordering: docs/decisions/075-encrypted-mempool-ordering.md.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// encryptedContextLabel starts the context bound into every payload, so that
// a payload sealed for one instance is refused by every other.
const encryptedContextLabel = "fractal/encrypted-mempool/v1"

// EncryptedContext is the tfhe payload context for transactions to the
// instance with this ID: the label, a zero byte and the 32-byte ID.
func EncryptedContext(instance [32]byte) []byte {
	return append([]byte(encryptedContextLabel+"\x00"), instance[:]...)
}

// EncryptTx seals tx's canonical encoding to pk for the instance with this ID.
func EncryptTx(pk *tfhe.PublicKey, instance [32]byte, tx *phases.Tx) (*tfhe.Payload, error) {
	p, err := tfhe.Seal(pk, tx.Encode(), EncryptedContext(instance))
	if err != nil {
		return nil, fmt.Errorf("fractal: encrypt transaction: %w", err)
	}
	return p, nil
}

// payloadOverhead bounds a payload's encoding beyond its plaintext: tag,
// version, key ID, context, U, A, z, the body's length and GCM tag.
const payloadOverhead = 2 + 32 + 4 + len(encryptedContextLabel) + 1 + 32 + 3*32 + 4 + 16

// ErrNoThresholdKey is returned when the instance has no threshold key.
var ErrNoThresholdKey = errors.New("no threshold key attached (run fractal tfhe attach)")

// AttachThresholdKey makes pk the key that encrypted transactions are sealed
// to. Attaching the attached key again changes nothing; another key is
// refused while any encrypted transaction is queued or waits in a batch,
// since those could then never be opened.
func (in *Instance) AttachThresholdKey(pk *tfhe.PublicKey) error {
	if err := in.errValidatorSet("attach threshold key"); err != nil {
		return err
	}
	return in.attachKey(pk, "attach threshold key", func(txn *badger.Txn, _ *tfhe.PublicKey) error {
		if busy, err := encryptedBusy(txn); err != nil || busy {
			if err == nil {
				err = errors.New("encrypted transactions are queued or waiting for shares under the current key")
			}
			return err
		}
		return nil
	})
}

// attachKey makes pk the attached key when it is not already, and allow,
// given the attached key (nil when none), lets it; what names the
// operation in the error.
func (in *Instance) attachKey(pk *tfhe.PublicKey, what string, allow func(txn *badger.Txn, old *tfhe.PublicKey) error) error {
	in.lock()
	defer in.mu.Unlock()
	err := in.db.Update(func(txn *badger.Txn) error {
		old, err := thresholdKey(txn)
		if err == nil && old.ID() == pk.ID() {
			return nil
		}
		if errors.Is(err, ErrNoThresholdKey) {
			old = nil
		} else if err != nil {
			return err
		}
		if err := allow(txn, old); err != nil {
			return err
		}
		return setThresholdKey(txn, pk)
	})
	if err != nil {
		return fmt.Errorf("fractal: %s: %w", what, err)
	}
	return nil
}

// ThresholdKey returns the attached threshold key, or ErrNoThresholdKey.
func (in *Instance) ThresholdKey() (*tfhe.PublicKey, error) {
	var pk *tfhe.PublicKey
	err := in.db.View(func(txn *badger.Txn) (err error) {
		pk, err = thresholdKey(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: threshold key: %w", err)
	}
	return pk, nil
}

// setThresholdKey makes pk the attached key. Every key ever attached
// stays, so verification can check the shares of batches sealed to an
// earlier one.
func setThresholdKey(txn kv.Writer, pk *tfhe.PublicKey) error {
	id := pk.ID()
	if err := txn.Set(encKeyOf(encArchive, id[:]), pk.Encode()); err != nil {
		return err
	}
	return txn.Set(encKeyOf(encKey), pk.Encode())
}

func thresholdKey(txn *badger.Txn) (*tfhe.PublicKey, error) {
	raw, err := getValue(txn, encKeyOf(encKey))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNoThresholdKey
	}
	if err != nil {
		return nil, err
	}
	return tfhe.DecodePublicKey(raw)
}

// encryptedBusy reports whether any payload is queued or in a batch that
// has not opened.
func encryptedBusy(txn *badger.Txn) (bool, error) {
	if _, err := txn.Get(encKeyOf(encWaiting)); err == nil {
		return true, nil
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return false, err
	}
	_, ok, err := firstEncrypted(txn)
	return ok, err
}

// SubmitEncrypted checks a payload (the encoding of a tfhe.Payload holding a
// transaction, made by EncryptTx) and queues it in arrival order. It refuses,
// changing nothing, a payload that does not decode, is for another key or
// instance, fails its proof of knowledge, is too large, or was submitted
// before. It returns the payload ID. The transaction inside is checked only
// when its batch opens.
func (in *Instance) SubmitEncrypted(raw []byte) ([32]byte, error) {
	var id [32]byte
	if len(raw) > in.cfg.MaxTxBytes+payloadOverhead {
		return id, fmt.Errorf("fractal: submit encrypted: payload is %d bytes, limit %d", len(raw), in.cfg.MaxTxBytes+payloadOverhead)
	}
	p, err := tfhe.DecodePayload(raw)
	if err != nil {
		return id, fmt.Errorf("fractal: submit encrypted: %w", err)
	}
	id = p.ID()
	if err := in.errValidatorSet("submit encrypted"); err != nil {
		return id, err
	}
	in.lock()
	defer in.mu.Unlock()
	qc := in.queueCount()
	err = in.db.Update(func(txn *badger.Txn) error {
		pk, err := thresholdKey(txn)
		if err != nil {
			return err
		}
		if !bytes.Equal(p.Context, EncryptedContext(in.id)) {
			return errors.New("payload is not bound to this instance (wrong context)")
		}
		if err := p.Check(pk); err != nil {
			return err
		}
		if _, err := txn.Get(encKeyOf(encIndex, id[:])); err == nil {
			return errors.New("payload is already queued")
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if out, err := readOutcome(txn, id); err == nil {
			return fmt.Errorf("payload was already opened in encrypted batch %d", out.Batch)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if err := in.queueFull(txn, &qc); err != nil {
			return err
		}
		seq := in.nextSeq
		if err := txn.Set(encKeyOf(encQueue, u64(seq)), raw); err != nil {
			return err
		}
		if err := txn.Set(encKeyOf(encIndex, id[:]), u64(seq)); err != nil {
			return err
		}
		in.nextSeq = seq + 1 // before commit: a failed commit only leaves a gap
		return nil
	})
	if err == nil {
		in.settleQueue(qc)
	}
	if err != nil {
		return id, fmt.Errorf("fractal: submit encrypted %x: %w", id[:8], err)
	}
	return id, nil
}

// firstEncrypted returns the sequence of the first queued payload.
func firstEncrypted(txn *badger.Txn) (uint64, bool, error) {
	pre := encKeyOf(encQueue)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: pre})
	defer it.Close()
	it.Rewind()
	if !it.Valid() {
		return 0, false, nil
	}
	k := it.Item().Key()
	if len(k) != len(pre)+8 {
		return 0, false, fmt.Errorf("encrypted queue key %x is malformed", k)
	}
	return binary.BigEndian.Uint64(k[len(pre):]), true, nil
}

// afterEncryptedQueue returns the larger of next and one past the last
// queued payload's sequence, so that the two queues share one arrival order
// across restarts.
func afterEncryptedQueue(txn *badger.Txn, next uint64) (uint64, error) {
	pre := encKeyOf(encQueue)
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: pre})
	defer it.Close()
	it.Seek(append(pre, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	if !it.Valid() {
		return next, nil
	}
	k := it.Item().Key()
	if len(k) != len(pre)+8 {
		return 0, fmt.Errorf("encrypted queue key %x is malformed", k)
	}
	return max(next, binary.BigEndian.Uint64(k[len(pre):])+1), nil
}

// QueuedEncrypted returns the IDs of the queued payloads (not yet in a
// batch) in arrival order.
func (in *Instance) QueuedEncrypted() ([][32]byte, error) {
	var ids [][32]byte
	err := in.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: encKeyOf(encQueue)})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(ids) < MaxQueueRead; it.Next() {
			raw, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			p, err := tfhe.DecodePayload(raw)
			if err != nil {
				return err
			}
			ids = append(ids, p.ID())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: encrypted queue: %w", err)
	}
	return ids, nil
}

// EncryptedOutcome is what became of an encrypted transaction when its batch
// opened: the batch and slot, the transaction ID (zero when the payload did
// not decrypt or parse) and the receipt. A dropped payload's receipt is
// refused in admission, names the payload ID as its TxID and says why.
type EncryptedOutcome struct {
	Batch   uint64
	Slot    uint32
	TxID    [32]byte
	Receipt *phases.Receipt
}

const outcomeVersion = 1

func (o *EncryptedOutcome) encode() []byte {
	rc := o.Receipt.Encode()
	w := enc.NewWriter(50 + len(rc))
	w.U8(outcomeVersion)
	w.U64(o.Batch)
	w.U32(o.Slot)
	w.Fixed(o.TxID[:])
	w.Var(rc)
	return w.Bytes()
}

func decodeOutcome(b []byte) (*EncryptedOutcome, error) {
	r := enc.NewReader(b)
	o := &EncryptedOutcome{}
	if v := r.U8(); r.Err() == nil && v != outcomeVersion {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	o.Batch = r.U64()
	o.Slot = r.U32()
	r.Into(o.TxID[:])
	rc := r.Var(1<<24, "receipt")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("outcome: %w", err)
	}
	var err error
	if o.Receipt, err = phases.DecodeReceipt(rc); err != nil {
		return nil, fmt.Errorf("outcome: %w", err)
	}
	return o, nil
}

func readOutcome(txn *badger.Txn, id [32]byte) (*EncryptedOutcome, error) {
	raw, err := getValue(txn, encKeyOf(encOutcome, id[:]))
	if err != nil {
		return nil, err
	}
	return decodeOutcome(raw)
}

// Outcome returns what became of the payload with this ID once its batch
// opened.
func (in *Instance) Outcome(payload [32]byte) (*EncryptedOutcome, error) {
	var o *EncryptedOutcome
	err := in.db.View(func(txn *badger.Txn) (err error) {
		o, err = readOutcome(txn, payload)
		if errors.Is(err, badger.ErrKeyNotFound) {
			if _, e := txn.Get(encKeyOf(encIndex, payload[:])); e == nil {
				return errors.New("payload has not been opened yet")
			}
			return errors.New("no encrypted transaction with this payload ID")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: outcome %x: %w", payload[:8], err)
	}
	return o, nil
}
