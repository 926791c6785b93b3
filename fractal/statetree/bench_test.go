package statetree

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/internal/cache"
)

// benchSizes are the tree sizes the benchmarks build; STATETREE_BENCH_MAX
// lowers the largest for a quick run.
func benchSizes() []int {
	sizes := []int{10_000, 100_000, 1_000_000}
	limit, err := strconv.Atoi(os.Getenv("STATETREE_BENCH_MAX"))
	if err != nil {
		return sizes
	}
	var out []int
	for _, n := range sizes {
		if n <= limit {
			out = append(out, n)
		}
	}
	return out
}

// buildTree loads keys 0..n-1, one batch per badger transaction.
func buildTree(b *testing.B, db *badger.DB, tr *Tree, n int) Hash {
	const chunk = 3000 // about 60,000 new nodes: within one transaction's limit
	root := EmptyRoot
	changes := make([]Change, 0, chunk)
	start := time.Now()
	for i := 0; i < n; i += chunk {
		changes = changes[:0]
		for j := i; j < min(i+chunk, n); j++ {
			changes = append(changes, Change{key(j), val(j)})
		}
		root = update(b, db, tr, root, changes...)
	}
	// Let badger finish the compactions the load started, so that they are
	// not billed to whichever benchmark happens to run first.
	if err := db.Flatten(2); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d keys in %v", n, time.Since(start).Round(time.Millisecond))
	return root
}

// BenchmarkTree builds trees of 10k, 100k and 1M keys once each and measures
// on each: one inserted key per op ("change") and one transfer per op (one
// key deleted, two inserted, one UpdateBatch), with and without the node
// cache, 200 ops to a badger write transaction with the commit timed as the
// instance applies a block; then Prove and VerifyProof, with the proof size.
func BenchmarkTree(b *testing.B) {
	for _, n := range benchSizes() {
		db := openDB(b)
		tr := New(testPrefix)
		root := buildTree(b, db, tr, n)
		lo, hi := 0, n // the live keys are key(lo) .. key(hi-1)
		shapes := []struct {
			name    string
			changes func() []Change
		}{
			{"change", func() []Change {
				hi++
				return []Change{{key(hi - 1), val(hi - 1)}}
			}},
			{"transfer", func() []Change {
				lo, hi = lo+1, hi+2
				return []Change{{key(lo - 1), nil}, {key(hi - 2), val(hi - 2)}, {key(hi - 1), val(hi - 1)}}
			}},
		}
		for _, cached := range []bool{true, false} {
			for _, s := range shapes {
				b.Run(fmt.Sprintf("keys=%d/update=%s/cache=%v", n, s.name, cached), func(b *testing.B) {
					t := tr
					if !cached {
						t = &Tree{prefix: tr.prefix, cache: cache.New[Hash, *node](0)}
					}
					nodes := 0
					txn := db.NewTransaction(true)
					for i := 0; i < b.N; i++ {
						r, written, err := t.updateBatch(kvOf(txn), root, s.changes())
						if err != nil {
							b.Fatal(err)
						}
						root, nodes = r, nodes+written
						if i%200 == 199 {
							if err := txn.Commit(); err != nil {
								b.Fatal(err)
							}
							txn = db.NewTransaction(true)
						}
					}
					if err := txn.Commit(); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(nodes)/float64(b.N), "nodes/op")
				})
			}
		}
		type proved struct {
			i int
			p *Proof
		}
		var proofs []proved
		live := func(i int) int { return lo + i%(hi-lo) }
		txn := db.NewTransaction(false)
		b.Run(fmt.Sprintf("keys=%d/prove", n), func(b *testing.B) {
			size := 0
			proofs = proofs[:0]
			for i := 0; i < b.N; i++ {
				p, err := tr.Prove(kvOf(txn), root, key(live(i)))
				if err != nil {
					b.Fatal(err)
				}
				size += len(p.Encode())
				if len(proofs) < 1024 {
					proofs = append(proofs, proved{live(i), p})
				}
			}
			b.ReportMetric(float64(size)/float64(b.N), "proof-bytes")
		})
		txn.Discard()
		b.Run(fmt.Sprintf("keys=%d/verify", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				pr := proofs[i%len(proofs)]
				if err := VerifyProof(root, key(pr.i), val(pr.i), pr.p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBatchBlock applies transfers (one key deleted, two inserted) one
// Apply each to a Batch over a tree of 10,000 keys (all in the node cache,
// as in BenchmarkTransfer's instance) and commits the batch and its badger
// transaction every 1,024 transfers, as the instance seals a block: time,
// allocations and nodes written per transfer.
func BenchmarkBatchBlock(b *testing.B) {
	const n, block = 10_000, 1024
	db := openDB(b)
	tr := New(testPrefix)
	root := buildTree(b, db, tr, n)
	lo, hi := 0, n
	nodes := 0
	b.ReportAllocs()
	b.ResetTimer()
	txn := db.NewTransaction(true)
	batch := tr.Begin(kvOf(txn), root)
	for i := 0; i < b.N; i++ {
		lo, hi = lo+1, hi+2
		if _, err := batch.Apply([]Change{{key(lo - 1), nil}, {key(hi - 2), val(hi - 2)}, {key(hi - 1), val(hi - 1)}}); err != nil {
			b.Fatal(err)
		}
		if i%block == block-1 || i == b.N-1 {
			written, err := batch.Commit(kvOf(txn))
			if err != nil {
				b.Fatal(err)
			}
			nodes += written
			if err := txn.Commit(); err != nil {
				b.Fatal(err)
			}
			txn = db.NewTransaction(true)
			batch = tr.Begin(kvOf(txn), batch.Root())
		}
	}
	txn.Discard()
	b.ReportMetric(float64(nodes)/float64(b.N), "nodes/op")
}
