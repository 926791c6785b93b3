package phases

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fractalvm/fractal/internal/procmem"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// concurrentReads is a State that records how many reads of one key are in
// progress at once. Only the lookup code of the test reads that key, from
// inside its Lua run, so at most that many runs were in progress.
type concurrentReads struct {
	State
	key       string
	now, most atomic.Int64
}

func (s *concurrentReads) Get(k notes.StateKey) (*notes.Note, error) {
	if k.String() == s.key {
		n := s.now.Add(1)
		for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
		}
		runtime.Gosched() // let another run reach its read, if the budget allows it
		defer s.now.Add(-1)
	}
	return s.State.Get(k)
}

// TestMemoryBudgetBoundsConcurrentRuns: with a budget that holds one run's
// memory limit, the Lua runs of a block go one at a time (no two lookups
// read the probe key at once), predicates, which reserve more than the
// whole budget, still run, and the outcomes are those of ExecuteSerial.
func TestMemoryBudgetBoundsConcurrentRuns(t *testing.T) {
	kept := runMemory
	t.Cleanup(func() { runMemory = kept })
	runMemory = newBudget(vp.DefaultLimits().MaxMemory)

	w := newWorld(t)
	probe := notes.StateKey{Application: w.token, Owner: w.sig, Key: []byte("probe")}
	txs := independentTransfers(t, w, 16)
	for i, tx := range txs {
		tx.Read = append(tx.Read, notes.ExactPattern(probe))
		tx.Lookup = append([]byte(fmt.Sprintf("get(%q)\n", probe.String())), tx.Lookup...)
		tx.Signatures = nil
		txs[i] = signed(t, tx, senderKey(t, i))
	}
	want, err := ExecuteSerial(w.st.clone(), w.code, w.pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	st := &concurrentReads{State: w.st, key: probe.String()}
	got, err := ExecuteBlock(st, w.code, w.pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	if st.most.Load() != 1 {
		t.Fatalf("%d lookups read the probe at once, want 1", st.most.Load())
	}
	for i := range txs {
		accepted(t, got[i])
		if !bytes.Equal(got[i].Receipt.Encode(), want[i].Receipt.Encode()) {
			t.Fatalf("transaction %d: receipt differs from ExecuteSerial's", i)
		}
	}
}

// memoryHungry is calculation code that builds closures or tables with a
// string key until the sandbox's memory limit stops it.
func memoryHungry(i int) []byte {
	if i%2 == 0 {
		return []byte(`local all = {} for j = 1, 1e9 do local fs = {} all[j] = fs for i = 1, 60000 do local x = i fs[i] = function() return x end end end`)
	}
	return []byte(`local all = {} for j = 1, 1e9 do local ts = {} all[j] = ts for i = 1, 60000 do local t = {} t.k = i ts[i] = t end end`)
}

// BenchmarkBlockMemory executes a block of 40 transactions whose
// calculation code builds memory until the sandbox stops it (closures, and
// tables holding one string key), with the largest gas limit, and reports
// the process's peak resident memory. Run it alone, in a process of its own:
//
//	go test ./phases -run '^$' -bench BlockMemory -benchtime 1x
func BenchmarkBlockMemory(b *testing.B) {
	w := newWorld(b)
	issuer := testKey(b, 9)
	txs := make([]*Tx, 40)
	for i := range txs {
		txs[i] = signed(b, &Tx{
			Nonce: uint64(i + 1), GasLimit: MaxGasLimit, Calculation: memoryHungry(i),
			Write:   notes.ConstraintSet{w.ownerPrefix(issuer.Public())},
			Signers: []keys.PublicKey{issuer.Public()},
		}, issuer)
	}
	for b.Loop() {
		outs, err := ExecuteBlock(w.st, w.code, w.pool, txs)
		if err != nil {
			b.Fatal(err)
		}
		for i, out := range outs {
			if !strings.Contains(out.Receipt.Reason, "memory limit exceeded") {
				b.Fatalf("transaction %d: %v, want the memory limit", i, out.Receipt.Err())
			}
		}
	}
	peak, err := procmem.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
}
