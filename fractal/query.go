package fractal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Head returns the last sealed block.
func (in *Instance) Head() (*chain.Block, error) {
	var b *chain.Block
	err := in.db.View(func(txn *badger.Txn) (err error) {
		b, err = in.headBlock(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: head: %w", err)
	}
	return b, nil
}

// Block returns the block at height.
func (in *Instance) Block(height uint64) (*chain.Block, error) {
	var b *chain.Block
	err := in.db.View(func(txn *badger.Txn) (err error) {
		b, err = in.blockAt(txn, height)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: %w", err)
	}
	return b, nil
}

// headBlock reads the last block.
func (in *Instance) headBlock(txn *badger.Txn) (*chain.Block, error) {
	h, err := headHeight(txn)
	if err != nil {
		return nil, err
	}
	return in.blockAt(txn, h)
}

func (in *Instance) blockAt(txn *badger.Txn, height uint64) (*chain.Block, error) {
	raw, err := getValue(txn, seqKey(prefixBlock, height))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("no block at height %d", height)
	}
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	b, err := chain.DecodeBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", height, err)
	}
	return b, nil
}

func headHeight(txn *badger.Txn) (uint64, error) {
	raw, err := getValue(txn, metaHead)
	if err != nil {
		return 0, fmt.Errorf("head height: %w", err)
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("head height has %d bytes", len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

// Receipt returns the stored receipt of the committed transaction id.
func (in *Instance) Receipt(id notes.Hash) (*phases.Receipt, error) {
	var rc *phases.Receipt
	err := in.db.View(func(txn *badger.Txn) error {
		raw, err := getValue(txn, hashKey(prefixReceipt, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			if errors.Is(in.checkFresh(badgerdb.KV{Txn: txn}, id), ErrQueued) {
				return errors.New("queued, not sealed yet: a block that takes it stores its receipt")
			}
			return errors.New("no committed transaction with this ID")
		}
		if err != nil {
			return err
		}
		rc, err = phases.DecodeReceipt(raw)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: receipt %x: %w", id, err)
	}
	return rc, nil
}
