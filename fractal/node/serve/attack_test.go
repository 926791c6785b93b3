package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/api/fractalv1/fractalv1connect"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// attackNode is a node with a token note for a final transfer, and small
// limits so that the attacks reach them quickly.
type attackNode struct {
	*nodetest.Node
	tk    *nodetest.Token
	alice keys.PrivateKey
	seed  nodetest.Note
}

func newAttackNode(t *testing.T, tune func(*node.Config)) *attackNode {
	t.Helper()
	tk := nodetest.NewToken(t)
	a := &attackNode{tk: tk, alice: nodetest.Key(t)}
	a.seed = tk.MintTo(t, []keys.PublicKey{a.alice.Public()}, 100)[0]
	tk.Close(t)
	cfg := nodetest.Config()
	cfg.MaxRequestBytes = 1 << 20
	if tune != nil {
		tune(&cfg)
	}
	a.Node = nodetest.Start(t, tk.Home, cfg)
	return a
}

// stillSeals submits a transfer and fails the test unless it is committed:
// the node is up and sealing after whatever the test did to it.
func (a *attackNode) stillSeals(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, next := a.tk.Transfer(t, a.alice, a.seed, nodetest.Key(t).Public(), 1)
	out, err := a.Client.Submit(ctx, tx, true)
	if err != nil || out.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED {
		t.Fatalf("after the attack, a transfer: %v %+v", err, out)
	}
	a.seed = next
}

// post sends body to method in the Connect protocol and returns the HTTP
// status and the error code of the answer ("" for success).
func post(t *testing.T, url, method, contentType string, body io.Reader, size int64) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/fractal.v1.FractalService/"+method, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "transport: " + err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	var e struct{ Code, Message string }
	json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Code
}

// TestMalformedRequests: malformed protobuf and JSON, a malformed
// transaction, fields over their bounds, a body over the node's limit
// (declared or not), an unknown method: each gets its code, and the node
// keeps sealing.
func TestMalformedRequests(t *testing.T) {
	a := newAttackNode(t, nil)
	big := bytes.Repeat([]byte("x"), 2<<20)
	for _, c := range []struct {
		name, method, ctype string
		body                []byte
		size                int64 // -1: no Content-Length
		status              int
		code                string
	}{
		{"protobuf garbage", "SubmitTransaction", "application/proto", []byte{0xff, 0xff, 0xff, 0x0f, 0x01}, 0, 400, "invalid_argument"},
		{"json garbage", "SubmitTransaction", "application/json", []byte(`{"tx_json": `), 0, 400, "invalid_argument"},
		{"json of the wrong type", "GetReceipt", "application/json", []byte(`{"tx_id": 12}`), 0, 400, "invalid_argument"},
		{"empty body", "GetStatus", "application/json", nil, 0, 400, "invalid_argument"},
		{"transaction encoding garbage", "SubmitTransaction", "application/json", []byte(`{"tx_bytes": "AAECAw=="}`), 0, 400, "invalid_argument"},
		{"transaction json with a file reference", "Simulate", "application/json",
			[]byte(`{"tx_json": "{\"nonce\":1,\"gas_limit\":10,\"read\":[],\"write\":[],\"calculation_file\":\"/etc/passwd\",\"signers\":[]}"}`), 0, 400, "invalid_argument"},
		{"field over its bound", "ListNotes", "application/json", []byte(`{"page_size": 101}`), 0, 400, "invalid_argument"},
		{"unknown fields are ignored", "GetStatus", "application/json", []byte(`{"from_the_future": 1}`), 0, 200, ""},
		{"declared body over the limit", "DeployCode", "application/json", big, int64(len(big)), 429, "resource_exhausted"},
		{"undeclared body over the limit", "DeployCode", "application/json", big, -1, 0, "any"},
		{"unknown method", "Shutdown", "application/json", []byte(`{}`), 0, 501, "unimplemented"},
		{"unknown content type", "GetStatus", "text/plain", []byte(`{}`), 0, 415, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			size := c.size
			if size == 0 {
				size = int64(len(c.body))
			}
			status, code := post(t, a.URL, c.method, c.ctype, bytes.NewReader(c.body), size)
			if c.code == "any" {
				if status == 200 {
					t.Fatalf("an undeclared 2 MiB body was taken (limit 1 MiB)")
				}
				return
			}
			if status != c.status || code != c.code {
				t.Fatalf("status %d code %q, want %d %q", status, code, c.status, c.code)
			}
		})
	}
	a.stillSeals(t)
}

