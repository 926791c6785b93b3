package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/phases"
)

// TestLoad is make load: FRACTAL_LOAD_CLIENTS concurrent clients (100),
// each on its own connection to a node run as a child process, submit
// token transfers with wait_for_receipt. Each client drives
// FRACTAL_LOAD_SENDERS sender keys (30), each sending a chain of
// FRACTAL_LOAD_CHAIN transfers (10) one after the other (the next spends the
// change of the one before). Every transfer is signed before the clock
// starts. It reports sustained transfers per second and the latency from
// submission to receipt (p50, p99), and the CPU the node and the clients
// used per transfer. FRACTAL_LOAD_PROFILE=DIR has the node write its CPU and
// allocation profiles into DIR (fractal node --profile). FRACTAL_LOAD_BATCH=N
// (0, the default: one SubmitTransaction call a transfer) has each client
// gather the transfers its senders have ready, up to N, into one
// SubmitTransactions call with wait_for_receipt; a transfer's latency is
// still from its hand-over to the client to its receipt. Bounded: clients
// × senders × chain transfers, and the test's timeout.
func TestLoad(t *testing.T) {
	if os.Getenv("FRACTAL_LOAD") == "" {
		t.Skip("make load runs it (FRACTAL_LOAD=1)")
	}
	if os.Getenv("GOGC") == "" {
		// The clients share the machine with the node: their collector
		// runs as the node's does (tuneGC), not twice as often.
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	clients, perClient, chain := envInt(t, "FRACTAL_LOAD_CLIENTS", 100), envInt(t, "FRACTAL_LOAD_SENDERS", 30), envInt(t, "FRACTAL_LOAD_CHAIN", 10)
	tk := nodetest.NewToken(t)
	senders, seeds := tk.Senders(t, clients*perClient, 1_000_000)
	sink := nodetest.Key(t).Public()
	code := os.Getenv("FRACTAL_LOAD_CODE")
	chains := make([][]*phases.Tx, len(senders))
	for i, k := range senders {
		in := seeds[i]
		for j := range chain {
			var tx *phases.Tx
			switch code {
			case "", "lean":
				tx, in = tk.LeanTransfer(t, k, in, sink, fmt.Sprintf("t%d.%d", i, j))
			case "example":
				tx, in = tk.Transfer(t, k, in, sink, 1)
			default:
				t.Fatalf("FRACTAL_LOAD_CODE=%q: lean or example", code)
			}
			chains[i] = append(chains[i], tx)
		}
	}
	tk.Close(t)
	args := []string{"--block-time", "100ms"}
	if dir := os.Getenv("FRACTAL_LOAD_PROFILE"); dir != "" {
		args = append(args, "--profile", dir)
	}
	p := startNode(t, tk.Home, args...)

	lat := make([]time.Duration, 0, len(senders)*chain)
	var mu sync.Mutex
	var wg sync.WaitGroup
	failures := 0
	// Each client opens its connection with one call before the clock
	// starts: its senders' first submissions would otherwise race to dial
	// one connection each, over the node's max_connections_per_client.
	cls := make([]*client.Client, clients)
	for c := range cls {
		cl, err := client.New(p.url) // a connection of its own
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
		cls[c] = cl
	}
	batch := 0
	if v := os.Getenv("FRACTAL_LOAD_BATCH"); v != "" && v != "0" {
		batch = envInt(t, "FRACTAL_LOAD_BATCH", 0)
	}
	var calls, batched atomic.Int64
	record := func(tx *phases.Tx, out *client.Outcome, err error, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || out.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED {
			failures++
			if failures <= 5 {
				t.Errorf("transfer %x: %v %s", tx.ID(), err, describe(out))
			}
			return
		}
		lat = append(lat, d)
	}
	nodeCPU0, selfCPU0 := procCPU(t, p.cmd.Process.Pid), selfCPU()
	start := time.Now()
	for c, cl := range cls {
		// submit is how a sender hands its transfer to its client: one
		// call each, or through the client's batcher.
		submit := func(ctx context.Context, tx *phases.Tx) (*client.Outcome, error) {
			calls.Add(1)
			return cl.Submit(ctx, tx, true)
		}
		var handed chan loadItem
		if batch > 0 {
			handed = make(chan loadItem, perClient)
			go batcher(cl, handed, batch, &calls, &batched)
			submit = func(ctx context.Context, tx *phases.Tx) (*client.Outcome, error) {
				it := loadItem{tx: tx, done: make(chan client.Submitted, 1)}
				handed <- it
				r := <-it.done
				return &r.Outcome, r.Err
			}
		}
		var senders sync.WaitGroup
		for s := 0; s < perClient; s++ {
			wg.Add(1)
			senders.Add(1)
			go func(txs []*phases.Tx) {
				defer wg.Done()
				defer senders.Done()
				for _, tx := range txs {
					t0 := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					out, err := submit(ctx, tx)
					cancel()
					record(tx, out, err, time.Since(t0))
					if err != nil {
						return
					}
				}
			}(chains[c*perClient+s])
		}
		if handed != nil {
			go func() { senders.Wait(); close(handed) }()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	nodeCPU, selfCPU := procCPU(t, p.cmd.Process.Pid)-nodeCPU0, selfCPU()-selfCPU0
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("the node stopped with %v", err)
	}
	if len(lat) == 0 {
		t.Fatal("no transfer committed")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	n := float64(len(lat))
	mode := "one transfer a call"
	if batch > 0 {
		mode = fmt.Sprintf("batches of up to %d, %.1f transfers a call on average", batch, float64(batched.Load())/float64(max(calls.Load(), 1)))
	}
	fmt.Printf("load: %s; %d calls\n", mode, calls.Load())
	fmt.Printf("load: %d clients, %d senders, %d transfers committed (%d failed) in %v: %.0f transfers/s; submit to receipt p50 %v, p99 %v, max %v; CPU per transfer: node %.0f µs, clients %.0f µs\n",
		clients, len(senders), len(lat), failures, elapsed.Round(time.Millisecond), n/elapsed.Seconds(),
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
		float64(nodeCPU.Microseconds())/n, float64(selfCPU.Microseconds())/n)
}

// loadItem is a transfer a sender handed to its client's batcher, and
// where its answer goes.
type loadItem struct {
	tx   *phases.Tx
	done chan client.Submitted
}

// batcher is one client's batched mode: it takes the transfers its
// senders have ready, up to max, and sends them in one SubmitTransactions
// call with wait_for_receipt, while it gathers the next (each call on a
// goroutine of its own), until handed is closed. A call that fails answers
// each of its transfers with the call's error.
func batcher(cl *client.Client, handed <-chan loadItem, max int, calls, batched *atomic.Int64) {
	for first := range handed {
		items := []loadItem{first}
		runtime.Gosched() // let the senders a call just answered hand their next
	gather:
		for len(items) < max {
			select {
			case it, ok := <-handed:
				if !ok {
					break gather
				}
				items = append(items, it)
			default:
				break gather
			}
		}
		calls.Add(1)
		batched.Add(int64(len(items)))
		go func() {
			txs := make([]*phases.Tx, len(items))
			for i, it := range items {
				txs[i] = it.tx
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			res, err := cl.SubmitBatch(ctx, txs, true)
			cancel()
			for i, it := range items {
				if err != nil {
					it.done <- client.Submitted{Outcome: client.Outcome{ID: it.tx.ID()}, Err: err}
					continue
				}
				it.done <- res[i]
			}
		}()
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 100_000 {
		t.Fatalf("%s=%q: a number from 1 to 100000", name, s)
	}
	return v
}

// procCPU is the CPU time (user and system) process pid has used, from
// /proc (clock ticks of 10 ms).
func procCPU(t *testing.T, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command (which may hold spaces) start after ')'.
	s := string(raw)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ')' {
			s = s[i+2:]
			break
		}
	}
	var state string
	var f [12]int64
	fmt.Sscan(s, &state, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &f[11])
	return time.Duration(f[10]+f[11]) * 10 * time.Millisecond // utime, stime
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// describe says where a submission ended.
func describe(o *client.Outcome) string {
	switch {
	case o == nil:
		return ""
	case o.Receipt != nil && o.Receipt.Err() != nil:
		return o.State.String() + ": " + o.Receipt.Err().Error()
	}
	return o.State.String()
}
