package fractal

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// chainCost is what building a benchmark chain cost, per transaction:
// wall-clock time in Seal alone, and wall-clock and CPU time of the whole
// original execution (submission, which verifies signatures, plus Seal).
type chainCost struct {
	sealNs, origNs, origCPUNs float64
}

// benchChain mints notes (128 per transaction), then seals blocks of
// transfer-shaped transactions (each spends one note and creates two), and
// returns the fixture and what sealing the chain cost.
func benchChain(b *testing.B, blocks, perBlock int) (*fixture, chainCost) {
	f := newFixture(b, oneKeyConfig()) // one key signs every block's transactions
	var kv []string
	for i := 0; i < blocks*perBlock; i++ {
		kv = append(kv, fmt.Sprint("k", i), "1")
	}
	var sealNs, origNs, cpuNs int64
	run := func(txs ...*phases.Tx) *Sealed {
		start, cpu := time.Now(), cpuTime()
		for _, err := range f.in.SubmitAll(txs) {
			if err != nil {
				b.Fatal(err)
			}
		}
		sealStart := time.Now()
		s := f.seal(b)
		sealNs += time.Since(sealStart).Nanoseconds()
		origNs += time.Since(start).Nanoseconds()
		cpuNs += (cpuTime() - cpu).Nanoseconds()
		return s
	}
	for i := 0; i < len(kv); i += 2 * 128 {
		run(f.mint(f.allow, f.allow, f.alice, kv[i:min(i+2*128, len(kv))]...))
	}
	for blk := 0; blk < blocks; blk++ {
		var txs []*phases.Tx
		for j := 0; j < perBlock; j++ {
			i := blk*perBlock + j
			txs = append(txs, f.move(f.allow, f.allow, f.alice, fmt.Sprint("k", i), fmt.Sprint("a", i), "1", fmt.Sprint("b", i), "1"))
		}
		if s := run(txs...); len(s.Block.TxIDs) != perBlock {
			b.Fatalf("block holds %d transactions", len(s.Block.TxIDs))
		}
	}
	n := float64(blocks*perBlock + (len(kv)/2+127)/128)
	return f, chainCost{float64(sealNs) / n, float64(origNs) / n, float64(cpuNs) / n}
}

// BenchmarkReplayVersusSeal compares verify (replay plus every check) with
// the original execution of the same chain, per transaction: with Seal
// alone (which trusts the signatures submission verified) and with
// submission plus Seal (wall-clock and CPU time; the shared machine makes
// CPU time the steadier figure).
func BenchmarkReplayVersusSeal(b *testing.B) {
	const blocks, perBlock = 10, 100
	f, orig := benchChain(b, blocks, perBlock)
	b.ResetTimer()
	var txs int
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		rep, err := f.in.Verify(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		txs = rep.Transactions
	}
	b.StopTimer()
	replayPerTx := float64(b.Elapsed().Nanoseconds()) / float64(b.N*txs)
	replayCPU := float64((cpuTime() - cpu).Nanoseconds()) / float64(b.N*txs)
	b.ReportMetric(orig.sealNs, "seal-ns/tx")
	b.ReportMetric(replayPerTx, "replay-ns/tx")
	b.ReportMetric(orig.sealNs/replayPerTx, "replay-speed/seal")
	b.ReportMetric(orig.origNs/replayPerTx, "replay-speed/submit+seal")
	b.ReportMetric(orig.origCPUNs/replayCPU, "replay-cpu-speed/submit+seal")
}

// BenchmarkStateRootPerTx measures the state-tree part of committing one
// transfer-shaped transaction (one deletion, two insertions) on the
// instance's tree with 100 000 live notes, 100 transactions per badger
// transaction as in a sealed block (so one fsync per 100).
func BenchmarkStateRootPerTx(b *testing.B) {
	in, _ := newTestInstance(b)
	root := fillTree(b, in, 100_000)
	b.ResetTimer()
	txn := in.db.NewTransaction(true)
	for i := 0; i < b.N; i++ {
		v1, v2 := benchKey("v", i), benchKey("w", i)
		changes := []statetree.Change{{Key: benchKey("k", i)}, {Key: benchKey("a", i), Value: &v1}, {Key: benchKey("b", i), Value: &v2}}
		var err error
		if root, err = tree.UpdateBatch(badgerdb.KV{Txn: txn}, root, changes); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 || i == b.N-1 {
			if err := txn.Commit(); err != nil {
				b.Fatal(err)
			}
			txn = in.db.NewTransaction(true)
		}
	}
	txn.Discard()
}

// BenchmarkQueryProofCheck measures the size of a query proof and the time
// to check it offline (signature and tree path) against a tree of
// FRACTAL_BENCH_NOTES keys (default 100 000).
func BenchmarkQueryProofCheck(b *testing.B) {
	in, _ := newTestInstance(b)
	n := envInt("FRACTAL_BENCH_NOTES", 100_000)
	root := fillTree(b, in, n)
	blk := &chain.Block{Instance: in.id, Height: 1, StateRoot: root, TxsHash: chain.TxsHash(nil)}
	if err := chain.SignBlock(context.Background(), blk, in.signer); err != nil {
		b.Fatal(err)
	}
	// An absent state key: its proof runs as deep as a present one's.
	k := notes.StateKey{Key: []byte("absent")}
	var p *statetree.Proof
	in.db.View(func(txn *badger.Txn) (err error) {
		p, err = tree.Prove(badgerdb.KV{Txn: txn}, root, chain.TreeKey(k))
		return
	})
	qp := &chain.QueryProof{Key: k, Proof: p, Block: blk}
	raw := qp.Encode()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q, err := chain.DecodeQueryProof(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := chain.CheckQueryProof(q, in.Executor(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw)), "proof-file-bytes")
	b.ReportMetric(float64(len(p.Encode())), "tree-proof-bytes")
	b.ReportMetric(float64(len(p.Siblings)), "levels")
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func benchKey(prefix string, i int) [32]byte {
	return sha256.Sum256(binary.BigEndian.AppendUint64([]byte(prefix), uint64(i)))
}

// fillTree writes n keys k0..k(n-1) into the instance's tree in batches.
func fillTree(b *testing.B, in *Instance, n int) [32]byte {
	root := statetree.EmptyRoot
	const batch = 5000
	for i := 0; i < n; i += batch {
		var ch []statetree.Change
		for j := i; j < min(i+batch, n); j++ {
			v := benchKey("v", j)
			ch = append(ch, statetree.Change{Key: benchKey("k", j), Value: &v})
		}
		err := in.db.Update(func(txn *badger.Txn) (err error) {
			root, err = tree.UpdateBatch(badgerdb.KV{Txn: txn}, root, ch)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return root
}