// TestSlowAndDroppingClients: a client that trickles its request is cut
// off after request_read_timeout; clients that drop mid-stream give their
// stream slots back; streams beyond max_streams are refused; the node
// keeps sealing.
func TestSlowAndDroppingClients(t *testing.T) {
	a := newAttackNode(t, func(c *node.Config) {
		c.RequestReadTimeout = node.Duration(500 * time.Millisecond)
		c.MaxStreams = 4
	})
	t.Run("trickled body", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(a.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /fractal.v1.FractalService/GetStatus HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := 0; ; i++ {
			if _, err := conn.Write([]byte(" ")); err != nil {
				break // cut off
			}
			buf := make([]byte, 512)
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := conn.Read(buf); n > 0 || (err != nil && !isTimeout(err)) {
				break // answered with an error, or closed
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("a client trickling one byte every 200ms was not cut off in 5s")
			}
		}
	})
	t.Run("streams dropped mid-stream", func(t *testing.T) {
		for round := 0; round < 3; round++ {
			var cancels []context.CancelFunc
			for i := 0; i < 4; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				cancels = append(cancels, cancel)
				st, err := a.Client.API.Watch(ctx, connect.NewRequest(&v1.WatchRequest{StartHeight: new(uint64)}))
				if err != nil {
					t.Fatal(err)
				}
				if !st.Receive() {
					t.Fatalf("round %d stream %d: %v", round, i, st.Err())
				}
			}
			// A fifth is refused while four are open.
			st, err := a.Client.API.Watch(context.Background(), connect.NewRequest(&v1.WatchRequest{StartHeight: new(uint64)}))
			if err == nil && !st.Receive() {
				err = st.Err()
			}
			if connect.CodeOf(err) != connect.CodeResourceExhausted {
				t.Fatalf("a fifth stream: %v", err)
			}
			for _, c := range cancels { // the clients drop their streams
				c()
			}
			waitFor(t, "the slots to come back", func() bool { return metric(t, a.URL, "fractal_api_streams") == 0 })
		}
	})
	a.stillSeals(t)
}

// TestIdleConnections: 1,000 connections that send nothing; the node
// accepts at most max_connections at once, closes the idle ones after
// read_header_timeout, keeps sealing meanwhile, and a new client gets in
// once they are gone.
func TestIdleConnections(t *testing.T) {
	a := newAttackNode(t, func(c *node.Config) {
		c.MaxConnections = 64
		c.ReadHeaderTimeout = node.Duration(300 * time.Millisecond)
	})
	addr := strings.TrimPrefix(a.URL, "http://")
	// The established client's connection is opened before the flood.
	if _, err := a.Client.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return // the backlog may be full: refused is fine
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	flooded := time.Now()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if open := metric(t, a.URL, "fractal_api_connections"); open > 64 {
		t.Fatalf("%v connections open, limit 64", open)
	}
	a.stillSeals(t)
	// The idle ones are closed a batch at a time; a new client then gets
	// in, on a connection of its own.
	fresh := &http.Client{Transport: &http.Transport{}, Timeout: 60 * time.Second}
	resp, err := fresh.Get(a.URL + "/healthz")
	if err != nil {
		t.Fatalf("a new client after %d idle connections: %v", len(conns), err)
	}
	resp.Body.Close()
	t.Logf("%d idle connections; a new client got in %v after they opened", len(conns), time.Since(flooded).Round(time.Millisecond))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	nodetest.WaitFor(t, 10*time.Second, what, ok)
}

