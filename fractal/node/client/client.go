// Package client talks to a node (fractal node) over its API: gRPC over
// unencrypted HTTP/2 through the generated Connect client, with helpers
// that return the instance's own types, decoded from the canonical bytes
// the node sends (never from the readable fields beside them). The command
// line, the wallet's remote sync and the relayer use it.
package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/api/fractalv1/fractalv1connect"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// Client is a connection to one node.
type Client struct {
	URL string
	API fractalv1connect.FractalServiceClient
}

// maxResponseBytes bounds one message the node sends.
const maxResponseBytes = 16 << 20

// New returns a client of the node at url ("http://HOST:PORT", or
// "HOST:PORT"). It speaks the Connect protocol (binary protobuf) over
// unencrypted HTTP/2: one connection for every call and stream. A unary
// answer is one HEADERS and one DATA frame, where gRPC's adds a trailers
// frame and an envelope (decision 172).
func New(url string) (*Client, error) {
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("node URL %q: only http:// (unencrypted, for loopback) is supported", url)
	}
	// The API is at the node's root: a path (an explorer page's address)
	// would make every call a 404 answered as "unimplemented".
	if u, err := neturl.Parse(url); err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("node URL %q: give the node's address alone, http://HOST:PORT (no path or query)", url)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{
		Protocols:   &p,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		// One dial at a time (for HTTP/2 this bounds the dials in flight,
		// not the connections): calls started together wait for the first
		// connection and share it, instead of each dialling its own past
		// the node's max_connections_per_client (decision 170).
		MaxConnsPerHost: 1,
	}}
	return &Client{URL: url, API: fractalv1connect.NewFractalServiceClient(hc, url,
		connect.WithReadMaxBytes(maxResponseBytes))}, nil
}

// Error is a call that failed, worded for people: the node's message and
// its code.
type Error struct {
	Code        connect.Code
	Msg         string
	unreachable bool
	err         error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.err }

// Unreachable reports whether the node could not be reached at all.
func (e *Error) Unreachable() bool { return e.unreachable }

// wrap words a failed call's error.
func (c *Client) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("node %s: %w", c.URL, err)
	}
	if ce.Code() == connect.CodeUnavailable && isDialError(err) {
		return &Error{Code: ce.Code(), Msg: fmt.Sprintf("node %s does not answer (is it running? fractal node --home DIR)", c.URL), unreachable: true, err: err}
	}
	return codeError(ce.Code(), ce.Message(), err)
}

// codeError is the node's refusal with code and message, worded for
// people.
func codeError(code connect.Code, msg string, err error) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf("%s (%s)", msg, code), err: err}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*v1.GetStatusResponse, error) {
	r, err := c.API.GetStatus(ctx, connect.NewRequest(&v1.GetStatusRequest{}))
	if err != nil {
		return nil, c.wrap(err)
	}
	return r.Msg, nil
}

// Outcome is where a submitted transaction stands.
type Outcome struct {
	ID      notes.Hash
	State   v1.TransactionState
	Height  uint64          // the committing block (committed)
	Receipt *phases.Receipt // committed or refused
}

// Submit submits a signed transaction and, with wait, waits for its receipt
// (until ctx's deadline nears).
func (c *Client) Submit(ctx context.Context, tx *phases.Tx, wait bool) (*Outcome, error) {
	r, err := c.API.SubmitTransaction(ctx, connect.NewRequest(&v1.SubmitTransactionRequest{
		Tx: &v1.SubmitTransactionRequest_TxBytes{TxBytes: tx.Encode()}, WaitForReceipt: wait,
	}))
	if err != nil {
		return nil, c.wrap(err)
	}
	return c.outcome(r.Msg.TxId, r.Msg.State, r.Msg.Height, r.Msg.Receipt)
}

// Submitted is one transaction's answer in a batch submission: where it
// stands, or Err, the node's refusal of it (an *Error with the code and
// message SubmitTransaction would have failed with). Outcome.ID is set
// either way.
type Submitted struct {
	Outcome
	Err error
}

