package zk

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"runtime"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/internal/workers"
)

// BatchError reports a batch that failed, with the indexes of the proofs
// that fail on their own.
type BatchError struct{ Bad []int }

func (e *BatchError) Error() string {
	return fmt.Sprintf("zk: batch does not verify: bad proofs at %v", e.Bad)
}

// BatchVerify checks many proofs under one key with one multi-pairing. With
// fresh random 128-bit scalars r_k from crypto/rand it checks
//
//	Π e(r_k·A_k, B_k) · e(Σ r_k·C_k, -δ) · e(Σ r_k·L_k, -γ) · e((Σ r_k)·α, -β) = 1
//
// which holds for all k if every proof is valid, and otherwise with
// probability at most 2^-128. On failure each proof is checked on its own and
// the error is a *BatchError naming the bad ones.
func BatchVerify(v *VerifyingKey, proofs []Proof, public []fr.Vector) error {
	if len(proofs) != len(public) {
		return fmt.Errorf("zk: batch: %d proofs but %d public input vectors", len(proofs), len(public))
	}
	if len(proofs) == 0 {
		return nil
	}
	for k := range public {
		if len(public[k]) != v.NumPublic() {
			return fmt.Errorf("%w: proof %d has %d, want %d", ErrPublicInputs, k, len(public[k]), v.NumPublic())
		}
	}
	ok, err := batchCheck(v, proofs, public)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	bad := &BatchError{}
	for k := range proofs {
		if Verify(v, proofs[k], public[k]) != nil {
			bad.Bad = append(bad.Bad, k)
		}
	}
	return bad
}

func batchCheck(v *VerifyingKey, proofs []Proof, public []fr.Vector) (bool, error) {
	n := len(proofs)
	r := make([]fr.Element, n)
	var buf [16]byte
	for k := range r {
		if _, err := rand.Read(buf[:]); err != nil {
			return false, fmt.Errorf("zk: batch: randomness: %w", err)
		}
		r[k].SetBytes(buf[:])
	}

	// Σ r_k·L_k = (Σ r_k)·K0 + Σ_i (Σ_k r_k·x_k,i)·K_i+1: one small MSM.
	var rSum fr.Element
	coef := make([]fr.Element, v.NumPublic())
	for k := range r {
		rSum.Add(&rSum, &r[k])
		for i := range coef {
			var t fr.Element
			t.Mul(&r[k], &public[k][i])
			coef[i].Add(&coef[i], &t)
		}
	}
	l, err := v.publicPoint(coef, &rSum)
	if err != nil {
		return false, fmt.Errorf("zk: batch: %w", err)
	}
	cs := make([]curve.G1Affine, n)
	for k := range proofs {
		cs[k] = proofs[k].c
	}
	var cSum curve.G1Affine
	if _, err := cSum.MultiExp(cs, r, ecc.MultiExpConfig{NbTasks: 1}); err != nil {
		return false, fmt.Errorf("zk: batch: %w", err)
	}
	var alpha curve.G1Affine
	alpha.ScalarMultiplication(&v.vk.G1.Alpha, rSum.BigInt(new(big.Int)))

	// The per-proof Miller loops are split into one range per core and run
	// beside the fixed-argument loops (the last part); the parts' product
	// goes through one final exponentiation.
	nw := max(1, min(n, runtime.GOMAXPROCS(0)))
	parts := make([]curve.GT, nw+1)
	err = workers.Run(context.Background(), nw+1, nw+1, func(_, part int) (err error) {
		if part == nw {
			parts[part], err = curve.MillerLoopFixedQ([]curve.G1Affine{cSum, l, alpha},
				[][2][len(curve.LoopCounter)]curve.LineEvaluationAff{v.deltaNeg, v.gammaNeg, v.betaNeg})
			return err
		}
		lo, hi := part*n/nw, (part+1)*n/nw
		ps := make([]curve.G1Affine, hi-lo)
		qs := make([]curve.G2Affine, hi-lo)
		for k := lo; k < hi; k++ {
			ps[k-lo].ScalarMultiplication(&proofs[k].a, r[k].BigInt(new(big.Int)))
			qs[k-lo] = proofs[k].b
		}
		parts[part], err = curve.MillerLoop(ps, qs)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("zk: batch: %w", err)
	}
	prod := parts[0]
	for i := 1; i < len(parts); i++ {
		prod.Mul(&prod, &parts[i])
	}
	res := curve.FinalExponentiation(&prod)
	return res.IsOne(), nil
}
