package fractal

import (
	"context"
	"fmt"
	"testing"
)

// batchOf fixes a batch of n encrypted mint transactions.
func batchOf(b *testing.B, n int) *encFixture {
	f := newEncFixture(b, 5, 3, false)
	for i := range n {
		f.encrypt(b, f.mint(f.allow, f.allow, f.alice, fmt.Sprint("k", i), "v"))
	}
	if s := f.seal(b); s.Encrypted == nil || len(s.Encrypted.Batch.PayloadIDs) != n {
		b.Fatalf("batch not fixed: %+v", s.Encrypted)
	}
	return f
}

// BenchmarkMakeShares1000 is one keyholder's work for a sealed block of
// 1,000 encrypted transactions: load the waiting batch, check every
// payload's proof and make every share with its DLEQ proof.
func BenchmarkMakeShares1000(b *testing.B) {
	f := batchOf(b, 1000)
	for b.Loop() {
		if _, err := f.in.MakeShares(context.Background(), f.sks[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckShares1000 is the instance's check of one keyholder's
// shares for 1,000 payloads (every DLEQ proof), as SubmitShares does before
// storing them.
func BenchmarkCheckShares1000(b *testing.B) {
	f := batchOf(b, 1000)
	sb, err := f.in.MakeShares(context.Background(), f.sks[0])
	if err != nil {
		b.Fatal(err)
	}
	view := f.in.db.NewTransaction(false)
	defer view.Discard()
	p, err := loadBatch(view, 1)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := p.check(sb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenBatch1000 decrypts a batch of 1,000 mints with 3 shares and
// commits them as one block (setup excluded).
func BenchmarkOpenBatch1000(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		f := batchOf(b, 1000)
		for _, i := range []int{1, 2, 3} {
			f.share(b, i)
		}
		b.StartTimer()
		if s := f.seal(b); s.Block == nil || len(s.Block.TxIDs) != 1000 {
			b.Fatal("batch did not open")
		}
	}
}
