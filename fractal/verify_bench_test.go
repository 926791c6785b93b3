package fractal

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// benchChain mints notes (128 per transaction), then seals blocks of
// transfer-shaped transactions (each spends one note and creates two), and
// returns the fixture and the time spent in Seal alone over every block, in
// nanoseconds per transaction.
func benchChain(b *testing.B, blocks, perBlock int) (*fixture, float64) {
	f := newFixture(b, DefaultConfig())
	var kv []string
	for i := 0; i < blocks*perBlock; i++ {
		kv = append(kv, fmt.Sprint("k", i), "1")
	}
	var sealNs int64
	for i := 0; i < len(kv); i += 2 * 128 {
		f.submit(b, f.mint(f.allow, f.allow, f.alice, kv[i:min(i+2*128, len(kv))]...))
		start := time.Now()
		f.seal(b)
		sealNs += time.Since(start).Nanoseconds()
	}
	for blk := 0; blk < blocks; blk++ {
		var txs []*phases.Tx
		for j := 0; j < perBlock; j++ {
			i := blk*perBlock + j
			txs = append(txs, f.move(f.allow, f.allow, f.alice, fmt.Sprint("k", i), fmt.Sprint("a", i), "1", fmt.Sprint("b", i), "1"))
		}
		f.submit(b, txs...)
		start := time.Now()
		s := f.seal(b)
		sealNs += time.Since(start).Nanoseconds()
		if len(s.Block.TxIDs) != perBlock {
			b.Fatalf("block holds %d transactions", len(s.Block.TxIDs))
		}
	}
	return f, float64(sealNs) / float64(blocks*perBlock+(len(kv)/2+127)/128)
}

// BenchmarkReplayVersusSeal compares verify (replay plus every check) with
// the original sealing of the same chain, per transaction.
func BenchmarkReplayVersusSeal(b *testing.B) {
	const blocks, perBlock = 10, 100
	f, sealPerTx := benchChain(b, blocks, perBlock)
	b.ResetTimer()
	var txs int
	for i := 0; i < b.N; i++ {
		rep, err := f.in.Verify(nil)
		if err != nil {
			b.Fatal(err)
		}
		txs = rep.Transactions
	}
	b.StopTimer()
	replayPerTx := float64(b.Elapsed().Nanoseconds()) / float64(b.N*txs)
	b.ReportMetric(sealPerTx, "seal-ns/tx")
	b.ReportMetric(replayPerTx, "replay-ns/tx")
	b.ReportMetric(sealPerTx/replayPerTx, "replay-speed/seal")
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
		if root, err = tree.UpdateBatch(txn, root, changes); err != nil {
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
	blk := &Block{Instance: in.id, Height: 1, StateRoot: root, TxsHash: TxsHash(nil)}
	if err := in.sign(blk); err != nil {
		b.Fatal(err)
	}
	// An absent state key: its proof runs as deep as a present one's.
	k := notes.StateKey{Key: []byte("absent")}
	var p *statetree.Proof
	in.db.View(func(txn *badger.Txn) (err error) { p, err = tree.Prove(txn, root, TreeKey(k)); return })
	qp := &QueryProof{Key: k, Proof: p, Block: blk}
	raw := qp.Encode()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q, err := DecodeQueryProof(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := CheckQueryProof(q, in.Executor()); err != nil {
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
			root, err = tree.UpdateBatch(txn, root, ch)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return root
}
