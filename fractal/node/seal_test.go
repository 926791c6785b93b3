package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// TestSealLoopPipelined runs the seal loop under a flood of submissions
// (blocks are pipelined while half a block waits): every receipt a waiter
// gets is of a transaction the store holds committed at that height (a
// read waits for a write badger was handed, so this shows the write was
// handed over before, not that it was durable: the announcer waits for the
// landing by construction), the queue depth ends at 0, and a node stopped
// and closed with submissions still coming in leaves every acknowledged
// transaction committed or queued in the store it reopens.
func TestSealLoopPipelined(t *testing.T) {
	cfg := fractal.DefaultConfig()
	cfg.MaxBlockTxs = 8
	home := filepath.Join(t.TempDir(), "home")
	in, err := fractal.Init(home, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ncfg := DefaultConfig()
	ncfg.BlockTime = Duration(5 * time.Millisecond)
	n, err := New(in, ncfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var nonce uint64
	var nmu sync.Mutex
	tx := func() *phases.Tx {
		nmu.Lock()
		nonce++
		i := nonce
		nmu.Unlock()
		tx := &phases.Tx{Nonce: i, GasLimit: 1000, Lookup: []byte("return {}"), Calculation: []byte(fmt.Sprintf("return {} -- %d", i))}
		if err := tx.SignAll(rand.Reader, []keys.PrivateKey{key}); err != nil {
			panic(err)
		}
		return tx
	}
	n.Start()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				var txs []*phases.Tx
				for range 5 {
					txs = append(txs, tx())
				}
				for _, s := range n.SubmitBatch(context.Background(), txs, 10*time.Second) {
					if s.Err != nil {
						t.Error(s.Err)
						continue
					}
					if s.Result.State != fractal.TxCommitted {
						t.Errorf("%x: %+v after the wait", s.ID[:8], s.Result)
						continue
					}
					// Told only once the block's write was handed over.
					if st, h, err := in.TxState(s.ID); err != nil || st != fractal.TxCommitted || h != s.Result.Height {
						t.Errorf("%x: receipt of block %d told while the store says %v %d, %v", s.ID[:8], s.Result.Height, st, h, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for n.QueueDepth() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d := n.QueueDepth(); d != 0 {
		t.Fatalf("queue depth %d once everything was sealed", d)
	}

	// Stopped with submissions coming in and writes in flight.
	var acked []*phases.Tx
	var amu sync.Mutex
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				txs := []*phases.Tx{tx(), tx(), tx()}
				for i, s := range n.SubmitBatch(context.Background(), txs, 0) {
					if s.Err == nil {
						amu.Lock()
						acked = append(acked, txs[i])
						amu.Unlock()
					}
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	n.Stop()
	close(stop)
	wg.Wait()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	in, err = fractal.Open(home)
	if err != nil {
		t.Fatalf("open after Stop and Close: %v", err)
	}
	defer in.Close()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before Stop")
	}
	for _, tx := range acked {
		if st, _, err := in.TxState(tx.ID()); err != nil || st == fractal.TxUnknown {
			t.Fatalf("acknowledged %x is %v after a restart, %v", tx.ID(), st, err)
		}
	}
}
