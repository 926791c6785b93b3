package tfhe

import (
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/tfhe/dkg"
)

// BenchmarkDKG runs the whole DKG for n=16, k=11 in one process.
func BenchmarkDKG(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, _, _, err := SetupDKG(b.Context(), dkg.Config{N: 16, K: 11, Attempt: uint32(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptCounter(b *testing.B) {
	pk, _ := dealer(b, 16, 11)
	for i := 0; i < b.N; i++ {
		if _, err := Encrypt(pk, 12345); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	pk, _ := dealer(b, 16, 11)
	msg := make([]byte, 1024)
	for i := 0; i < b.N; i++ {
		if _, err := Seal(pk, msg, []byte("block")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartDec is one share with its proof, including the payload check.
func BenchmarkPartDec(b *testing.B) {
	pk, sks := dealer(b, 16, 11)
	p, _ := Seal(pk, make([]byte, 256), nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := PartDec(sks[0], p); err != nil {
			b.Fatal(err)
		}
	}
}

func elevenShares(b *testing.B) (*PublicKey, *Counter, []*Share) {
	pk, sks := dealer(b, 16, 11)
	c, _ := Encrypt(pk, 4242)
	return pk, c, shares(b, sks, c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
}

func BenchmarkVerify11OneByOne(b *testing.B) {
	pk, c, ss := elevenShares(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, s := range ss {
			if err := VerifyShare(pk, c, s); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkVerify11Batched(b *testing.B) {
	pk, c, ss := elevenShares(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := VerifyShares(pk, c, ss); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode11Shares is the cost of reading 11 shares off the wire,
// dominated by the subgroup checks on their 33 points.
func BenchmarkDecode11Shares(b *testing.B) {
	_, _, ss := elevenShares(b)
	var enc [][]byte
	for _, s := range ss {
		enc = append(enc, s.Encode())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, e := range enc {
			if _, err := DecodeShare(e); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCombine11 is FinDec for a counter: verify 11 shares (batched),
// interpolate, and the table lookup.
func BenchmarkCombine11(b *testing.B) {
	pk, c, ss := elevenShares(b)
	babySteps16()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m, err := DecryptCounter(pk, c, ss); err != nil || m != 4242 {
			b.Fatal(m, err)
		}
	}
}

func BenchmarkDiscreteLogWorstCase(b *testing.B) {
	pk, sks := dealer(b, 1, 1)
	c, _ := Encrypt(pk, 1<<32-1)
	ss := shares(b, sks, c, 1)
	babySteps16()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m, err := DecryptCounter(pk, c, ss); err != nil || m != 1<<32-1 {
			b.Fatal(m, err)
		}
	}
}

// BenchmarkPartDecBlock1000 is one keyholder's shares for a sealed block of
// 1,000 payloads (payload checks included).
func BenchmarkPartDecBlock1000(b *testing.B) {
	pk, sks := dealer(b, 16, 11)
	ps := make([]*Payload, 1000)
	for i := range ps {
		ps[i], _ = Seal(pk, []byte(fmt.Sprintf("tx %d", i)), []byte("block"))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := PartDecBatch(b.Context(), sks[0], ps); err != nil {
			b.Fatal(err)
		}
	}
}
