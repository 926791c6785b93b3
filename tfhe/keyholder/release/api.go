package release

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/api/fractalv1/fractalv1connect"
)

// maxResponse bounds one answer of the node: a batch's payloads are at
// most 4 MiB.
const maxResponse = 16 << 20

// API is a Node reached through the node's API (fractal.v1, decision 110),
// over the generated Connect client: GetPendingEncrypted with the
// payloads, and SubmitShares.
type API struct {
	URL string
	c   fractalv1connect.FractalServiceClient
}

// DialAPI returns a client of the node at url ("http://HOST:PORT" or
// "HOST:PORT"); it connects on the first call.
func DialAPI(url string) (*API, error) {
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("release: node URL %q: want http://HOST:PORT", url)
	}
	hc := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
	}
	return &API{URL: url, c: fractalv1connect.NewFractalServiceClient(hc, url, connect.WithReadMaxBytes(maxResponse))}, nil
}

func (a *API) wrap(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Errorf("node %s: %s (%s)", a.URL, ce.Message(), ce.Code())
	}
	return fmt.Errorf("node %s: %w", a.URL, err)
}

// Pending asks for the batch waiting for shares with its payloads.
func (a *API) Pending(ctx context.Context) (*Batch, error) {
	r, err := a.c.GetPendingEncrypted(ctx, connect.NewRequest(&v1.GetPendingEncryptedRequest{IncludePayloads: true}))
	if err != nil {
		return nil, a.wrap(err)
	}
	b := r.Msg.GetBatch()
	if b == nil {
		return nil, nil
	}
	return &Batch{Record: b.GetRecord(), Payloads: r.Msg.GetPayloads(), Shares: ints(b.GetShares()), Needed: int(b.GetNeeded())}, nil
}

// SubmitShares hands in one keyholder's share batch.
func (a *API) SubmitShares(ctx context.Context, raw []byte) ([]int, error) {
	r, err := a.c.SubmitShares(ctx, connect.NewRequest(&v1.SubmitSharesRequest{Shares: raw}))
	if err != nil {
		return nil, a.wrap(err)
	}
	return ints(r.Msg.GetBatch().GetShares()), nil
}

func ints(us []uint32) []int {
	out := make([]int, len(us))
	for i, u := range us {
		out[i] = int(u)
	}
	return out
}