// SubmitBatch submits signed transactions in one call (SubmitTransactions:
// at most 256, within the node's max_request_bytes): the node admits them
// together and in order and answers each; with wait, once each admitted one
// is committed or refused (until ctx's deadline nears). The call fails as
// a whole only when the node refuses the request itself (empty, too many,
// too large) or cannot be reached.
func (c *Client) SubmitBatch(ctx context.Context, txs []*phases.Tx, wait bool) ([]Submitted, error) {
	req := &v1.SubmitTransactionsRequest{Transactions: make([]*v1.TransactionInput, len(txs)), WaitForReceipt: wait}
	for i, tx := range txs {
		req.Transactions[i] = &v1.TransactionInput{Tx: &v1.TransactionInput_TxBytes{TxBytes: tx.Encode()}}
	}
	r, err := c.API.SubmitTransactions(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, c.wrap(err)
	}
	if len(r.Msg.Results) != len(txs) {
		return nil, fmt.Errorf("node %s: %d results for %d transactions", c.URL, len(r.Msg.Results), len(txs))
	}
	out := make([]Submitted, len(txs))
	for i, res := range r.Msg.Results {
		id := txs[i].ID()
		if res.Error != nil {
			var code connect.Code
			if err := code.UnmarshalText([]byte(res.Error.Code)); err != nil {
				return nil, fmt.Errorf("node %s: result %d: %w", c.URL, i, err)
			}
			out[i] = Submitted{Outcome: Outcome{ID: id}, Err: codeError(code, res.Error.Message, nil)}
			continue
		}
		o, err := c.outcome(res.TxId, res.State, res.Height, res.Receipt)
		if err != nil {
			return nil, err
		}
		if o.ID != id {
			return nil, fmt.Errorf("node %s: result %d is for transaction %x, not %x", c.URL, i, o.ID, id)
		}
		out[i].Outcome = *o
	}
	return out, nil
}

// Simulate runs a signed tx on the node's committed state without
// committing it (phases 1–3, as the next block would) and returns the
// receipt it would get.
func (c *Client) Simulate(ctx context.Context, tx *phases.Tx) (*phases.Receipt, error) {
	r, err := c.API.Simulate(ctx, connect.NewRequest(&v1.SimulateRequest{Tx: &v1.SimulateRequest_TxBytes{TxBytes: tx.Encode()}}))
	if err != nil {
		return nil, c.wrap(err)
	}
	rc, err := wire.ToReceipt(r.Msg.Receipt)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return rc, nil
}

// EstimateGas asks the node for the gas limit to sign for tx (Simulate
// with estimate_gas: the search of fractal.Instance.EstimateGas, decision
// 145). tx need not be signed; its gas limit is not read.
func (c *Client) EstimateGas(ctx context.Context, tx *phases.Tx) (*fractal.GasEstimate, error) {
	r, err := c.API.Simulate(ctx, connect.NewRequest(&v1.SimulateRequest{
		Tx: &v1.SimulateRequest_TxBytes{TxBytes: tx.Encode()}, EstimateGas: true,
	}))
	if err != nil {
		return nil, c.wrap(err)
	}
	rc, err := wire.ToReceipt(r.Msg.Receipt)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.URL, err)
	}
	if (r.Msg.GasLimit == 0) != (rc.Err() != nil) || r.Msg.GasLimit > phases.MaxGasLimit {
		return nil, fmt.Errorf("node %s: gas limit %d for a receipt %s", c.URL, r.Msg.GasLimit, rc.Status)
	}
	return &fractal.GasEstimate{Limit: r.Msg.GasLimit, Receipt: rc, Height: r.Msg.Height}, nil
}

