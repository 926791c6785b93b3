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

// callTimeout bounds one call; the event stream has none, since it is
// meant to stay open.
const callTimeout = time.Minute

// API is a Node reached through the node's API (fractal.v1, decision 110),
// over the generated Connect client: GetPendingEncrypted with the
// payloads, SubmitShares, and the Watch stream's encrypted batch events
// (Follow).
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
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
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
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := a.c.SubmitShares(ctx, connect.NewRequest(&v1.SubmitSharesRequest{Shares: raw}))
	if err != nil {
		return nil, a.wrap(err)
	}
	return ints(r.Msg.GetBatch().GetShares()), nil
}

// Follow opens the node's Watch stream with its live-only events, calls
// subscribed once the node follows its events for this stream, then
// changed for every encrypted batch event (fixed, given a share, opened,
// expired), until ctx ends or the stream breaks; it returns why it ended.
func (a *API) Follow(ctx context.Context, subscribed, changed func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := a.c.Watch(ctx, connect.NewRequest(&v1.WatchRequest{LiveOnlyEvents: true}))
	if err != nil {
		return a.wrap(err)
	}
	defer st.Close()
	// The node sends the stream's headers once it is subscribed: from then
	// on no change is missed. No headers: the call failed, and Receive
	// says why.
	if len(st.ResponseHeader()) > 0 {
		subscribed()
	}
	for st.Receive() {
		if st.Msg().GetEncryptedBatch() != nil {
			changed()
		}
	}
	switch err := st.Err(); {
	case connect.CodeOf(err) == connect.CodeUnimplemented:
		return fmt.Errorf("node %s: %w", a.URL, ErrNoStream)
	case err != nil:
		return a.wrap(err)
	}
	return fmt.Errorf("node %s: the event stream ended", a.URL)
}

func ints(us []uint32) []int {
	out := make([]int, len(us))
	for i, u := range us {
		out[i] = int(u)
	}
	return out
}
