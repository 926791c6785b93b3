package phases

import (
	"testing"

	"github.com/fractalvm/fractal/internal/cputime"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// BenchmarkTransfer runs one token transfer (1 input, 2 outputs, one
// signer) through phases 1–3, signature verification included.
func BenchmarkTransfer(b *testing.B) {
	w := newWorld(b)
	alice, bob := testKey(b, 1), testKey(b, 2)
	n := w.gold(alice.Public(), alice.Public(), 100, "genesis")
	w.st.put(n)
	tx := w.transferTx(b, alice, []notes.Note{n}, bob.Public(), 30, 1)
	b.ResetTimer()
	for b.Loop() {
		out, err := Execute(w.st, w.code, w.pool, tx)
		if err != nil || out.Receipt.Status != Accepted {
			b.Fatal(err, out.Receipt.Err())
		}
	}
}

// independentTransfers is n transfers from n distinct senders.
func independentTransfers(b testing.TB, w *world, n int) []*Tx {
	issuer := testKey(b, 200)
	to := testKey(b, 201).Public()
	txs := make([]*Tx, n)
	for i := range txs {
		k := senderKey(b, i)
		note := w.gold(issuer.Public(), k.Public(), 100, "genesis")
		w.st.put(note)
		txs[i] = w.transferTx(b, k, []notes.Note{note}, to, 30, 1)
	}
	return txs
}

// senderKey is the key of independentTransfers' i-th sender.
func senderKey(t testing.TB, i int) keys.PrivateKey {
	k, err := keys.GenerateKey(&counterReader{n: uint64(i)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// counterReader yields bytes derived from n, for distinct fixed keys.
type counterReader struct{ n uint64 }

func (r *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.n >> (8 * (i % 8)))
		if i%8 == 7 {
			p[i] ^= byte(i)
		}
	}
	return len(p), nil
}

// benchBlock runs a block of 1,000 transfers, each from its own sender;
// with conflicting, every transaction also declares one write pattern
// they all share, so each must wait for the one before it. It reports
// transfers per second and how many cores the process kept busy (CPU
// time over wall-clock time).
func benchBlock(b *testing.B, conflicting bool, run func(State, Code, *world, []*Tx) ([]*Outcome, error)) {
	w := newWorld(b)
	txs := independentTransfers(b, w, 1000)
	if conflicting {
		shared := notes.PatternFromKeyPrefix(notes.StateKey{Application: w.token, Owner: w.sig, Key: []byte("shared:")})
		for i, tx := range txs {
			tx.Write = append(tx.Write, shared)
			txs[i] = signed(b, tx, senderKey(b, i))
		}
	}
	b.ResetTimer()
	cpu := cputime.Process()
	for b.Loop() {
		outs, err := run(w.st, w.code, w, txs)
		if err != nil {
			b.Fatal(err)
		}
		// Every transfer counted must have been executed and accepted.
		if len(outs) != len(txs) {
			b.Fatalf("%d outcomes for %d transfers", len(outs), len(txs))
		}
		for i, out := range outs {
			if out == nil {
				b.Fatalf("transfer %d has no outcome", i)
			}
			if out.Receipt.Status != Accepted {
				b.Fatalf("transfer %d was counted but not accepted: %v", i, out.Receipt.Err())
			}
		}
	}
	b.ReportMetric(float64(b.N*len(txs))/b.Elapsed().Seconds(), "tx/s")
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.Elapsed()), "cores")
}

// BenchmarkBlock1000 runs 1,000 independent transfers serially and with
// the scheduler, and 1,000 that all conflict with the scheduler.
func BenchmarkBlock1000(b *testing.B) {
	serial := func(st State, c Code, w *world, txs []*Tx) ([]*Outcome, error) {
		return ExecuteSerial(st, c, w.pool, txs)
	}
	// scheduled also reports the share of transactions whose outcome came
	// from a speculative run (decision 153): the work taken off the chain
	// of a conflicting block, whatever the machine's load.
	var kept, ran int
	scheduled := func(st State, c Code, w *world, txs []*Tx) ([]*Outcome, error) {
		outs := make([]*Outcome, len(txs))
		count, err := executeBlock(st, c, w.pool, txs, func(i int, out *Outcome) error {
			outs[i] = out
			return nil
		})
		kept, ran = kept+count.kept, ran+len(txs)
		return outs, err
	}
	b.Run("serial", func(b *testing.B) { benchBlock(b, false, serial) })
	for _, c := range []struct {
		name        string
		conflicting bool
	}{{"scheduled", false}, {"conflicting", true}} {
		b.Run(c.name, func(b *testing.B) {
			kept, ran = 0, 0
			benchBlock(b, c.conflicting, scheduled)
			b.ReportMetric(float64(kept)/float64(ran), "speculated")
		})
	}
}
