package validator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/fractalvm/fractal/fractal/abci"
)

// askPeersTimeout bounds how long a diverged validator asks the others for
// their results before it stops anyway.
const askPeersTimeout = 10 * time.Second

// consensusFailed turns CometBFT's consensus failure into the error that
// stops this validator. When the block the others committed carries
// another app hash or results hash than this validator computed for the
// height before, its execution differs from theirs: it asks the other
// validators (validator.json's rpc_peers) for their results at that
// height and names the first transaction whose result differs, as fractal
// verify names the first transaction whose root differs (decision 124).
func (n *Node) consensusFailed(msg string) {
	h, _, err := n.in.Decided()
	if err != nil {
		n.fail(fmt.Errorf("validator: consensus failed (%s), and the store failed: %w", firstLine(msg), err))
		return
	}
	if !strings.Contains(msg, "wrong Block.Header.AppHash") && !strings.Contains(msg, "wrong Block.Header.LastResultsHash") {
		n.fail(fmt.Errorf("validator: consensus failed at height %d: %s", h+1, firstLine(msg)))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), askPeersTimeout)
	defer cancel()
	detail := "this validator no longer remembers its results there"
	if mine, ok := n.app.Results(int64(h)); ok {
		theirs, from, err := n.networkResults(ctx, int64(h))
		if err != nil {
			detail = fmt.Sprintf("the network's results could not be read (%v)", err)
		} else {
			detail = abci.FirstDifference(mine, theirs) + " (the network's from " + from + ")"
		}
	}
	n.fail(fmt.Errorf("validator: execution differs from the network's at height %d: %s; this validator stops", h, detail))
}

// networkResults asks the other validators, in turn, for their results at
// height and returns the first answer with who gave it.
func (n *Node) networkResults(ctx context.Context, height int64) ([]*abcitypes.ExecTxResult, string, error) {
	if len(n.settings.RPCPeers) == 0 {
		return nil, "", fmt.Errorf("%s names no rpc_peers", settingsFile)
	}
	var errs []error
	for _, addr := range n.settings.RPCPeers {
		c, err := rpchttp.New(addr, "/websocket")
		if err == nil {
			r, rerr := c.BlockResults(ctx, &height)
			if rerr == nil {
				return r.TxsResults, addr, nil
			}
			err = rerr
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, "", errors.Join(errs...)
}
