package statetree

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
)

// reachable adds to seen the hash of every stored node under root.
func reachable(tb testing.TB, db *badger.DB, tr *Tree, root Hash, seen map[Hash]bool) {
	tb.Helper()
	err := db.View(func(txn *badger.Txn) error {
		stack := []Hash{root}
		for len(stack) > 0 {
			h := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if h == EmptyRoot || seen[h] {
				continue
			}
			seen[h] = true
			n, err := tr.load(kvOf(txn), h)
			if err != nil {
				return err
			}
			if n.kind == kindInternal {
				stack = append(stack, n.a, n.b)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// TestBatchMatchesPerChange runs one random workload of blocks of
// transactions twice: through UpdateBatch per transaction (every
// intermediate root stored) and through one Batch per block. Every
// per-transaction root and every refusal must be the same and agree with the
// specification; the Batch store must hold exactly the nodes of the blocks'
// final roots, fewer than the other.
func TestBatchMatchesPerChange(t *testing.T) {
	perChange, perBlock := openDB(t), openDB(t)
	trA, trB := New(testPrefix), New(testPrefix)
	rng := rand.New(rand.NewPCG(5, 6))
	m := map[Hash]Hash{}
	rootA, rootB := EmptyRoot, EmptyRoot
	finals := map[Hash]bool{}
	refusals := 0
	for blk := range 40 {
		txnA, txnB := perChange.NewTransaction(true), perBlock.NewTransaction(true)
		batch := trB.Begin(kvOf(txnB), rootB)
		for tx := range 1 + rng.IntN(30) {
			var changes []Change
			next := map[Hash]*Hash{}
			for range 1 + rng.IntN(4) {
				k := key(rng.IntN(500))
				_, present := m[k]
				if nv, ok := next[k]; ok {
					present = nv != nil
				}
				switch {
				case present && rng.IntN(3) == 0:
					changes = append(changes, Change{k, nil})
					next[k] = nil
				case !present && rng.IntN(15) == 0: // refused: absent
					changes = append(changes, Change{k, nil})
				default:
					nv := val(rng.IntN(1 << 20))
					changes = append(changes, Change{k, nv})
					next[k] = nv
				}
			}
			a, errA := trA.UpdateBatch(kvOf(txnA), rootA, changes)
			b, errB := batch.Apply(changes)
			if (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() {
				t.Fatalf("block %d tx %d: refusals differ: %v / %v", blk, tx, errA, errB)
			}
			if a != b || batch.Root() != b {
				t.Fatalf("block %d tx %d: roots differ: %x / %x", blk, tx, a, b)
			}
			if errA != nil {
				if !strings.Contains(errB.Error(), "which is absent") || b != rootB {
					t.Fatalf("block %d tx %d: refusal %v moved the root", blk, tx, errB)
				}
				refusals++
				continue
			}
			for k, v := range next {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = *v
				}
			}
			if want := naiveRoot(m); b != want {
				t.Fatalf("block %d tx %d: root %x, want %x", blk, tx, b, want)
			}
			rootA, rootB = a, b
		}
		if _, err := batch.Commit(kvOf(txnB)); err != nil {
			t.Fatal(err)
		}
		for _, txn := range []*badger.Txn{txnA, txnB} {
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		finals[rootB] = true
	}
	if refusals == 0 || len(m) < 100 {
		t.Fatalf("workload too tame: %d refusals, %d keys", refusals, len(m))
	}
	seen := map[Hash]bool{}
	for r := range finals {
		reachable(t, perBlock, New(testPrefix), r, seen)
	}
	nA, nB := countNodes(t, perChange), countNodes(t, perBlock)
	if nB != len(seen) || nB >= nA {
		t.Fatalf("per-block store holds %d nodes, final roots reach %d, per-change store %d", nB, len(seen), nA)
	}
	t.Logf("nodes stored: per change %d, per block %d", nA, nB)
	// The final root is complete in the store: every key proves its value.
	fresh := New(testPrefix)
	err := perBlock.View(func(txn *badger.Txn) error {
		for k, v := range m {
			p, err := fresh.Prove(kvOf(txn), rootB, k)
			if err != nil {
				return err
			}
			if err := VerifyProof(rootB, k, &v, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBatchIntermediateRecomputed shows what a per-block store keeps: an
// intermediate root is not readable, and applying the same changes again
// from the previous final root recomputes it.
func TestBatchIntermediateRecomputed(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	base := update(t, db, tr, EmptyRoot, Change{key(1), val(1)}, Change{key(2), val(2)}, Change{key(3), val(3)})
	steps := [][]Change{{{key(4), val(4)}}, {{key(1), nil}, {key(5), val(5)}}, {{key(4), val(6)}}}
	var mids []Hash
	err := db.Update(func(txn *badger.Txn) error {
		b := tr.Begin(kvOf(txn), base)
		for _, s := range steps {
			r, err := b.Apply(s)
			if err != nil {
				return err
			}
			mids = append(mids, r)
		}
		_, err := b.Commit(kvOf(txn))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = view(t, db, func(txn kv.Reader) (bool, error) {
		_, ok, err := New(testPrefix).Get(txn, mids[0], key(4))
		return ok, err
	})
	if err == nil || !strings.Contains(err.Error(), "is missing from the store") {
		t.Fatalf("read of a superseded root: err = %v", err)
	}
	txn := db.NewTransaction(false)
	defer txn.Discard()
	b := New(testPrefix).Begin(kvOf(txn), base)
	for i, s := range steps {
		if r, err := b.Apply(s); err != nil || r != mids[i] {
			t.Fatalf("step %d: replayed root %x err %v, want %x", i, r, err, mids[i])
		}
	}
	if v, ok, err := New(testPrefix).Get(kvOf(txn), mids[2], key(4)); err != nil || !ok || v != *val(6) {
		t.Fatalf("final root: %x %v %v", v, ok, err)
	}
}

// TestBatchRefusalKeepsOverlay: a refused Apply leaves the batch where it
// was, and a commit after it writes exactly what the accepted changes made.
func TestBatchRefusalKeepsOverlay(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	txn := db.NewTransaction(true)
	b := tr.Begin(kvOf(txn), EmptyRoot)
	r1, err := b.Apply([]Change{{key(1), val(1)}, {key(2), val(2)}})
	if err != nil {
		t.Fatal(err)
	}
	overlay := len(b.nodes)
	_, err = b.Apply([]Change{{key(3), val(3)}, {key(9), nil}})
	if err == nil || err.Error() != "statetree: change 1 deletes key "+hexOf(key(9))+", which is absent" {
		t.Fatalf("refusal: %v", err)
	}
	if b.Root() != r1 || len(b.nodes) != overlay {
		t.Fatalf("refusal moved the batch: root %x, %d overlay nodes (was %d)", b.Root(), len(b.nodes), overlay)
	}
	// Two leaves and an internal node on every level of their shared prefix.
	k1, k2 := key(1), key(2)
	want := 2 + commonPrefix(&k1, &k2) + 1
	if n, err := b.Commit(kvOf(txn)); err != nil || n != want {
		t.Fatalf("commit wrote %d nodes, err %v; want %d", n, err, want)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := countNodes(t, db); n != want {
		t.Fatalf("store holds %d nodes, want %d", n, want)
	}
}
