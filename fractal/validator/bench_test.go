package validator

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime/pprof"
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
	"github.com/fractalvm/fractal/internal/benchprofile"
	"github.com/fractalvm/fractal/internal/cputime"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Load of the benchmark (decision 127): as the spike measured kvstore.
const (
	benchClients  = 64
	benchDuration = 20 * time.Second
	benchMempool  = 50000
	benchMaxTxs   = 80000 // bounds the load in count as well as in time
	// benchTxs transfers are signed before the load: enough for 2,000/s, sent
	// from benchSenders keys taken in turn (decision 150: one transfer per
	// key in each block's worth, each spending a note of its own).
	benchTxs     = 2000 * 20
	benchSenders = 1024
	// benchBlockTxs is the largest block: a decided block's writes must fit
	// in one badger transaction (about 10 MB with badger's default 64 MB
	// memtables): blocks of 2,048 and 4,096 transfers did not, which stops every
	// validator at its execution.
	benchBlockTxs = 1536
)

// loadResult is what one load run measured.
type loadResult struct {
	accepted, refused, errors int64
	elapsed                   time.Duration
	committed                 int     // transactions in blocks committed during the load
	failed                    int     // of those, the ones the application refused in their block
	blocks, largest           int     // blocks committed during the load, the most transactions in one
	tps                       float64 // committed per second of load, the refused ones not counted
	cpu                       time.Duration
	p50, p95                  time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%.0f tx/s committed (%d in %.1fs, %d refused in their block, %d blocks, at most %d in one; admitted %d, refused %d, errors %d), commit latency p50 %v p95 %v, %.0f µs of CPU per committed tx (the load generator's included)",
		r.tps, r.committed-r.failed, r.elapsed.Seconds(), r.failed, r.blocks, r.largest, r.accepted, r.refused, r.errors, r.p50.Round(time.Millisecond), r.p95.Round(time.Millisecond), r.cpuPerTx())
}

// cpuPerTx is the process's CPU time during the load over the transactions
// committed: every validator's, CometBFT's and the load generator's.
func (r loadResult) cpuPerTx() float64 {
	return float64(r.cpu.Microseconds()) / float64(max(r.committed-r.failed, 1))
}

// runLoad hands the transactions next gives out to the validators' RPC
// (broadcast_tx_sync) from benchClients closed-loop clients for
// benchDuration at most, then reads what n committed from its block store:
// the transactions of the blocks that appeared during the load (refused
// ones, for which refused reports true, counted apart), and for each
// transaction the time from its admission to its block.
func runLoad(ctx context.Context, b *testing.B, name string, n *node.Node, rpc []string, next func() []byte, refused func(tx []byte) bool) loadResult {
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
	stopProfile := benchprofile.Window(b, name)
	start, startHeight, cpu := time.Now(), n.BlockStore().Height(), cputime.Process()
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
	res.elapsed, res.cpu = time.Since(start), cputime.Process()-cpu
	stopProfile()
	for end, target := time.Now().Add(10*time.Second), n.BlockStore().Height()+2; n.BlockStore().Height() < target && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	res.accepted, res.refused, res.errors = acc.Load(), ref.Load(), errs.Load()
	var lats []time.Duration
	mu.Lock()
	defer mu.Unlock()
	for h := startHeight + 1; h <= n.BlockStore().Height(); h++ {
		blk, at := n.BlockStore().LoadBlock(h), seen[h]
		if blk == nil || at.IsZero() {
			continue
		}
		if at.Sub(start) <= res.elapsed {
			res.committed += len(blk.Txs)
			res.blocks++
			res.largest = max(res.largest, len(blk.Txs))
			for _, tx := range blk.Txs {
				if refused != nil && refused(tx) {
					res.failed++
				}
			}
		}
		for _, tx := range blk.Txs {
			if t0, ok := admitted[string(tx)]; ok {
				lats = append(lats, at.Sub(t0))
			}
		}
	}
	res.tps = float64(res.committed-res.failed) / res.elapsed.Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) > 0 {
		res.p50, res.p95 = lats[len(lats)/2], lats[len(lats)*95/100]
	}
	return res
}

