package fractal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/keys"
)

// signGuarded is the one place where the executor's signer is used: for a
// block, an encrypted batch record or an expiry (kind k, numbered and
// hashed as rec), it signs msg and hands the signature to store, which
// must make it durable (commit the write that holds it). The guard is
// checked against the committed store first (a store that lost signed
// records is refused; for a block, one that an imported manifest shows this
// key already signed differently at its height is refused too), and rec is
// recorded in the guard file, synced, before the signer signs; once store
// returns, rec is recorded as signed. A failure after the signature leaves
// the guard recording rec as being signed, which the next check settles by
// looking at the store (decisions 095, 102).
func (in *Instance) signGuarded(ctx context.Context, k guard.Kind, rec guard.Block, msg []byte, store func(sig []byte) error) error {
	if err := in.signBegun(ctx, k, rec, msg, store); err != nil {
		return err
	}
	return in.guard.Done(k, rec)
}

// signBegun is signGuarded but for the last step: rec stays recorded as
// being signed until the caller calls the guard's Done, once what store
// began is durable (a pipelined seal's write, decision 186).
func (in *Instance) signBegun(ctx context.Context, k guard.Kind, rec guard.Block, msg []byte, store func(sig []byte) error) error {
	if in.guard == nil {
		return fmt.Errorf("sign %s: this validator-set instance signs nothing: its validators' commits certify its blocks", signedWhat[k])
	}
	if _, signed := in.guard.Signed(guard.Blocks); signed { // else this is the genesis block
		view := in.db.NewTransaction(false)
		defer view.Discard()
		if err := in.guard.Check(txnChain{in, view}); err != nil {
			return err
		}
		if k == guard.Blocks {
			if err := refuseImportedRival(view, rec); err != nil {
				return err
			}
		}
	}
	if err := in.guard.Begin(k, rec); err != nil {
		return err
	}
	sig, err := keys.SignChecked(ctx, in.signer, msg)
	if err != nil {
		return fmt.Errorf("sign %s: %w", signedWhat[k], err)
	}
	return store(sig)
}

var signedWhat = map[guard.Kind]string{guard.Blocks: "block", guard.Batches: "encrypted batch", guard.Expiries: "expiry"}

// txnChain shows the guard what the store holds, as txn sees it: its
// blocks, its encrypted batch records and the expiries among their closes.
type txnChain struct {
	in  *Instance
	txn *badger.Txn
}

func (c txnChain) Last(k guard.Kind) (guard.Block, bool, error) {
	var last uint64
	var err error
	switch k {
	case guard.Blocks:
		last, err = headHeight(c.txn)
	case guard.Batches:
		last, err = lastBatch(c.txn)
	case guard.Expiries:
		last, err = lastExpired(c.txn)
	}
	if err != nil || (k != guard.Blocks && last == 0) {
		return guard.Block{}, false, err
	}
	h, ok, err := c.HashAt(k, last)
	if err == nil && !ok {
		err = fmt.Errorf("the store's last %s %d is missing", signedWhat[k], last)
	}
	return guard.Block{Height: last, Hash: h}, err == nil, err
}

// HashAt returns, for a block, its hash; for a batch record or an expiry,
// the batch record's hash (what both signatures are over).
func (c txnChain) HashAt(k guard.Kind, n uint64) ([32]byte, bool, error) {
	switch k {
	case guard.Blocks:
		if _, err := c.txn.Get(seqKey(prefixBlock, n)); errors.Is(err, badger.ErrKeyNotFound) {
			return [32]byte{}, false, nil
		}
		b, err := c.in.blockAt(c.txn, n)
		if err != nil {
			return [32]byte{}, false, err
		}
		return b.Hash(), true, nil
	case guard.Expiries:
		cl, err := readClose(c.txn, n)
		if errors.Is(err, badger.ErrKeyNotFound) || err == nil && !cl.Expired {
			return [32]byte{}, false, nil
		}
		if err != nil {
			return [32]byte{}, false, err
		}
	}
	raw, err := getValue(c.txn, encKeyOf(encBatch, u64(n)))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return [32]byte{}, false, nil
	}
	if err != nil {
		return [32]byte{}, false, err
	}
	b, err := chain.DecodeEncryptedBatch(raw)
	if err != nil {
		return [32]byte{}, false, fmt.Errorf("encrypted batch %d: %w", n, err)
	}
	return b.Hash(), true, nil
}

// lastExpired returns the number of the highest batch closed by an
// expiry, 0 for none.
func lastExpired(txn *badger.Txn) (uint64, error) {
	var last uint64
	err := badgerdb.KV{Txn: txn}.Scan(encKeyOf(encOpened), func(k, v []byte) error {
		if len(k) != 10 {
			return fmt.Errorf("batch close key %x is malformed", k)
		}
		c, err := decodeClose(v)
		if err != nil {
			return err
		}
		if c.Expired {
			last = binary.BigEndian.Uint64(k[2:])
		}
		return nil
	})
	return last, err
}