// metric reads one unlabelled metric from the node's /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestRequestBudget: large bodies in flight are bounded together
// (max_request_bytes_in_flight): while two slow 1 MiB uploads hold the 2 MiB
// budget, a third large call is refused at once with resource_exhausted and
// its reason, declared or not; small calls still go through; once the
// uploads end, large calls are taken again.
func TestRequestBudget(t *testing.T) {
	a := newAttackNode(t, func(c *node.Config) {
		c.MaxRequestBytesInFlight = 2 << 20
		c.RequestReadTimeout = node.Duration(30 * time.Second)
	})
	addr := strings.TrimPrefix(a.URL, "http://")
	var slow []net.Conn
	for i := 0; i < 2; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /fractal.v1.FractalService/DeployCode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 1<<20)
		slow = append(slow, conn)
	}
	large := bytes.Repeat([]byte(" "), 512<<10)
	waitFor(t, "the uploads to hold the budget", func() bool {
		status, code := post(t, a.URL, "DeployCode", "application/json", bytes.NewReader(large), int64(len(large)))
		return status == http.StatusTooManyRequests && code == "resource_exhausted"
	})
	req, _ := http.NewRequest("POST", a.URL+"/fractal.v1.FractalService/DeployCode", bytes.NewReader(large))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1 // undeclared: charged as it is read
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Code, Message string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if e.Code != "resource_exhausted" || !strings.Contains(e.Message, "max_request_bytes_in_flight") {
		t.Fatalf("an undeclared 512 KiB body while the budget is spent: %d %+v", resp.StatusCode, e)
	}
	if status, code := post(t, a.URL, "GetStatus", "application/json", strings.NewReader("{}"), 2); status != 200 {
		t.Fatalf("a small call while the budget is spent: %d %s", status, code)
	}
	a.stillSeals(t)
	for _, c := range slow {
		c.Close()
	}
	waitFor(t, "the budget to come back", func() bool {
		_, code := post(t, a.URL, "DeployCode", "application/json", bytes.NewReader(large), int64(len(large)))
		return code != "resource_exhausted" // a body of spaces is then refused as malformed
	})
}

// TestGasCaps: a gas limit over a cap the node or the chain sets
// (max_tx_gas, simulate_gas_limit, max_block_gas) is failed_precondition
// with its reason, whether submitted or simulated, and the submission
// queues nothing (decision 170).
func TestGasCaps(t *testing.T) {
	tk := nodetest.NewToken(t)
	alice := nodetest.Key(t)
	seed := tk.MintTo(t, []keys.PublicKey{alice.Public()}, 100)[0]
	tk.Close(t)
	tk.SetConfig(t, map[string]any{"max_block_gas": 4_000_000})
	ctx := context.Background()
	withGas := func(g uint64) *phases.Tx {
		tx, _ := tk.Transfer(t, alice, seed, nodetest.Key(t).Public(), 1)
		tx.GasLimit = g
		return nodetest.Sign(t, tx, alice)
	}
	refused := func(n *nodetest.Node, what string, err error, want string) {
		t.Helper()
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeFailedPrecondition || ce.Message() != want {
			t.Fatalf("%s: %v, want failed_precondition: %s", what, err, want)
		}
		if st, err := n.Client.Status(ctx); err != nil || st.GetMempoolDepth() != 0 {
			t.Fatalf("after %s: %v, mempool depth %d", what, err, st.GetMempoolDepth())
		}
	}
	simulate := func(n *nodetest.Node, tx *phases.Tx) error {
		_, err := n.Client.API.Simulate(ctx, connect.NewRequest(&v1.SimulateRequest{Tx: &v1.SimulateRequest_TxBytes{TxBytes: tx.Encode()}}))
		return err
	}

	cfg := nodetest.Config()
	cfg.MaxTxGas, cfg.SimulateGasLimit = 3_000_000, 2_000_000
	n := nodetest.Start(t, tk.Home, cfg)
	over := withGas(3_000_001)
	const maxTxGas = "gas limit 3000001 is over max_tx_gas 3000000 (one transaction would hold its block for up to 402ms); lower it, or ask the node's operator (node-config.json)"
	_, err := n.Client.Submit(ctx, over, true)
	refused(n, "a submission over max_tx_gas", err, maxTxGas)
	refused(n, "a simulation over max_tx_gas", simulate(n, over), maxTxGas)
	refused(n, "a simulation over simulate_gas_limit", simulate(n, withGas(2_000_001)),
		"gas limit 2000001 exceeds the node's simulation limit (simulate_gas_limit 2000000)")
	n.Stop(t)

	n = nodetest.Start(t, tk.Home, nodetest.Config())
	over = withGas(4_000_001)
	id := over.ID()
	const maxBlockGas = "gas limit 4000001 exceeds the block gas limit (max_block_gas 4000000)"
	_, err = n.Client.Submit(ctx, over, true)
	refused(n, "a submission over max_block_gas", err, fmt.Sprintf("submit %x: %s", id[:8], maxBlockGas))
	refused(n, "a simulation over max_block_gas", simulate(n, over), "simulate: "+maxBlockGas)
	if out, err := n.Client.Submit(ctx, withGas(4_000_000), true); err != nil || out.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED {
		t.Fatalf("the transfer at max_block_gas: %v %+v", err, out)
	}
}

