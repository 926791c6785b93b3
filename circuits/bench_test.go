package circuits

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/zk"
)

func BenchmarkTransferSetup(b *testing.B) {
	cc, err := zk.CompileNamed(TransferName, &Transfer{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := (zk.Cache{Dir: b.TempDir()}).DevSetup(cc); err != nil {
			b.Fatal(err)
		}
	}
	// Metrics after the loop: b.Loop's first call clears earlier ones.
	b.ReportMetric(float64(cc.CCS.GetNbConstraints()), "constraints")
}

func BenchmarkTransferProve(b *testing.B) {
	k := transferKeys(b)
	w := newFixture(b).pay100(b)
	// On a shared machine wall time mostly measures the neighbours; the
	// process's CPU time per proof (all cores together) is steadier.
	cpu := processCPU(b)
	for b.Loop() {
		if _, err := zk.Prove(k, w.Assignment); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(k.Info.Constraints), "constraints")
	b.ReportMetric(zk.ProofSize, "proof-bytes")
}

func BenchmarkTransferVerify(b *testing.B) {
	k := transferKeys(b)
	w := newFixture(b).pay100(b)
	p, err := zk.Prove(k, w.Assignment)
	if err != nil {
		b.Fatal(err)
	}
	pub := w.Public.Vector()
	for b.Loop() {
		if err := zk.Verify(k.VK, p, pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransferBatchVerify64 checks 64 proofs (4 distinct, each 16
// times: the cost does not depend on repetition) per iteration and reports
// the time per proof.
func BenchmarkTransferBatchVerify64(b *testing.B) {
	k := transferKeys(b)
	f := newFixture(b)
	var proofs []zk.Proof
	var pubs []fr.Vector
	for range 4 {
		w := f.pay100(b)
		p, err := zk.Prove(k, w.Assignment)
		if err != nil {
			b.Fatal(err)
		}
		for range 16 {
			proofs, pubs = append(proofs, p), append(pubs, w.Public.Vector())
		}
	}
	for b.Loop() {
		if err := zk.BatchVerify(k.VK, proofs, pubs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64/1e6, "ms/proof")
}
