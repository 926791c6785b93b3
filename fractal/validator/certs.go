package validator

import (
	"context"
	"fmt"
	"time"

	"github.com/cometbft/cometbft/store"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal/certify"
)

// maxCertificateWait bounds how long a query waits for the header that
// certifies the state it proves: about one block.
const maxCertificateWait = 15 * time.Second

// blockCerts finds certificates in CometBFT's block store. The state after
// height h is named by the app hash in the header of h+1 (CometBFT v0.38
// executes a block after agreeing on it), so its certificate is that
// header with a commit for it: the canonical one, stored with block h+2,
// or until then the commit this node saw, signed as well.
type blockCerts struct{ bs *store.BlockStore }

func (c blockCerts) Certificate(ctx context.Context, h int64, side [32]byte) ([]byte, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, maxCertificateWait)
	defer cancel()
	for c.bs.Height() < h+1 {
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("the header after height %d that certifies it is not committed yet (height %d)", h, c.bs.Height())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return certificateAt(c.bs, h+1, side)
}

// certificateAt returns the certificate made of the header at height and a
// commit for it, with side, the side digest its app hash folds in.
func certificateAt(bs *store.BlockStore, height int64, side [32]byte) ([]byte, int64, error) {
	meta := bs.LoadBlockMeta(height)
	if meta == nil {
		return nil, 0, fmt.Errorf("no header at height %d in the block store", height)
	}
	commit := bs.LoadBlockCommit(height)
	if commit == nil {
		commit = bs.LoadSeenCommit(height)
	}
	if commit == nil {
		return nil, 0, fmt.Errorf("no commit for height %d in the block store", height)
	}
	cert, err := certify.EncodeCertificate(&types.SignedHeader{Header: &meta.Header, Commit: commit}, side)
	return cert, height, err
}

// Certificate returns the certificate of the instance's block at height:
// the consensus header after the one that made it, with a commit for it.
// It waits, within ctx and maxCertificateWait, for that header.
func (n *Node) Certificate(ctx context.Context, height uint64) ([]byte, error) {
	at, side, err := n.in.DecidedAt(height)
	if err != nil {
		return nil, err
	}
	cert, _, err := blockCerts{n.node.BlockStore()}.Certificate(ctx, int64(at), side)
	return cert, err
}
