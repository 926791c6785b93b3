package fractal

// Fees and block rewards on the instance (decisions 140, 141, 143): the
// Code a block runs with, the fee checks of admission, the queue's index of
// the fee notes queued transactions offer, and the reward transaction's
// part in a block.

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// blockCode is the instance as the phases' Code for one block: its
// deployed code, host functions and cross-instance transfers, and the
// chain rules for that block (phases.Fees: the fee token and the producer
// its fees go to; phases.Rewards: the reward it mints).
type blockCode struct {
	*Instance
	chain.BlockContext
}

// checkFee is admission's fee check against the committed store txn: a
// transaction without a fee passes only when min_gas_price is 0; one with
// a fee needs a fee token, a price of at least min_gas_price, and a fee
// note that pays (phases.FeeToken.Payable) and, when queued is set, that no
// queued transaction offers already.
func (in *Instance) checkFee(r kv.Reader, tx *phases.Tx, queued bool) error {
	if tx.Fee == nil {
		if in.cfg.MinGasPrice > 0 {
			return fmt.Errorf("no fee offered, and this instance's minimum gas price is %d (min_gas_price): name a fee note and a gas price", in.cfg.MinGasPrice)
		}
		return nil
	}
	t := in.rules.Fee
	switch {
	case t == nil:
		return errors.New("fee: this instance has no fee token")
	case tx.Fee.Price < in.cfg.MinGasPrice:
		return fmt.Errorf("fee: gas price %d is below the minimum %d (min_gas_price)", tx.Fee.Price, in.cfg.MinGasPrice)
	}
	n, err := snapshot{r}.Get(tx.Fee.Note)
	if err != nil {
		return err
	}
	if _, err := t.Payable(tx, n); err != nil {
		return fmt.Errorf("fee: %w", err)
	}
	if !queued {
		return nil
	}
	holder, ok, err := in.queuedFee(r, tx.Fee.Note)
	switch {
	case err != nil:
		return err
	case ok:
		return fmt.Errorf("fee: fee note %s is the fee of queued transaction %x", tx.Fee.Note, holder)
	}
	return nil
}

// queuedFee returns the ID of the queued transaction offering fee note k:
// from the memory queue when there is one (it holds the store's queue
// too), else from the store's index.
func (in *Instance) queuedFee(r kv.Reader, k notes.StateKey) ([]byte, bool, error) {
	if in.mem != nil {
		in.mem.mu.RLock()
		defer in.mem.mu.RUnlock()
		id, ok := in.mem.byFee[k.String()]
		return id[:], ok, nil
	}
	return r.Get(feeNoteKey(k))
}

// feeNoteKey is the queue's index entry of a fee note a queued transaction
// offers: 'f' and the note's state key text → the transaction's ID.
func feeNoteKey(k notes.StateKey) []byte { return append([]byte{prefixFeeNote}, k.String()...) }

// enqueue writes tx, with ID id, as queued transaction seq: the queue
// entry, its fee note's, and its ID's last: a fold cut by a full badger
// transaction (chunkedWrite) takes the ID's key for an entry written
// whole and skips it when it runs again.
func enqueue(txn *badger.Txn, seq uint64, id notes.Hash, raw []byte, tx *phases.Tx) error {
	if err := txn.Set(seqKey(prefixQueue, seq), raw); err != nil {
		return err
	}
	if tx.Fee != nil {
		if err := txn.Set(feeNoteKey(tx.Fee.Note), id[:]); err != nil {
			return err
		}
	}
	return txn.Set(hashKey(prefixPending, id), u64(seq))
}

// dequeue removes what enqueue wrote for tx, queued as seq.
func dequeue(w kv.Store, seq uint64, tx *phases.Tx) error {
	if err := w.Delete(seqKey(prefixQueue, seq)); err != nil {
		return err
	}
	if err := w.Delete(hashKey(prefixPending, tx.ID())); err != nil {
		return err
	}
	if tx.Fee != nil {
		return w.Delete(feeNoteKey(tx.Fee.Note))
	}
	return nil
}

// rewardPart is the block reward's part in a block: a reward transaction
// may only be the block's first, so a producer mints at most once a block
// (the reward's checks proper are the rules', chain.Reward.RewardNote).
type rewardPart struct{}

func (rewardPart) admit(txs []*phases.Tx) []error {
	errs := make([]error, len(txs))
	for i, tx := range txs {
		if i > 0 && phases.IsReward(tx) {
			errs[i] = errors.New("reward: a block's reward transaction is its first, and there is one at most")
		}
	}
	return errs
}

func (rewardPart) apply(*TxResult) error { return nil }

func (rewardPart) finish(*chain.Block) {}

func (rewardPart) write(kv.Store, *Execution) error { return nil }