// BenchmarkDevnet is issue 14's benchmark (make devnet-bench): four
// validators of a Fractal instance on 127.0.0.1–.4 under benchClients
// clients handing in signed token transfers (examples/token and
// examples/sig, one input and two outputs, from benchSenders keys), then
// CometBFT's kvstore on four validators of the same configuration under
// the same load, in the same run. It reports both rates, their ratio and
// the process's CPU time per committed transaction under each.
func BenchmarkDevnet(b *testing.B) {
	o := DevnetOptions{TimeoutPropose: 3 * time.Second, TimeoutCommit: time.Second, MempoolSize: benchMempool, Instance: fractal.DefaultConfig()}
	// Blocks of up to benchBlockTxs transactions, so that they, not the
	// gas limits, bound what a block takes (kvstore's are bounded by
	// bytes). The mints of the setup ask for max_tx_gas's default: 8 of
	// them (1,024 notes) a block. (At 80 a block, their writes passed a
	// block's bound, decision 167, and the setup waited on cut mints.)
	o.Instance.MaxBlockTxs, o.Instance.MaxBlockGas = benchBlockTxs, 8*fractal.DefaultMaxTxGas
	ctx := context.Background()

	tn := newTestnet(b, 4, o, nil)
	var txs [][]byte
	pprof.Do(ctx, pprof.Labels("part", "setup"), func(context.Context) { txs = benchTransfers(b, tn) })
	var i atomic.Int64
	in := tn.nodes[0].Instance()
	fr := runLoad(ctx, b, "fractal", tn.nodes[0].Comet(), tn.devn.RPC, func() []byte {
		if k := i.Add(1) - 1; k < int64(len(txs)) {
			return txs[k]
		}
		return nil
	}, func(raw []byte) bool {
		tx, err := phases.DecodeTx(raw)
		if err != nil {
			return true
		}
		rc, err := in.Receipt(tx.ID())
		return err != nil || rc == nil || rc.Status != phases.Accepted
	})
	for k := range tn.nodes {
		tn.stop(k)
	}
	b.Logf("fractal, 4 validators: %s", fr)

	kr := kvstoreLoad(ctx, b, o, "kvstore", func(k int64) []byte { return fmt.Appendf(nil, "k%d=v", k) })
	b.Logf("kvstore, 4 validators: %s", kr)
	// The same again with transactions as large as Fractal's transfers:
	// CometBFT's own work (RPC, gossip, blocks, its WAL) grows with the bytes.
	size := len(txs[0])
	ks := kvstoreLoad(ctx, b, o, "kvstore-sized", func(k int64) []byte {
		tx := fmt.Appendf(nil, "k%d=", k)
		return append(tx, strings.Repeat("v", max(size-len(tx), 1))...)
	})
	b.Logf("kvstore, 4 validators, transactions of %d bytes: %s", size, ks)
	b.Logf("fractal / kvstore = %.2f, fractal / kvstore with transactions of its size = %.2f (2 cores, shared)", fr.tps/kr.tps, fr.tps/ks.tps)
	b.ReportMetric(fr.tps, "fractal-tx/s")
	b.ReportMetric(kr.tps, "kvstore-tx/s")
	b.ReportMetric(ks.tps, "kvstore-sized-tx/s")
	b.ReportMetric(fr.p50.Seconds(), "fractal-p50-s")
	b.ReportMetric(fr.cpuPerTx(), "fractal-cpu-µs/tx")
	b.ReportMetric(kr.cpuPerTx(), "kvstore-cpu-µs/tx")
	b.ReportMetric(ks.cpuPerTx(), "kvstore-sized-cpu-µs/tx")
}

// kvstoreLoad runs the load of tx(0), tx(1), … (benchMaxTxs at most) on
// CometBFT's kvstore on four validators configured as o, and stops them.
func kvstoreLoad(ctx context.Context, b *testing.B, o DevnetOptions, name string, tx func(k int64) []byte) loadResult {
	kv, stop := kvstoreNet(b, o)
	defer stop()
	var j atomic.Int64
	return runLoad(ctx, b, name, kv[0], rpcOf(b, kv), func() []byte {
		if k := j.Add(1) - 1; k < benchMaxTxs {
			return tx(k)
		}
		return nil
	}, nil)
}

// benchTransfers deploys examples/token and examples/sig on tn, mints
// benchTxs notes through it and returns as many transfers spending them
// (benchTokenTxs).
func benchTransfers(b *testing.B, tn *testnet) [][]byte {
	tk := &nodetest.Token{App: tn.deploy(nodetest.Example(b, "token/token.lua")), Sig: tn.deploy(nodetest.Example(b, "sig/sig.lua")), Issuer: nodetest.Key(b)}
	mints, txs := benchTokenTxs(b, tk, benchTxs)
	var ids []notes.Hash
	for _, tx := range mints {
		tn.submit(0, tx.Encode())
		ids = append(ids, tx.ID())
	}
	tn.committed(ids...)
	return txs
}

// benchTokenTxs returns the mints of n GOLD notes of tk to benchSenders
// keys (each key's notes at "<key>:seed:<k>") and n signed transfers of
// one unit to one recipient, each spending one of those notes, the keys
// taken in turn (decision 150).
func benchTokenTxs(tb testing.TB, tk *nodetest.Token, n int) (mints []*phases.Tx, transfers [][]byte) {
	senders := nodetest.Keys(tb, benchSenders)
	seeds := make([]nodetest.Note, n)
	for i := range seeds {
		owner := senders[i%benchSenders].Public()
		seeds[i] = nodetest.Note{Key: notes.StateKey{Application: tk.App, Owner: tk.Sig, Key: fmt.Appendf(nil, "%s:seed:%d", owner, i/benchSenders)}, Value: tk.Gold(1000)}
	}
	to := nodetest.Key(tb).Public()
	transfers = make([][]byte, n)
	for i, in := range seeds {
		tx, _ := tk.LeanTransfer(tb, senders[i%benchSenders], in, to, fmt.Sprintf("t%d", i))
		transfers[i] = tx.Encode()
	}
	return tk.MintTxs(tb, seeds), transfers
}

// kvstoreNet starts CometBFT's kvstore on four validators whose homes a
// devnet wrote with o: the same CometBFT configuration, another
// application. stop stops them; they are stopped when the benchmark ends
// otherwise.
func kvstoreNet(b *testing.B, o DevnetOptions) (nodes []*node.Node, stop func()) {
	o.Validators, o.BasePort, o.Instance = 4, freeBase(b, 4), fractal.DefaultConfig()
	d, err := WriteDevnet(filepath.Join(b.TempDir(), "kv"), o)
	if err != nil {
		b.Fatal(err)
	}
	var stops []func()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, s := range stops {
				s()
			}
		})
	}
	b.Cleanup(stop)
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
		stops = append(stops, func() {
			n.Stop()
			n.Wait()
			n.ProxyApp().Stop()
			dbs.closeAll()
		})
		nodes = append(nodes, n)
	}
	return nodes, stop
}

func rpcOf(b *testing.B, nodes []*node.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, strings.Replace(n.Config().RPC.ListenAddress, "tcp://", "http://", 1))
	}
	return out
}
