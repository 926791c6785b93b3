package validator

import (
	"context"
	"fmt"
	"strings"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
)

// A Client talks to a running validator through CometBFT's RPC: it hands
// in transactions and asks for certified proofs and claims.
type Client struct {
	rpc  *rpchttp.HTTP
	addr string
}

// Dial returns a client of the validator whose RPC listens at addr
// (http://host:port, or tcp://host:port as config.toml writes it).
func Dial(addr string) (*Client, error) {
	url := addr
	if rest, ok := strings.CutPrefix(url, "tcp://"); ok {
		url = "http://" + rest
	}
	c, err := rpchttp.New(url, "/websocket")
	if err != nil {
		return nil, fmt.Errorf("validator: rpc %s: %w", addr, err)
	}
	return &Client{rpc: c, addr: url}, nil
}

// RPCAddress returns the RPC address in home's config.toml.
func RPCAddress(home string) (string, error) {
	c, err := loadConfig(home)
	if err != nil {
		return "", fmt.Errorf("validator: %w", err)
	}
	return c.RPC.ListenAddress, nil
}

// Submit hands raw to the validator's mempool (broadcast_tx_sync); the
// error is the refusal, with its reason.
func (c *Client) Submit(ctx context.Context, raw []byte) error {
	r, err := c.rpc.BroadcastTxSync(ctx, types.Tx(raw))
	if err != nil {
		return fmt.Errorf("validator: submit to %s: %w", c.addr, err)
	}
	if r.Code != abci.CodeOK {
		return fmt.Errorf("validator: %s refused the transaction (code %d): %s", c.addr, r.Code, r.Log)
	}
	return nil
}

// Prove asks for the certified proof of what lives at k.
func (c *Client) Prove(ctx context.Context, k notes.StateKey) (*chain.QueryProof, error) {
	raw, err := c.query(ctx, abci.PathProve, []byte(k.String()))
	if err != nil {
		return nil, err
	}
	return chain.DecodeQueryProof(raw)
}

// Claim asks for the certified claim of the export with ID id.
func (c *Client) Claim(ctx context.Context, id [32]byte) (*chain.Claim, error) {
	raw, err := c.query(ctx, abci.PathClaim, id[:])
	if err != nil {
		return nil, err
	}
	return chain.DecodeClaim(raw)
}

func (c *Client) query(ctx context.Context, path string, data []byte) ([]byte, error) {
	r, err := c.rpc.ABCIQuery(ctx, path, data)
	if err != nil {
		return nil, fmt.Errorf("validator: query %s: %w", c.addr, err)
	}
	if r.Response.Code != abci.CodeOK {
		return nil, fmt.Errorf("validator: %s: %s", c.addr, r.Response.Log)
	}
	return r.Response.Value, nil
}