func (c *Client) outcome(id string, st v1.TransactionState, h uint64, rc *v1.Receipt) (*Outcome, error) {
	o := &Outcome{State: st, Height: h}
	var err error
	if o.ID, err = wire.ParseHash(id); err != nil {
		return nil, fmt.Errorf("node %s: tx_id: %w", c.URL, err)
	}
	if rc != nil {
		if o.Receipt, err = wire.ToReceipt(rc); err != nil {
			return nil, fmt.Errorf("node %s: %w", c.URL, err)
		}
	}
	return o, nil
}

// Receipt returns where a transaction stands, with its receipt once it ran.
func (c *Client) Receipt(ctx context.Context, id notes.Hash) (*Outcome, error) {
	r, err := c.API.GetReceipt(ctx, connect.NewRequest(&v1.GetReceiptRequest{TxId: wire.Hex(id)}))
	if err != nil {
		return nil, c.wrap(err)
	}
	return c.outcome(wire.Hex(id), r.Msg.State, r.Msg.Height, r.Msg.Receipt)
}

// Block returns the block at height (the head when nil), its signature
// checked. A validator set's block carries no signature (its Executor
// names the set, its signature field is zero): its validators' commit
// certifies it, which the node's proofs and claims carry and GetBlock does
// not, so such a block is returned as the node gave it.
func (c *Client) Block(ctx context.Context, height *uint64) (*chain.Block, error) {
	r, err := c.API.GetBlock(ctx, connect.NewRequest(&v1.GetBlockRequest{Height: height}))
	if err != nil {
		return nil, c.wrap(err)
	}
	b, err := wire.ToBlock(r.Msg.Block)
	if err == nil && b.Signature != ([64]byte{}) {
		err = chain.VerifyBlock(b)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return b, nil
}

// Certificate returns the validators' certificate of the block at height
// (GetBlock with_certificate; empty from a solo node). It checks nothing:
// certify.ValidatorSet.Certify does, against a trusted set.
func (c *Client) Certificate(ctx context.Context, height uint64) ([]byte, error) {
	r, err := c.API.GetBlock(ctx, connect.NewRequest(&v1.GetBlockRequest{Height: &height, WithCertificate: true}))
	if err != nil {
		return nil, c.wrap(err)
	}
	return r.Msg.Certificate, nil
}

// Notes returns every live note matching pattern, reading page after page.
func (c *Client) Notes(ctx context.Context, pattern string) ([]*notes.Note, error) {
	var out []*notes.Note
	token := ""
	for {
		r, err := c.API.ListNotes(ctx, connect.NewRequest(&v1.ListNotesRequest{Pattern: pattern, PageSize: 100, PageToken: token}))
		if err != nil {
			return nil, c.wrap(err)
		}
		for _, m := range r.Msg.Notes {
			n, err := wire.ToNote(m)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", c.URL, err)
			}
			out = append(out, n)
		}
		if token = r.Msg.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// Export is one export a node lists, decoded from its record.
type Export struct {
	Record *chain.ExportRecord
	Height uint64
}

// Exports returns every export of the node's outbox, those for to when it
// is not nil.
func (c *Client) Exports(ctx context.Context, to *[32]byte) ([]Export, error) {
	var out []Export
	req := &v1.ListExportsRequest{PageSize: 100}
	if to != nil {
		req.To = wire.Hex(*to)
	}
	for {
		r, err := c.API.ListExports(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, c.wrap(err)
		}
		for _, m := range r.Msg.Exports {
			rec, err := chain.DecodeExportRecord(m.Record)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", c.URL, err)
			}
			out = append(out, Export{Record: rec, Height: m.Height})
		}
		if req.PageToken = r.Msg.NextPageToken; req.PageToken == "" {
			return out, nil
		}
	}
}

// Claim returns the encoded claim of one export, proven against the node's
// head block.
func (c *Client) Claim(ctx context.Context, exportID [32]byte) ([]byte, error) {
	r, err := c.API.GetClaim(ctx, connect.NewRequest(&v1.GetClaimRequest{ExportId: wire.Hex(exportID)}))
	if err != nil {
		return nil, c.wrap(err)
	}
	return r.Msg.Claim, nil
}

// Imported reports whether the node imported the export.
func (c *Client) Imported(ctx context.Context, exportID [32]byte) (bool, error) {
	r, err := c.API.GetImportStatus(ctx, connect.NewRequest(&v1.GetImportStatusRequest{ExportId: wire.Hex(exportID)}))
	if err != nil {
		return false, c.wrap(err)
	}
	return r.Msg.Imported, nil
}

// Watch runs a Watch stream, calling fn with each event until ctx ends, fn
// fails or the node ends the stream.
func (c *Client) Watch(ctx context.Context, req *v1.WatchRequest, fn func(*v1.WatchResponse) error) error {
	st, err := c.API.Watch(ctx, connect.NewRequest(req))
	if err != nil {
		return c.wrap(err)
	}
	defer st.Close()
	for st.Receive() {
		if err := fn(st.Msg()); err != nil {
			return err
		}
	}
	return c.wrap(st.Err())
}

// Deploy stores Lua source on the node and returns its hash.
func (c *Client) Deploy(ctx context.Context, src []byte) (notes.Hash, error) {
	r, err := c.API.DeployCode(ctx, connect.NewRequest(&v1.DeployCodeRequest{Code: src}))
	if err != nil {
		return notes.Hash{}, c.wrap(err)
	}
	h, err := wire.ParseHash(r.Msg.CodeHash)
	if err == nil && h != sha256.Sum256(src) {
		err = fmt.Errorf("the node named the code %x, which is not its SHA-256", h)
	}
	if err != nil {
		return h, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return h, nil
}

// Prove returns what lives at a state key with its proof against the
// node's head block, decoded from the proof's bytes.
func (c *Client) Prove(ctx context.Context, k notes.StateKey) (*chain.QueryProof, error) {
	r, err := c.API.QueryWithProof(ctx, connect.NewRequest(&v1.QueryWithProofRequest{StateKey: k.String()}))
	if err != nil {
		return nil, c.wrap(err)
	}
	qp, err := chain.DecodeQueryProof(r.Msg.Proof)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return qp, nil
}

// Peers returns the node's trust file, every page of it.
func (c *Client) Peers(ctx context.Context) ([]fractal.Peer, error) {
	var out []fractal.Peer
	req := &v1.ListPeersRequest{}
	for {
		r, err := c.API.ListPeers(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, c.wrap(err)
		}
		for _, m := range r.Msg.Peers {
			p, err := wire.ToPeer(m)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", c.URL, err)
			}
			out = append(out, p)
		}
		if req.PageToken = r.Msg.NextPageToken; req.PageToken == "" {
			return out, nil
		}
	}
}

// TrustEntry is the node's own instance as another instance's trust file
// names it: its ID, genesis hash and executor key, as the node reports them.
func (c *Client) TrustEntry(ctx context.Context) (fractal.Peer, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return fractal.Peer{}, err
	}
	p, err := wire.ToPeer(&v1.Peer{InstanceId: st.InstanceId, GenesisHash: st.GenesisHash, ExecutorKeys: []string{st.Executor}})
	if err != nil {
		return p, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return p, nil
}

// ThresholdKey returns the threshold key the node's encrypted mempool takes
// payloads for, and the instance ID they must be bound to.
func (c *Client) ThresholdKey(ctx context.Context) (*tfhe.PublicKey, [32]byte, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, [32]byte{}, err
	}
	id, err := wire.ParseHash(st.InstanceId)
	if err != nil {
		return nil, id, fmt.Errorf("node %s: %w", c.URL, err)
	}
	r, err := c.API.GetThresholdKey(ctx, connect.NewRequest(&v1.GetThresholdKeyRequest{}))
	if err != nil {
		return nil, id, c.wrap(err)
	}
	pk, err := tfhe.DecodePublicKey(r.Msg.Key)
	if err != nil {
		return nil, id, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return pk, id, nil
}

// SubmitEncrypted queues an encrypted payload and returns its ID.
func (c *Client) SubmitEncrypted(ctx context.Context, payload []byte) ([32]byte, error) {
	r, err := c.API.SubmitEncrypted(ctx, connect.NewRequest(&v1.SubmitEncryptedRequest{Payload: payload}))
	if err != nil {
		return [32]byte{}, c.wrap(err)
	}
	id, err := wire.ParseHash(r.Msg.PayloadId)
	if err != nil {
		return id, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return id, nil
}

// Pending returns the encrypted batch waiting for shares (nil when none),
// its payloads when asked, and how many payloads are queued behind it.
func (c *Client) Pending(ctx context.Context, payloads bool) (*fractal.EncryptedStatus, []*tfhe.Payload, int, error) {
	r, err := c.API.GetPendingEncrypted(ctx, connect.NewRequest(&v1.GetPendingEncryptedRequest{IncludePayloads: payloads}))
	if err != nil {
		return nil, nil, 0, c.wrap(err)
	}
	st, err := wire.ToEncryptedStatus(r.Msg.Batch)
	if err == nil && st != nil {
		st.Chain, err = wire.ToChainWait(r.Msg.Chain)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("node %s: %w", c.URL, err)
	}
	var ps []*tfhe.Payload
	for _, raw := range r.Msg.Payloads {
		p, err := tfhe.DecodePayload(raw)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("node %s: %w", c.URL, err)
		}
		ps = append(ps, p)
	}
	if st != nil && payloads {
		if len(ps) != len(st.Batch.PayloadIDs) {
			return nil, nil, 0, fmt.Errorf("node %s sent %d payloads for a batch of %d", c.URL, len(ps), len(st.Batch.PayloadIDs))
		}
		for i, p := range ps {
			if p.ID() != st.Batch.PayloadIDs[i] {
				return nil, nil, 0, fmt.Errorf("node %s sent payload %x in slot %d, the batch names %x", c.URL, p.ID(), i, st.Batch.PayloadIDs[i])
			}
		}
	}
	return st, ps, int(r.Msg.Queued), nil
}

// SubmitShares submits one keyholder's shares for the waiting batch.
func (c *Client) SubmitShares(ctx context.Context, raw []byte) (*fractal.EncryptedStatus, error) {
	r, err := c.API.SubmitShares(ctx, connect.NewRequest(&v1.SubmitSharesRequest{Shares: raw}))
	if err != nil {
		return nil, c.wrap(err)
	}
	st, err := wire.ToEncryptedStatus(r.Msg.Batch)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return st, nil
}

// EncryptedOutcome says what became of an encrypted transaction: its
// outcome once its batch opened, else nil and the state it waits in.
func (c *Client) EncryptedOutcome(ctx context.Context, id [32]byte) (*fractal.EncryptedOutcome, *v1.GetEncryptedOutcomeResponse, error) {
	r, err := c.API.GetEncryptedOutcome(ctx, connect.NewRequest(&v1.GetEncryptedOutcomeRequest{PayloadId: wire.Hex(id)}))
	if err != nil {
		return nil, nil, c.wrap(err)
	}
	m := r.Msg
	if m.State != v1.EncryptedPayloadState_ENCRYPTED_PAYLOAD_STATE_EXECUTED && m.State != v1.EncryptedPayloadState_ENCRYPTED_PAYLOAD_STATE_DROPPED {
		return nil, m, nil
	}
	o := &fractal.EncryptedOutcome{Batch: m.Batch, Slot: m.Slot}
	if m.TxId != "" {
		if o.TxID, err = wire.ParseHash(m.TxId); err != nil {
			return nil, m, fmt.Errorf("node %s: %w", c.URL, err)
		}
	}
	if o.Receipt, err = wire.ToReceipt(m.Receipt); err != nil {
		return nil, m, fmt.Errorf("node %s: %w", c.URL, err)
	}
	return o, m, nil
}
