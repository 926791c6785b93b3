package chain

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
)

// EncryptedBatch is the signed record that fixes the order of a batch of
// encrypted transactions before anyone can decrypt them: the executor signs
// the instance, the batch number, the threshold key and the payload IDs in
// slot order. Keyholders release shares only for the batch that waits, and
// the batch executes in exactly this order.
type EncryptedBatch struct {
	Instance   [32]byte
	Number     uint64   // 1 for the first batch
	Head       uint64   // chain height when the order was fixed: the batch's block, if any, is Head+1
	Key        [32]byte // threshold key ID the payloads are sealed to
	PayloadIDs [][32]byte
	Executor   [32]byte
	Signature  [64]byte // XEdDSA by Executor over encBatchSigContext || Hash()
}

const (
	encBatchVersion     = 2 // 1 had no Head
	encBatchSigContext  = "fractal encrypted batch v1\x00"
	encExpirySigContext = "fractal encrypted batch expiry v1\x00"
)

// Commitment is SHA-256 over list<bytes[32]> of the payload IDs (the same
// construction as a block's transactions hash).
func (b *EncryptedBatch) Commitment() [32]byte { return TxsHash(b.PayloadIDs) }

func (b *EncryptedBatch) header(w *enc.Writer) {
	c := b.Commitment()
	w.U8(encBatchVersion)
	w.Fixed(b.Instance[:])
	w.U64(b.Number)
	w.U64(b.Head)
	w.Fixed(b.Key[:])
	w.U32(uint32(len(b.PayloadIDs)))
	w.Fixed(c[:])
	w.Fixed(b.Executor[:])
}

// Hash is SHA-256 over the header: every field before the signature, with
// the payload IDs by their count and commitment.
func (b *EncryptedBatch) Hash() [32]byte {
	w := enc.NewWriter(190)
	b.header(w)
	return sha256.Sum256(w.Bytes())
}

// SignedMessage is what the executor signs to fix the batch's order: a
// context string, then the batch hash.
func (b *EncryptedBatch) SignedMessage() []byte {
	h := b.Hash()
	return append([]byte(encBatchSigContext), h[:]...)
}

// Verify checks the executor's signature.
func (b *EncryptedBatch) Verify() error {
	if err := keys.Verify(keys.PublicKey(b.Executor), b.SignedMessage(), b.Signature[:]); err != nil {
		return fmt.Errorf("fractal: encrypted batch %d: executor signature: %w", b.Number, err)
	}
	return nil
}

// Encode returns the canonical encoding: header, signature, payload IDs.
func (b *EncryptedBatch) Encode() []byte {
	w := enc.NewWriter(250 + 32*len(b.PayloadIDs))
	b.header(w)
	w.Fixed(b.Signature[:])
	writeHashes(w, b.PayloadIDs)
	return w.Bytes()
}

// DecodeEncryptedBatch parses a batch record, refusing an unknown version,
// truncation, trailing bytes, more than MaxBlockTxs payloads, an empty
// batch, and a count or commitment that does not match the ID list. It does
// not check the signature (see Verify).
func DecodeEncryptedBatch(data []byte) (*EncryptedBatch, error) {
	r := enc.NewReader(data)
	b := &EncryptedBatch{}
	if v := r.U8(); r.Err() == nil && v != encBatchVersion {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	r.Into(b.Instance[:])
	b.Number = r.U64()
	b.Head = r.U64()
	r.Into(b.Key[:])
	count := r.U32()
	var commitment [32]byte
	r.Into(commitment[:])
	r.Into(b.Executor[:])
	r.Into(b.Signature[:])
	b.PayloadIDs = readHashes(r, "payloads")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: decode encrypted batch: %w", err)
	}
	switch {
	case len(b.PayloadIDs) == 0:
		return nil, errors.New("fractal: decode encrypted batch: no payloads")
	case int(count) != len(b.PayloadIDs):
		return nil, fmt.Errorf("fractal: decode encrypted batch: count %d for %d payloads", count, len(b.PayloadIDs))
	case b.Commitment() != commitment:
		return nil, errors.New("fractal: decode encrypted batch: commitment does not match the payload list")
	}
	return b, nil
}

// ExpiryMessage is what the executor signs to close the batch undecrypted
// (decision 078): another context string, then the batch hash.
func (b *EncryptedBatch) ExpiryMessage() []byte {
	h := b.Hash()
	return append([]byte(encExpirySigContext), h[:]...)
}

// VerifyExpiry checks the executor's signature on the batch's expiry.
func (b *EncryptedBatch) VerifyExpiry(sig []byte) error {
	return keys.Verify(keys.PublicKey(b.Executor), b.ExpiryMessage(), sig)
}
