package fractal

import (
	"context"
	"fmt"
	"slices"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Sealing until one submission has its outcome or its place: what a client
// that submitted a transaction waits for (the CLI's tx submit, the shielded
// wallet, imports).

// SealFor seals blocks until the one that decides the queued transaction
// id, and returns its receipt with the block that committed it (nil when it
// was refused without paying a fee: the receipt says why, and nothing of it
// is stored).
// Transactions queued before it may fill blocks first; each of those seals
// commits them as Seal does. It fails when a seal takes nothing (the
// transaction is not queued, or waits behind an encrypted batch) and when
// ctx is done, checked before each seal.
func (in *Instance) SealFor(ctx context.Context, id notes.Hash) (*phases.Receipt, *chain.Block, error) {
	// Every seal that returns receipts takes at least one transaction from
	// a queue of at most MaxQueue, so id is taken within that many seals.
	for range in.cfg.MaxQueue + 1 {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		s, err := in.Seal(ctx)
		if err != nil {
			return nil, nil, err
		}
		if len(s.Receipts) == 0 {
			break
		}
		for _, rc := range s.Receipts {
			switch {
			case rc.TxID != id:
			case !rc.Committed():
				return rc, nil, nil
			default:
				return rc, s.Block, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("transaction %x was not sealed", id[:8])
}

// SubmitEncryptedTx seals the signed transaction tx to the instance's
// threshold key (EncryptTx) and queues the ciphertext (SubmitEncrypted). It
// returns the payload ID.
func (in *Instance) SubmitEncryptedTx(tx *phases.Tx) ([32]byte, error) {
	pk, err := in.ThresholdKey()
	if err != nil {
		return [32]byte{}, err
	}
	p, err := EncryptTx(pk, in.ID(), tx)
	if err != nil {
		return [32]byte{}, err
	}
	return in.SubmitEncrypted(p.Encode())
}

// SealUntilPlaced seals until the queued encrypted payload pid has its place
// fixed in a batch, or waits behind a batch that waits for keyholder shares.
// Each seal first runs what arrived before the payload. It returns every
// seal's result in order and the batch that fixed the payload's place (nil
// when it waits). ctx is checked before each seal.
func (in *Instance) SealUntilPlaced(ctx context.Context, pid [32]byte) ([]*Sealed, *EncryptedStatus, error) {
	var done []*Sealed
	for range chain.MaxBlockTxs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		s, err := in.Seal(ctx)
		if err != nil {
			return nil, nil, err
		}
		done = append(done, s)
		st := s.Encrypted
		switch {
		case st == nil && s.Block == nil && len(s.Receipts) == 0:
			return done, nil, nil // nothing queued: cannot happen after a submission
		case st != nil && st.State == BatchFixed && slices.Contains(st.Batch.PayloadIDs, pid):
			return done, st, nil
		case st != nil && st.State == BatchWaiting:
			return done, nil, nil // behind a batch that waits for shares
		}
	}
	return done, nil, nil
}
