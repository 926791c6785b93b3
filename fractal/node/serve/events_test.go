package serve_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/keys"
)

// TestEventsOutliveReadTimeout: a browser's /events stream (a GET, no
// body) is not cut off by the request read timeout, which bounds only how
// long a body may take: a block sealed after that time still arrives.
func TestEventsOutliveReadTimeout(t *testing.T) {
	tk := nodetest.NewToken(t)
	alice, bob := nodetest.Key(t), nodetest.Key(t)
	seed := tk.MintTo(t, []keys.PublicKey{alice.Public()}, 100)[0]
	tk.Close(t)
	cfg := nodetest.Config()
	cfg.RequestReadTimeout = node.Duration(200 * time.Millisecond)
	n := nodetest.Start(t, tk.Home, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// HTTP/1.1, as a browser's EventSource on a plain http:// URL. The
	// node answers with its first event.
	req, _ := http.NewRequestWithContext(ctx, "GET", n.URL+"/events?receipts=1", nil)
	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		answered <- answer{resp, err}
	}()
	time.Sleep(4 * time.Duration(cfg.RequestReadTimeout))
	tx, _ := tk.Transfer(t, alice, seed, bob.Public(), 1)
	if _, err := n.Client.Submit(ctx, tx, false); err != nil {
		t.Fatal(err)
	}
	a := <-answered
	if a.err != nil {
		t.Fatal(a.err)
	}
	resp := a.resp
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "data: ") && strings.Contains(lines.Text(), `"block"`) {
			return
		}
	}
	t.Fatalf("the stream ended before the block (status %d, %v)", resp.StatusCode, lines.Err())
}
