package client

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// WalletInstance is the node as a shielded wallet's instance
// (wallet.Instance, and wallet.CompactChain: a sync reads the blocks in one
// CompactBlocks stream, decoded while the wallet applies the previous
// ones). Its calls run under ctx; it asks the node for its instance ID
// once, now.
func (c *Client) WalletInstance(ctx context.Context) (wallet.Instance, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	id, err := wire.ParseHash(st.InstanceId)
	if err != nil {
		return nil, fmt.Errorf("node %s: instance_id: %w", c.URL, err)
	}
	return walletInstance{c, ctx, id}, nil
}

// TrustedWalletInstance is WalletInstance for a validator set's node that
// the wallet does not trust (wallet.CertifiedChain): the node must serve
// the instance id whose genesis block hashes to genesis, and the blocks a
// sync applies are believed only once a commit of set, the trust entry's
// validator set, certifies them (decision 166).
func (c *Client) TrustedWalletInstance(ctx context.Context, id, genesis [32]byte, set *certify.ValidatorSet) (wallet.Instance, error) {
	in, err := c.WalletInstance(ctx)
	if err != nil {
		return nil, err
	}
	if got := in.ID(); got != id {
		return nil, fmt.Errorf("node %s serves instance %x, the trust entry names %x", c.URL, got[:8], id[:8])
	}
	return certifiedInstance{in.(walletInstance), genesis, set}, nil
}

// certifiedInstance is a walletInstance whose blocks a sync certifies.
type certifiedInstance struct {
	walletInstance
	genesis [32]byte
	set     *certify.ValidatorSet
}

var _ wallet.CertifiedChain = certifiedInstance{}

// Block checks the genesis block against the trust entry: a sync starts
// from it, and no certificate covers it before the first save.
func (s certifiedInstance) Block(h uint64) (*chain.Block, error) {
	b, err := s.walletInstance.Block(h)
	if err == nil && h == 0 && b.Hash() != s.genesis {
		got := b.Hash()
		err = fmt.Errorf("node %s: its genesis block hashes to %x, the trust entry names %x", s.c.URL, got[:8], s.genesis[:8])
	}
	return b, err
}

func (s certifiedInstance) Trusted() *certify.ValidatorSet { return s.set }

func (s certifiedInstance) Certificate(h uint64) ([]byte, error) {
	return s.c.Certificate(s.ctx, h)
}

type walletInstance struct {
	c   *Client
	ctx context.Context
	id  [32]byte
}

var _ wallet.CompactChain = walletInstance{}

func (s walletInstance) ID() [32]byte { return s.id }

func (s walletInstance) Head() (*chain.Block, error) { return s.c.Block(s.ctx, nil) }

func (s walletInstance) Block(h uint64) (*chain.Block, error) { return s.c.Block(s.ctx, &h) }

// Transactions asks for b's transactions one by one (a sync reads compact
// blocks instead).
func (s walletInstance) Transactions(b *chain.Block) ([]*phases.Tx, error) {
	txs := make([]*phases.Tx, len(b.TxIDs))
	for i, id := range b.TxIDs {
		r, err := s.c.API.GetTransaction(s.ctx, connect.NewRequest(&v1.GetTransactionRequest{TxId: wire.Hex(id)}))
		if err != nil {
			return nil, s.c.wrap(err)
		}
		if txs[i], err = phases.DecodeTx(r.Msg.GetTransaction().GetEncoding()); err != nil {
			return nil, fmt.Errorf("node %s: transaction %x: %w", s.c.URL, id[:8], err)
		}
	}
	return txs, nil
}

func (s walletInstance) Notes(p notes.Pattern) ([]*notes.Note, error) {
	return s.c.Notes(s.ctx, p.String())
}

func (s walletInstance) Deploy(src []byte) (notes.Hash, error) { return s.c.Deploy(s.ctx, src) }

// Submit waits for the receipt: a validator's node does not know a
// transaction that waits in CometBFT's mempool (GetReceipt answers
// not_found until a block holds it), so SealFor could not poll for it.
func (s walletInstance) Submit(tx *phases.Tx) (notes.Hash, error) {
	o, err := s.c.Submit(s.ctx, tx, true)
	if err != nil {
		return notes.Hash{}, err
	}
	return o.ID, nil
}

// receiptPoll is how often SealFor asks for a receipt the node has not
// decided yet.
const receiptPoll = 100 * time.Millisecond

// SealFor waits, until ctx ends, for the node to decide the transaction id
// (the node seals by itself), and returns its receipt with the committing
// block (nil when refused).
func (s walletInstance) SealFor(ctx context.Context, id notes.Hash) (*phases.Receipt, *chain.Block, error) {
	for {
		o, err := s.c.Receipt(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		switch o.State {
		case v1.TransactionState_TRANSACTION_STATE_COMMITTED:
			b, err := s.c.Block(ctx, &o.Height)
			return o.Receipt, b, err
		case v1.TransactionState_TRANSACTION_STATE_REFUSED:
			return o.Receipt, nil, nil
		case v1.TransactionState_TRANSACTION_STATE_UNSPECIFIED:
			return nil, nil, fmt.Errorf("node %s does not know transaction %x", s.c.URL, id[:8])
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("node %s: transaction %x is not sealed yet: %w", s.c.URL, id[:8], ctx.Err())
		case <-time.After(receiptPoll):
		}
	}
}

// decodeAhead is how many decoded blocks may wait for the wallet.
const decodeAhead = 64

func (s walletInstance) CompactBlocks(from, to uint64, fn func(*wallet.CompactBlock) error) error {
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