// TestStreamsPerClient: one client address holds at most
// max_streams_per_client streams; another address still gets one while it
// does, and the client gets its slot back when it closes one.
func TestStreamsPerClient(t *testing.T) {
	a := newAttackNode(t, func(c *node.Config) {
		c.MaxStreams = 8
		c.MaxStreamsPerClient = 2
	})
	from := func(ip string) fractalv1connect.FractalServiceClient {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		return fractalv1connect.NewFractalServiceClient(hc, a.URL)
	}
	open := func(c fractalv1connect.FractalServiceClient) (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(context.Background())
		st, err := c.Watch(ctx, connect.NewRequest(&v1.WatchRequest{StartHeight: new(uint64)}))
		if err == nil && !st.Receive() {
			err = st.Err()
		}
		if err != nil {
			cancel()
		}
		return cancel, err
	}
	one := from("127.0.0.1")
	var held []context.CancelFunc
	for i := 0; i < 2; i++ {
		cancel, err := open(one)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		held = append(held, cancel)
	}
	_, err := open(one)
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "127.0.0.1 holds 2 streams") {
		t.Fatalf("a third stream from one client: %v", err)
	}
	other, err := open(from("127.0.0.2"))
	if err != nil {
		t.Fatalf("a stream from another client while the first holds its limit: %v", err)
	}
	other()
	held[0]()
	waitFor(t, "the client's slot to come back", func() bool {
		cancel, err := open(one)
		if err == nil {
			cancel()
		}
		return err == nil
	})
	held[1]()
	a.stillSeals(t)
}

// TestConnectionsPerClient: one address opens many connections that send
// nothing or half a request (read_header_timeout is long here, so only the
// cap can help); it keeps max_connections_per_client of them, every other
// is closed at once, and a client from another loopback address still
// completes its calls meanwhile (decision 170).
func TestConnectionsPerClient(t *testing.T) {
	const perClient, flood = 8, 200
	a := newAttackNode(t, func(c *node.Config) {
		c.MaxConnections = 64
		c.MaxConnectionsPerClient = perClient
		c.ReadHeaderTimeout = node.Duration(time.Minute)
	})
	addr := strings.TrimPrefix(a.URL, "http://")
	dialer := func(ip string) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var kept, closed int
	for i := 0; i < flood; i++ {
		c, err := dialer("127.0.0.1").Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			closed++ // closed by the node before the dial returned
			continue
		}
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%2 == 1 {
			c.Write([]byte("POST /fractal.v1.FractalService/GetStatus HTTP/1.1\r\nHost: x\r\n")) // half-open: never ends its headers
		}
		conns = append(conns, c)
	}
	other := &http.Client{Transport: &http.Transport{DialContext: dialer("127.0.0.2").DialContext}, Timeout: 30 * time.Second}
	refused := func() string {
		resp, err := other.Get(a.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "fractal_api_connections_refused_total "); ok {
				return v
			}
		}
		return ""
	}
	want := fmt.Sprint(flood - perClient)
	waitFor(t, "the node to close the connections over the cap", func() bool { return refused() == want })
	// Each connection is either kept (its read times out) or closed by the
	// node (its read ends with EOF or a reset); the node keeps perClient.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); isTimeout(err) {
			kept++
		} else {
			closed++
		}
	}
	api := fractalv1connect.NewFractalServiceClient(other, a.URL)
	start := time.Now()
	const calls = 20
	for i := 0; i < calls; i++ {
		if _, err := api.GetStatus(context.Background(), connect.NewRequest(&v1.GetStatusRequest{})); err != nil {
			t.Fatalf("call %d from another address while one holds %d connections: %v", i, flood, err)
		}
	}
	t.Logf("%d calls from 127.0.0.2 in %v while 127.0.0.1 held %d connections (%d kept)", calls, time.Since(start).Round(time.Millisecond), flood, kept)
	if got := refused(); got != want || kept != perClient {
		t.Fatalf("%d connections from one address: %d kept, %d closed, %s counted closed; want %d kept", flood, kept, closed, got, perClient)
	}
}

// TestFreshClientUnderTheCap: a fresh client that starts many calls at
// once dials one connection at a time (HTTP/2 then carries them all), so
// a node's max_connections_per_client does not reset its first calls, as
// it did when every call that found no connection up dialled its own.
func TestFreshClientUnderTheCap(t *testing.T) {
	a := newAttackNode(t, func(c *node.Config) { c.MaxConnectionsPerClient = 4 })
	c, err := client.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const calls = 100
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := c.Status(ctx)
			errs <- err
		}()
	}
	for i := range calls {
		if err := <-errs; err != nil {
			t.Fatalf("call %d of %d started at once on a fresh client: %v", i, calls, err)
		}
	}
}
