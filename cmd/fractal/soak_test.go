package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/nodefile"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// nodeProc is a fractal node run as a child process.
type nodeProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	url    string
}

// startNode runs `fractal node` on home and waits until it serves.
func startNode(t *testing.T, home string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{stderr: new(bytes.Buffer)}
	p.cmd = exec.Command("fractal", append([]string{"--home", home, "node", "--listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if info, _ := nodefile.Find(home); info != nil && info.PID == p.cmd.Process.Pid {
			p.url = info.URL
			return p
		}
	}
	t.Fatalf("the node did not start in 30s:\n%s", p.stderr)
	return nil
}

// soakRound is one round's senders, each with the transfers of its chain.
type soakRound struct {
	chains [][]*phases.Tx
}

// TestKilledUnderLoad: the node is SIGKILLed (by PID) while clients submit
// chains of token transfers, FRACTAL_SOAK times (3 by default; make soak
// runs 20). After each kill, `fractal verify` passes and every transaction
// whose submission returned an ID is committed or still queued. At the
// end a node seals what is queued, SIGTERM stops it (exit 0, in under 10
// s), and every acknowledged transaction is committed.
func TestKilledUnderLoad(t *testing.T) {
	kills := 3
	if s := os.Getenv("FRACTAL_SOAK"); s != "" {
		var err error
		if kills, err = strconv.Atoi(s); err != nil || kills < 1 || kills > 1000 {
			t.Fatalf("FRACTAL_SOAK=%q: a number of kills from 1 to 1000", s)
		}
	}
	const senders, chain = 40, 25 // per round
	tk := nodetest.NewToken(t)
	keysAll, seeds := tk.Senders(t, kills*senders, 1000)
	sink := nodetest.Key(t).Public()
	rounds := make([]soakRound, kills)
	for r := range rounds {
		for s := 0; s < senders; s++ {
			k, in := keysAll[r*senders+s], seeds[r*senders+s]
			var txs []*phases.Tx
			for range chain {
				tx, next := tk.Transfer(t, k, in, sink, 1)
				txs, in = append(txs, tx), next
			}
			rounds[r].chains = append(rounds[r].chains, txs)
		}
	}
	tk.Close(t)

	var acked []notes.Hash
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for r, round := range rounds {
		p := startNode(t, tk.Home, "--block-time", "20ms")
		c, err := client.New(p.url)
		if err != nil {
			t.Fatal(err)
		}
		ids := submitUntilKilled(c, round, p, time.Duration(200+rng.IntN(600))*time.Millisecond)
		acked = append(acked, ids...)
		verifyAndCheck(t, tk.Home, acked, false)
		t.Logf("kill %d: %d submissions acknowledged so far", r+1, len(acked))
	}

	// A last node seals what is queued, then SIGTERM stops it cleanly.
	p := startNode(t, tk.Home, "--block-time", "20ms")
	c, err := client.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queue to drain", func() bool {
		st, err := c.Status(context.Background())
		return err == nil && st.MempoolDepth == 0
	})
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("the node stopped with %v:\n%s", err, p.stderr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("SIGTERM took %v", took)
	}
	verifyAndCheck(t, tk.Home, acked, true)
}

// submitUntilKilled runs every chain of round on its own client goroutine,
// each transfer submitted without waiting for its receipt, and SIGKILLs the
// node after delay. It returns the IDs of the acknowledged submissions. A
// chain stops at its first failed submission (the later ones spend what
// that one would have created).
func submitUntilKilled(c *client.Client, round soakRound, p *nodeProc, delay time.Duration) []notes.Hash {
	var mu sync.Mutex
	var ids []notes.Hash
	var wg sync.WaitGroup
	for _, txs := range round.chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tx := range txs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, err := c.Submit(ctx, tx, false)
				cancel()
				if err != nil {
					return
				}
				mu.Lock()
				ids = append(ids, out.ID)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(delay)
	p.cmd.Process.Kill() // SIGKILL, by PID
	p.cmd.Wait()
	wg.Wait()
	return ids
}

// verifyAndCheck runs `fractal verify` on home and checks every
// acknowledged transaction: committed, or (unless all) still queued.
func verifyAndCheck(t *testing.T, home string, acked []notes.Hash, all bool) {
	t.Helper()
	out, err := exec.Command("fractal", "--home", home, "verify").CombinedOutput()
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	in, err := fractal.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	committed := 0
	for _, id := range acked {
		st, _, err := in.TxState(id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case st == fractal.TxCommitted:
			committed++
		case st == fractal.TxQueued && !all:
		default:
			t.Fatalf("acknowledged transaction %x is %v (neither committed nor queued)", id[:8], st)
		}
	}
	t.Logf("%d acknowledged: %d committed, %d queued", len(acked), committed, len(acked)-committed)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
