package fractal

// The side digest (decision 174): on a validator set, the encrypted
// mempool's records (keys, batches, slots, shares, outcomes) and the
// epochs' (DKG envelopes, epoch state, attempt records) are written by
// blocks but are not part of a manifest, so the head manifest's hash alone
// would not show that one validator's copy differs. Each decided block's
// writes under those prefixes are folded into a running digest, which the
// app hash covers (certify.AppHashOver): a validator whose execution wrote a
// different record answers another app hash at that very block.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// sideDigestTag starts every fold, so that the digest names what it is.
const sideDigestTag = "fractal side digest v1\x00"

// sidePrefixes are the key prefixes whose writes the side digest covers.
var sidePrefixes = [][]byte{
	{prefixEncrypted},
	decidedKey(decidedEpoch), decidedKey(decidedDKG), decidedKey(decidedEpochRecord),
}

func isSideKey(k []byte) bool {
	for _, p := range sidePrefixes {
		if bytes.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// sideLog remembers the last write of each side key of a block (nil:
// deleted); a nil log remembers nothing.
type sideLog struct{ writes map[string][]byte }

func newSideLog() *sideLog { return &sideLog{writes: map[string][]byte{}} }

func (l *sideLog) set(k, v []byte) {
	if l != nil && isSideKey(k) {
		l.writes[string(k)] = append([]byte{}, v...) // never nil: nil is a delete
	}
}

func (l *sideLog) delete(k []byte) {
	if l != nil && isSideKey(k) {
		l.writes[string(k)] = nil
	}
}

// fold returns the digest after prev and the block at consensus height
// with the logged writes: prev itself when the block wrote no side key,
// else SHA-256(tag ‖ prev ‖ u64 height ‖ u32 count ‖ per key in byte
// order: var key ‖ u8 0 (deleted) or 1 (set) ‖ [var value]).
func (l *sideLog) fold(prev [32]byte, height uint64) [32]byte {
	if len(l.writes) == 0 {
		return prev
	}
	keys := make([]string, 0, len(l.writes))
	for k := range l.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	h.Write([]byte(sideDigestTag))
	h.Write(prev[:])
	h.Write(binary.BigEndian.AppendUint64(nil, height))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(keys))))
	for _, k := range keys {
		v := l.writes[k]
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k))))
		h.Write([]byte(k))
		if v == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
		h.Write(v)
	}
	return [32]byte(h.Sum(nil))
}

// sideDigest reads the side digest after the last committed block (zero
// before any side record).
func sideDigest(txn *badger.Txn) ([32]byte, error) {
	var d [32]byte
	raw, err := getValue(txn, metaSide)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return d, nil
	case err != nil:
		return d, err
	case len(raw) != 32:
		return d, fmt.Errorf("side digest has %d bytes", len(raw))
	}
	return [32]byte(raw), nil
}
