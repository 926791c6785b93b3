package fractal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/tfhe"
)

// DefaultEncryptedExpiryBlocks is how many consensus heights a validator
// set's encrypted batch may wait for shares when its genesis names no
// window (decision 164).
const DefaultEncryptedExpiryBlocks = 100

// MaxEncryptedExpiryBlocks bounds the window, so that fixed height plus
// window never overflows.
const MaxEncryptedExpiryBlocks = 1 << 32

// AttachGenesisThresholdKey stores pk, the key the validators made by
// their DKG at genesis (decision 160), as a validator-set instance's
// threshold key, with expiry, the consensus heights a batch may wait for
// shares before FinalizeBlock closes it as expired (decision 164). Only
// before the first decided block: afterwards the key changes only through
// the chain. Attaching the stored key and window again changes nothing.
func (in *Instance) AttachGenesisThresholdKey(pk *tfhe.PublicKey, expiry uint64) error {
	if in.validators == nil {
		return errors.New("fractal: attach genesis threshold key: not a validator-set instance")
	}
	if pk.Origin != tfhe.OriginDKG {
		return fmt.Errorf("fractal: attach genesis threshold key: the key's origin is %s, a validator set takes only a DKG's", pk.Origin)
	}
	if expiry < 1 || expiry > MaxEncryptedExpiryBlocks {
		return fmt.Errorf("fractal: attach genesis threshold key: encrypted expiry of %d blocks, not in 1..%d", expiry, uint64(MaxEncryptedExpiryBlocks))
	}
	if have, err := in.ThresholdKey(); err == nil && have.ID() == pk.ID() {
		w, err := in.EncryptedExpiryBlocks()
		if err != nil {
			return err
		}
		if w != expiry {
			return fmt.Errorf("fractal: attach genesis threshold key: the instance's encrypted expiry is %d blocks, not %d", w, expiry)
		}
		return nil
	}
	return in.attachKey(pk, "attach genesis threshold key", func(txn *badger.Txn, old *tfhe.PublicKey) error {
		if old != nil {
			return errors.New("another threshold key is attached")
		}
		if _, err := getValue(txn, metaDecided); err == nil {
			return errors.New("the instance has decided blocks")
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(metaEncExpiry, u64(expiry))
	})
}

// EncryptedExpiryBlocks returns the consensus heights a validator set's
// encrypted batch may wait for shares (DefaultEncryptedExpiryBlocks when
// the genesis named none).
func (in *Instance) EncryptedExpiryBlocks() (uint64, error) {
	var w uint64
	err := in.db.View(func(txn *badger.Txn) (err error) {
		w, err = expiryWindow(txn)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("fractal: encrypted expiry: %w", err)
	}
	return w, nil
}

func expiryWindow(txn *badger.Txn) (uint64, error) {
	return storedU64(txn, metaEncExpiry, DefaultEncryptedExpiryBlocks)
}

// fixedAt returns the consensus height whose block fixed batch n.
func fixedAt(txn *badger.Txn, n uint64) (uint64, error) {
	h, err := storedU64(txn, encKeyOf(encFixedAt, u64(n)), 0)
	if err == nil && h == 0 {
		err = fmt.Errorf("encrypted batch %d: the height that fixed it is not stored", n)
	}
	return h, err
}

// storedU64 reads a u64 entry; def when it is absent.
func storedU64(txn *badger.Txn, key []byte, def uint64) (uint64, error) {
	raw, err := getValue(txn, key)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return def, nil
	case err != nil:
		return 0, err
	case len(raw) != 8:
		return 0, fmt.Errorf("entry %q has %d bytes, not 8", key, len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

// lastShares is what the last shares transaction brought a validator
// set's waiting batch that did not open: the consensus height of its block
// and the keyholders whose shares verified, ascending (decision 164).
type lastShares struct {
	Height     uint64
	Keyholders []int
}

const lastSharesVersion = 1

// encode: u8 1 ‖ u64 height ‖ u32 count ‖ count × u32 keyholder.
func (l *lastShares) encode() []byte {
	w := enc.NewWriter(13 + 4*len(l.Keyholders))
	w.U8(lastSharesVersion)
	w.U64(l.Height)
	w.U32(uint32(len(l.Keyholders)))
	for _, i := range l.Keyholders {
		w.U32(uint32(i))
	}
	return w.Bytes()
}

func decodeLastShares(b []byte) (*lastShares, error) {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != lastSharesVersion {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	l := &lastShares{Height: r.U64()}
	n := r.Count(maxKeyholders, "keyholders")
	for range n {
		l.Keyholders = append(l.Keyholders, int(r.U32()))
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("last shares record: %w", err)
	}
	return l, nil
}

// A ChainWait is where a validator set's waiting batch stands in
// consensus heights (decision 164).
type ChainWait struct {
	FixedAt   uint64 // the height whose block fixed its order
	ExpiresAt uint64 // the height whose block closes it as expired unless it opens
	Decided   uint64 // the last height committed
	// SharesAt is the height of the last block whose shares transaction
	// did not open it (0: none yet); the status's Shares are the
	// keyholders whose shares in it verified.
	SharesAt uint64
}

// chainWait fills st, batch n's waiting status, with where it stands in
// consensus heights.
func chainWait(txn *badger.Txn, n uint64, st *EncryptedStatus) error {
	at, err := fixedAt(txn, n)
	if err != nil {
		return err
	}
	window, err := expiryWindow(txn)
	if err != nil {
		return err
	}
	decided, err := storedU64(txn, metaDecided, 0)
	if err != nil {
		return err
	}
	st.Chain = &ChainWait{FixedAt: at, ExpiresAt: at + window, Decided: decided}
	raw, err := getValue(txn, encKeyOf(encLastShares, u64(n)))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	l, err := decodeLastShares(raw)
	if err != nil {
		return err
	}
	st.Chain.SharesAt, st.Shares = l.Height, append([]int{}, l.Keyholders...)
	return nil
}

// expiresAt reports whether waiting batch n expires in the block at
// consensus height h: h is its fixing height plus the window (h = 0: a
// question about the committed state, never).
func expiresAt(txn *badger.Txn, n, h uint64) (bool, error) {
	if h == 0 {
		return false, nil
	}
	// A batch fixed by a program older than the expiry has no height: it
	// waits as it did then.
	at, err := storedU64(txn, encKeyOf(encFixedAt, u64(n)), 0)
	if err != nil || at == 0 {
		return false, err
	}
	window, err := expiryWindow(txn)
	if err != nil {
		return false, err
	}
	return h >= at+window, nil
}

// writeExpired closes waiting batch p as expired by the chain at consensus
// height h: every slot's outcome is the drop receipt a solo instance's
// expiry gives (decision 078), unsigned, the close record names h.
func writeExpired(w kv.Writer, p *pendingBatch, h uint64) error {
	if _, err := recordExpired(w, p); err != nil {
		return err
	}
	return closeBatch(w, p.batch.Number, &batchClose{Expired: true, At: h})
}

// lastSharesOf is the record of the valid shares a block at consensus
// height h carried for a batch that still waits.
func lastSharesOf(h uint64, shares []*tfhe.ShareBatch) *lastShares {
	l := &lastShares{Height: h, Keyholders: []int{}}
	for _, sb := range shares {
		l.Keyholders = append(l.Keyholders, sb.Index)
	}
	return l
}
