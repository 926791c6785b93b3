package validator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometbft/cometbft/abci/example/kvstore"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
)

// Load of the benchmark (decision 127): as the spike measured kvstore.
const (
	benchClients  = 64
	benchDuration = 20 * time.Second
	benchMempool  = 50000
	benchMaxTxs   = 80000 // bounds the load in count as well as in time
	// benchFractalTxs are signed before the load: enough for 2,000/s.
	benchFractalTxs = 2000 * 20
	benchGas        = 100_000 // each mint's gas limit: a mint spends a few thousand
)

// loadResult is what one load run measured.
type loadResult struct {
	accepted, refused, errors int64
	elapsed                   time.Duration
	committed                 int     // transactions in blocks committed during the load
	blocks, largest           int     // blocks committed during the load, the most transactions in one
	tps                       float64 // committed per second of load
	p50, p95                  time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%.0f tx/s committed (%d in %.1fs, %d blocks, at most %d in one; accepted %d, refused %d, errors %d), commit latency p50 %v p95 %v",
		r.tps, r.committed, r.elapsed.Seconds(), r.blocks, r.largest, r.accepted, r.refused, r.errors, r.p50.Round(time.Millisecond), r.p95.Round(time.Millisecond))
}

// runLoad hands the transactions next gives out to the validators' RPC
// (broadcast_tx_sync) from benchClients closed-loop clients for
// benchDuration at most, then reads what n committed from its block store:
// the transactions of the blocks that appeared during the load, and for
// each transaction the time from its admission to its block.
func runLoad(ctx context.Context, n *node.Node, rpc []string, next func() []byte) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	admitted := map[string]time.Time{}
	seen := map[int64]time.Time{}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() { // when each height appears
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case now := <-tick.C:
				h := n.BlockStore().Height()
				mu.Lock()
				if _, ok := seen[h]; !ok {
					seen[h] = now
				}
				mu.Unlock()
			}
		}
	}()
	var res loadResult
	var acc, ref, errs atomic.Int64
	start, startHeight := time.Now(), n.BlockStore().Height()
	lctx, cancel := context.WithTimeout(ctx, benchDuration)
	defer cancel()
	var wg sync.WaitGroup
	for c := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := strings.TrimPrefix(rpc[c%len(rpc)], "http://")
			for lctx.Err() == nil {
				tx := next()
				if tx == nil {
					return
				}
				req, _ := http.NewRequestWithContext(lctx, http.MethodGet, "http://"+addr+"/broadcast_tx_sync?tx=0x"+hex.EncodeToString(tx), nil)
				resp, err := hc.Do(req)
				if err != nil {
					if lctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				var r struct {
					Result *struct {
						Code uint32 `json:"code"`
					} `json:"result"`
				}
				if json.Unmarshal(body, &r) == nil && r.Result != nil && r.Result.Code == 0 {
					acc.Add(1)
					mu.Lock()
					admitted[string(tx)] = time.Now()
					mu.Unlock()
				} else {
					ref.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	for end, target := time.Now().Add(10*time.Second), n.BlockStore().Height()+2; n.BlockStore().Height() < target && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	res.accepted, res.refused, res.errors = acc.Load(), ref.Load(), errs.Load()
	var lats []time.Duration
	mu.Lock()
	defer mu.Unlock()
	for h := startHeight + 1; h <= n.BlockStore().Height(); h++ {
		b, at := n.BlockStore().LoadBlock(h), seen[h]
		if b == nil || at.IsZero() {
			continue
		}
		if at.Sub(start) <= res.elapsed {
			res.committed += len(b.Txs)
			res.blocks++
			res.largest = max(res.largest, len(b.Txs))
		}
		for _, tx := range b.Txs {
			if t0, ok := admitted[string(tx)]; ok {
				lats = append(lats, at.Sub(t0))
			}
		}
	}
	res.tps = float64(res.committed) / res.elapsed.Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) > 0 {
		res.p50, res.p95 = lats[len(lats)/2], lats[len(lats)*95/100]
	}
	return res
}

// BenchmarkDevnet is issue 14's benchmark (make devnet-bench): four
// validators of a Fractal instance on 127.0.0.1–.4 under benchClients
// clients handing in signed mints (one note each), then CometBFT's kvstore
// on four validators of the same configuration under the same load, in
// the same run. It reports both rates and their ratio.
func BenchmarkDevnet(b *testing.B) {
	o := DevnetOptions{TimeoutPropose: 3 * time.Second, TimeoutCommit: time.Second, MempoolSize: benchMempool, Instance: fractal.DefaultConfig()}
	// Blocks as large as an instance allows, so that they, not the gas
	// limits, bound what a block takes (kvstore's are bounded by bytes).
	o.Instance.MaxBlockTxs, o.Instance.MaxBlockGas = chain.MaxBlockTxs, chain.MaxBlockTxs*benchGas
	ctx := context.Background()

	tn := newTestnet(b, 4, o, nil)
	w := newWorld(b)
	w.app = tn.deploy([]byte("return true"))
	txs := make([][]byte, benchFractalTxs)
	for i := range txs {
		tx := w.tx(b, "", fmt.Sprintf("n%d", i), "1")
		tx.GasLimit, tx.Signatures = benchGas, nil
		if err := tx.Sign(rand.Reader, w.alice); err != nil {
			b.Fatal(err)
		}
		txs[i] = tx.Encode()
	}
	var i atomic.Int64
	fr := runLoad(ctx, tn.nodes[0].Comet(), tn.devn.RPC, func() []byte {
		if k := i.Add(1) - 1; k < int64(len(txs)) {
			return txs[k]
		}
		return nil
	})
	for k := range tn.nodes {
		tn.stop(k)
	}
	b.Logf("fractal, 4 validators: %s", fr)

	kv := kvstoreNet(b, o)
	var j atomic.Int64
	kr := runLoad(ctx, kv[0], rpcOf(b, kv), func() []byte {
		if k := j.Add(1) - 1; k < benchMaxTxs {
			return fmt.Appendf(nil, "k%d=v", k)
		}
		return nil
	})
	b.Logf("kvstore, 4 validators: %s", kr)
	b.Logf("fractal / kvstore = %.2f (2 cores, shared)", fr.tps/kr.tps)
	b.ReportMetric(fr.tps, "fractal-tx/s")
	b.ReportMetric(kr.tps, "kvstore-tx/s")
	b.ReportMetric(fr.p50.Seconds(), "fractal-p50-s")
}

// kvstoreNet starts CometBFT's kvstore on four validators whose homes a
// devnet wrote with o: the same CometBFT configuration, another
// application. They are stopped when the benchmark ends.
func kvstoreNet(b *testing.B, o DevnetOptions) []*node.Node {
	o.Validators, o.BasePort, o.Instance = 4, freeBase(b, 4), fractal.DefaultConfig()
	d, err := WriteDevnet(filepath.Join(b.TempDir(), "kv"), o)
	if err != nil {
		b.Fatal(err)
	}
	var nodes []*node.Node
	for _, home := range d.Homes {
		conf, err := loadConfig(home)
		if err != nil {
			b.Fatal(err)
		}
		pv, err := loadFilePV(conf)
		if err != nil {
			b.Fatal(err)
		}
		nk, err := loadNodeKey(conf)
		if err != nil {
			b.Fatal(err)
		}
		doc, err := readGenesis(conf)
		if err != nil {
			b.Fatal(err)
		}
		doc.AppState = nil
		dbs := &dbSet{}
		n, err := newNode(conf, pv, nk, kvstore.NewInMemoryApplication(), func() (*types.GenesisDoc, error) { return doc, nil }, dbs, cmtlog.NewNopLogger())
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			n.Stop()
			n.Wait()
			n.ProxyApp().Stop()
			dbs.closeAll()
		})
		nodes = append(nodes, n)
	}
	return nodes
}

func rpcOf(b *testing.B, nodes []*node.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, strings.Replace(n.Config().RPC.ListenAddress, "tcp://", "http://", 1))
	}
	return out
}
