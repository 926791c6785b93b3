package fractal

import (
	"context"
	"testing"
	"time"

	"github.com/fractalvm/fractal/notes"
)

// BenchmarkTransferOne: one note exported on a, relayed and imported on b
// (export block, claim, import block), per iteration. Reports the claim and
// proof sizes in bytes.
func BenchmarkTransferOne(b *testing.B) {
	w := newWorld(b, 2)
	a, dst := w.ins[0], w.ins[1]
	minted := make([]notes.StateKey, b.N)
	for i := range minted {
		minted[i] = w.mint(b, 0, 1)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rc := w.run(b, a, w.exportTx(0, dst.ID(), 0, minted[i])); rc.Err() != nil {
			b.Fatal(rc.Err())
		}
		res, err := Relay(context.Background(), a, dst, w.alice)
		if err != nil || len(res.Imported) != 1 {
			b.Fatalf("relay: %+v %v", res, err)
		}
	}
	b.StopTimer()
	recs, _ := a.Exports(nil)
	c, err := a.ExportClaim(recs[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(c.Encode())), "claim-bytes")
	b.ReportMetric(float64(len(c.Proof.Encode())), "proof-bytes")
}

// BenchmarkImport1000: a batch of 1,000 exports (four export transactions
// of 250 notes) relayed and imported in one go; reports imports per second
// of the relay (claims, queueing, sealing).
func BenchmarkImport1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := newWorld(b, 2)
		a, dst := w.ins[0], w.ins[1]
		key := w.mint(b, 0, 1001)
		for j := 0; j < 4; j++ {
			rc := w.run(b, a, w.exportTx(0, dst.ID(), 250, key))
			if rc.Err() != nil {
				b.Fatal(rc.Err())
			}
			key = rc.Outputs[0].Key // the change
		}
		b.StartTimer()
		start := time.Now()
		res, err := Relay(context.Background(), a, dst, w.alice)
		if err != nil || len(res.Imported) != 1000 {
			b.Fatalf("relay: %d imported, %v", len(res.Imported), err)
		}
		b.ReportMetric(1000/time.Since(start).Seconds(), "imports/s")
	}
}
