package client

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// WalletSource is the node as a shielded wallet's source (wallet.SyncFrom):
// the blocks come in one CompactBlocks stream, decoded while the wallet
// applies the previous ones.
func (c *Client) WalletSource(ctx context.Context) wallet.Source { return walletSource{c, ctx} }

type walletSource struct {
	c   *Client
	ctx context.Context
}

func (s walletSource) Genesis() (*fractal.Block, error) {
	zero := uint64(0)
	return s.c.Block(s.ctx, &zero)
}

func (s walletSource) Head() (uint64, error) {
	st, err := s.c.Status(s.ctx)
	if err != nil {
		return 0, err
	}
	return st.GetHead().GetHeight(), nil
}

// decodeAhead is how many decoded blocks may wait for the wallet.
const decodeAhead = 64

func (s walletSource) Blocks(from, to uint64, fn func(*wallet.CompactBlock) error) error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	st, err := s.c.API.CompactBlocks(ctx, connect.NewRequest(&v1.CompactBlocksRequest{StartHeight: from, EndHeight: &to}))
	if err != nil {
		return s.c.wrap(err)
	}
	type decoded struct {
		cb  *wallet.CompactBlock
		err error
	}
	ch := make(chan decoded, decodeAhead)
	go func() {
		defer close(ch)
		defer st.Close()
		for st.Receive() {
			cb, err := wire.ToCompactBlock(st.Msg().GetCompactBlock())
			if err != nil {
				err = fmt.Errorf("node %s: %w", s.c.URL, err)
			}
			select {
			case ch <- decoded{cb, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
		if err := st.Err(); err != nil {
			select {
			case ch <- decoded{err: s.c.wrap(err)}:
			case <-ctx.Done():
			}
		}
	}()
	next := from
	for d := range ch {
		if d.err != nil {
			return d.err
		}
		if d.cb.Header.Height != next {
			return fmt.Errorf("node %s sent block %d where %d was due", s.c.URL, d.cb.Header.Height, next)
		}
		if err := fn(d.cb); err != nil {
			return err
		}
		next++
	}
	if next <= to {
		return fmt.Errorf("node %s ended the stream at block %d, before %d", s.c.URL, next, to)
	}
	return nil
}
