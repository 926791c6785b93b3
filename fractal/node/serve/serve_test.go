package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// TestSubmitAndWatch: a transfer submitted over the API is committed, its
// receipt and block read back, and a Watch from genesis sees every block
// in order with the transfer's receipt and notes.
func TestSubmitAndWatch(t *testing.T) {
	tk := nodetest.NewToken(t)
	alice, bob := nodetest.Key(t), nodetest.Key(t)
	seed := tk.MintTo(t, []keys.PublicKey{alice.Public()}, 100)[0]
	tk.Close(t)
	n := nodetest.Start(t, tk.Home, nodetest.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	st, err := n.Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Head.Height != 1 || st.MempoolDepth != 0 {
		t.Fatalf("status: head %d, depth %d", st.Head.Height, st.MempoolDepth)
	}
	tx, _ := tk.Transfer(t, alice, seed, bob.Public(), 30)
	out, err := n.Client.Submit(ctx, tx, true)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED || out.Height != 2 || out.Receipt.Err() != nil || out.ID != tx.ID() {
		t.Fatalf("submit: %+v", out)
	}
	rc, err := n.Client.Receipt(ctx, tx.ID())
	if err != nil || rc.Height != 2 || len(rc.Receipt.Outputs) != 2 {
		t.Fatalf("receipt: %+v %v", rc, err)
	}
	id := tx.ID()
	if _, err := n.Client.Submit(ctx, tx, false); connect.CodeOf(err) != connect.CodeAlreadyExists || err.Error() != fmt.Sprintf("transaction %x was already executed in block 2 (already_exists)", id[:8]) {
		t.Fatalf("replay: %v", err)
	}

	var kinds []string
	wctx, wcancel := context.WithCancel(ctx)
	start := uint64(0)
	err = n.Client.Watch(wctx, &v1.WatchRequest{StartHeight: &start, Receipts: true, NotePatterns: []string{"*/*/*/*"}}, func(ev *v1.WatchResponse) error {
		switch e := ev.Event.(type) {
		case *v1.WatchResponse_Block:
			kinds = append(kinds, "block")
			if e.Block.Height == 2 {
				wcancel()
			}
		case *v1.WatchResponse_Receipt:
			kinds = append(kinds, "receipt")
		case *v1.WatchResponse_NoteCreated:
			kinds = append(kinds, "created")
		case *v1.WatchResponse_NoteSpent:
			kinds = append(kinds, "spent")
		}
		return nil
	})
	if connect.CodeOf(err) != connect.CodeCanceled {
		t.Fatalf("watch ended with %v", err)
	}
	want := "[block receipt created block receipt spent created created block]"
	if got := fmtList(kinds); got != want {
		t.Fatalf("events %s\nwant   %s", got, want)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestMetrics: after an accepted and a refused transfer, /metrics counts
// the block, both transactions with the refusing phase, the seal time, the
// block's gas, the mempool depth and the API calls by method and code.
func TestMetrics(t *testing.T) {
	tk := nodetest.NewToken(t)
	alice, bob, carol := nodetest.Key(t), nodetest.Key(t), nodetest.Key(t)
	seeds := tk.MintTo(t, []keys.PublicKey{alice.Public(), carol.Public()}, 100)
	tk.Close(t)
	n := nodetest.Start(t, tk.Home, nodetest.Config())
	ctx := context.Background()
	good, _ := tk.Transfer(t, alice, seeds[0], bob.Public(), 1)
	bad, _ := tk.Transfer(t, bob, seeds[1], bob.Public(), 2) // bob spends carol's note
	for _, tx := range []*phases.Tx{good, bad} {
		if _, err := n.Client.Submit(ctx, tx, true); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(raw)
	for _, want := range []string{
		"\nfractal_blocks_total 1\n", // the transfer's (the mint was sealed before the node ran)
		"\nfractal_head_height 2\n",
		`fractal_transactions_total{phase="none",status="accepted"} 1`,
		`fractal_transactions_total{phase="validity",status="refused"} 1`,
		"\nfractal_mempool_depth 0\n",
		`fractal_submissions_total{result="accepted"} 2`,
		"\nfractal_seal_duration_seconds_count ",
		"\nfractal_block_gas_count 1\n",
		`fractal_api_request_duration_seconds_count{code="ok",method="SubmitTransaction"} 2`,
		"\nfractal_api_connections ",
		"\ngo_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}

// TestEventsOutliveTheReadTimeout: an /events stream (HTTP/1.1, GET, no
// body) and a Watch stream go on receiving live blocks long after
// request_read_timeout, which bounds only the sending of a request.
func TestEventsOutliveTheReadTimeout(t *testing.T) {
	tk := nodetest.NewToken(t)
	keys, seeds := tk.Senders(t, 1, 100)
	tk.Close(t)
	cfg := nodetest.Config()
	cfg.RequestReadTimeout = node.Duration(200 * time.Millisecond)
	n := nodetest.Start(t, tk.Home, cfg)
	resp, err := http.Get(n.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	st, err := n.Client.API.Watch(wctx, connect.NewRequest(&v1.WatchRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // three read timeouts
	tx, _ := tk.Transfer(t, keys[0], seeds[0], nodetest.Key(t).Public(), 1)
	if _, err := n.Client.Submit(context.Background(), tx, true); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, `data: {"height":"2"`) && !strings.HasPrefix(line, `data: {"height": "2"`) {
		t.Fatalf("/events after the read timeout: %q %v", line, err)
	}
	if !st.Receive() || st.Msg().GetBlock().GetHeight() != 2 {
		t.Fatalf("Watch after the read timeout: %v", st.Err())
	}
}

// TestFullBlocksSealBackToBack: a block cut by max_block_gas before all
// that was queued is followed at once by the next, not a block time later.
// Four transfers are queued (a block's worth by max_block_txs, which
// starts a seal) under a max_block_gas of two transfers' gas limits and a
// block time of an hour: they commit in two blocks of two.
func TestFullBlocksSealBackToBack(t *testing.T) {
	tk := nodetest.NewToken(t)
	keys, seeds := tk.Senders(t, 4, 100)
	tk.Close(t)
	tk.SetConfig(t, map[string]any{"max_block_txs": 4, "max_block_gas": 2 * nodetest.TransferGas})
	ncfg := nodetest.Config()
	ncfg.BlockTime = node.Duration(time.Hour)
	n := nodetest.Start(t, tk.Home, ncfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := n.Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := st.GetHead().GetHeight()
	type result struct {
		out *client.Outcome
		err error
	}
	results := make(chan result, len(keys))
	for i := range keys {
		tx, _ := tk.Transfer(t, keys[i], seeds[i], nodetest.Key(t).Public(), 1)
		go func() {
			out, err := n.Client.Submit(ctx, tx, true)
			results <- result{out, err}
		}()
	}
	perBlock := map[uint64]int{}
	for range keys {
		r := <-results
		if r.err != nil || r.out.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED {
			t.Fatalf("a transfer was not committed within 30 s of a block time of an hour: %+v %v", r.out, r.err)
		}
		perBlock[r.out.Height]++
	}
	if len(perBlock) != 2 || perBlock[head+1] != 2 || perBlock[head+2] != 2 {
		t.Fatalf("transfers per block after head %d: %v, want two blocks of two", head, perBlock)
	}
}

// TestWatchEndsUnavailableWhenTheNodeStops: a Watch following live events
// when the node stops ends unavailable, naming the height to resume from,
// not canceled as if its client had gone away.
func TestWatchEndsUnavailableWhenTheNodeStops(t *testing.T) {
	tk := nodetest.NewToken(t)
	alice := nodetest.Key(t)
	tk.MintTo(t, []keys.PublicKey{alice.Public()}, 100)
	tk.Close(t)
	n := nodetest.Start(t, tk.Home, nodetest.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	start := uint64(0)
	stopped := make(chan struct{})
	err := n.Client.Watch(ctx, &v1.WatchRequest{StartHeight: &start}, func(ev *v1.WatchResponse) error {
		if b, ok := ev.Event.(*v1.WatchResponse_Block); ok && b.Block.Height == 1 {
			go func() { n.Stop(t); close(stopped) }()
		}
		return nil
	})
	<-stopped
	if connect.CodeOf(err) != connect.CodeUnavailable || err.Error() != "the node is stopping; resume from height 2 (unavailable)" {
		t.Fatalf("watch ended with %v", err)
	}
}
