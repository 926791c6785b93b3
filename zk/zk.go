// Package zk wraps gnark's Groth16 on BN254 for Fractal: compile a circuit,
// make and cache its keys (setup.go: a single-party development setup, or
// the multi-party ceremony in mpc.go), prove, verify one proof or a batch,
// and encode proofs. It knows no particular circuit.
package zk

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	groth16bn "github.com/consensys/gnark/backend/groth16/bn254"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"
)

func init() {
	// gnark logs every compile and proof to stderr by default; Fractal
	// reports through its own output.
	logger.Disable()
}

// Compile compiles a circuit to a BN254 R1CS. Circuits that use Groth16
// commitments (std/rangecheck, for one) are refused: proofs here are plain
// (A, B, C) triples, which batch verification relies on.
func Compile(c frontend.Circuit) (*cs.R1CS, error) {
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		return nil, fmt.Errorf("zk: compile: %w", err)
	}
	r, ok := ccs.(*cs.R1CS)
	if !ok {
		return nil, fmt.Errorf("zk: compile: unexpected constraint system %T", ccs)
	}
	if n := len(r.CommitmentInfo.CommitmentIndexes()); n != 0 {
		return nil, fmt.Errorf("zk: compile: circuit uses %d Groth16 commitments; not supported", n)
	}
	return r, nil
}

// Check solves ccs for assignment without proving, and returns the solver's
// error when the assignment does not satisfy the circuit.
func Check(ccs *cs.R1CS, assignment frontend.Circuit) error {
	w, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
	if err != nil {
		return fmt.Errorf("zk: witness: %w", err)
	}
	if err := ccs.IsSolved(w); err != nil {
		return fmt.Errorf("zk: not satisfied: %w", err)
	}
	return nil
}

// Proof is a Groth16 proof (A, B, C). A Proof is only made by Prove or
// UnmarshalBinary, so its points are always on the curve and in the
// prime-order subgroups.
type Proof struct {
	a, c curve.G1Affine
	b    curve.G2Affine
}

// ProofSize is the length of a proof's encoding.
const ProofSize = 1 + curve.SizeOfG1AffineCompressed + curve.SizeOfG2AffineCompressed + curve.SizeOfG1AffineCompressed

const proofVersion = 1

// MarshalBinary encodes the proof: version 1, then A, B, C in gnark-crypto's
// compressed point encoding (32, 64 and 32 bytes).
func (p Proof) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, ProofSize)
	out = append(out, proofVersion)
	a, b, c := p.a.Bytes(), p.b.Bytes(), p.c.Bytes()
	out = append(out, a[:]...)
	out = append(out, b[:]...)
	return append(out, c[:]...), nil
}

// ErrMalformedProof reports proof bytes that do not decode.
var ErrMalformedProof = errors.New("zk: malformed proof")

// UnmarshalBinary decodes a proof, refusing a wrong length or version and any
// point that is not canonical, not on the curve or not in the subgroup.
func (p *Proof) UnmarshalBinary(buf []byte) error {
	if len(buf) != ProofSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMalformedProof, len(buf), ProofSize)
	}
	if buf[0] != proofVersion {
		return fmt.Errorf("%w: unknown version %d", ErrMalformedProof, buf[0])
	}
	var out Proof
	g1, g2 := curve.SizeOfG1AffineCompressed, curve.SizeOfG2AffineCompressed
	parts := []struct {
		what string
		b    []byte
		set  func([]byte) (int, error)
		enc  func() []byte
	}{
		{"A", buf[1 : 1+g1], out.a.SetBytes, func() []byte { b := out.a.Bytes(); return b[:] }},
		{"B", buf[1+g1 : 1+g1+g2], out.b.SetBytes, func() []byte { b := out.b.Bytes(); return b[:] }},
		{"C", buf[1+g1+g2:], out.c.SetBytes, func() []byte { b := out.c.Bytes(); return b[:] }},
	}
	for _, part := range parts {
		if _, err := part.set(part.b); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformedProof, part.what, err)
		}
		if !bytes.Equal(part.enc(), part.b) { // only the compressed form is accepted
			return fmt.Errorf("%w: %s: not canonical", ErrMalformedProof, part.what)
		}
	}
	*p = out
	return nil
}

// Prove makes a proof that assignment satisfies the circuit of k.
func Prove(k *Keys, assignment frontend.Circuit) (Proof, error) {
	w, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
	if err != nil {
		return Proof{}, fmt.Errorf("zk: prove: witness: %w", err)
	}
	p, err := groth16bn.Prove(k.CCS, k.PK, w)
	if err != nil {
		return Proof{}, fmt.Errorf("zk: prove: %w", err)
	}
	return Proof{a: p.Ar, b: p.Bs, c: p.Krs}, nil
}

// VerifyingKey is a Groth16 verifying key prepared for fast checks:
// e(α, β) and the Miller-loop lines of -β, -γ, -δ are computed once.
type VerifyingKey struct {
	vk                *groth16bn.VerifyingKey
	alphaBeta         curve.GT
	betaNeg, gammaNeg [2][len(curve.LoopCounter)]curve.LineEvaluationAff
	deltaNeg          [2][len(curve.LoopCounter)]curve.LineEvaluationAff
}

// NewVerifyingKey prepares vk, which must have no commitment keys.
func NewVerifyingKey(vk *groth16bn.VerifyingKey) (*VerifyingKey, error) {
	if len(vk.CommitmentKeys) != 0 || len(vk.PublicAndCommitmentCommitted) != 0 {
		return nil, errors.New("zk: verifying key uses commitments; not supported")
	}
	if len(vk.G1.K) == 0 {
		return nil, errors.New("zk: verifying key has no public-input points")
	}
	ab, err := curve.Pair([]curve.G1Affine{vk.G1.Alpha}, []curve.G2Affine{vk.G2.Beta})
	if err != nil {
		return nil, fmt.Errorf("zk: verifying key: %w", err)
	}
	out := &VerifyingKey{vk: vk, alphaBeta: ab}
	var n curve.G2Affine
	out.betaNeg = curve.PrecomputeLines(*n.Neg(&vk.G2.Beta))
	out.gammaNeg = curve.PrecomputeLines(*n.Neg(&vk.G2.Gamma))
	out.deltaNeg = curve.PrecomputeLines(*n.Neg(&vk.G2.Delta))
	return out, nil
}

// NumPublic returns the number of public inputs the key expects.
func (v *VerifyingKey) NumPublic() int { return len(v.vk.G1.K) - 1 }

// Errors of verification.
var (
	ErrPublicInputs = errors.New("zk: wrong number of public inputs")
	ErrInvalidProof = errors.New("zk: proof does not verify")
)

// publicPoint returns K0 + Σ coef[i]·K[i+1].
func (v *VerifyingKey) publicPoint(coef []fr.Element, k0 *fr.Element) (curve.G1Affine, error) {
	var sum curve.G1Jac
	if _, err := sum.MultiExp(v.vk.G1.K[1:], coef, ecc.MultiExpConfig{NbTasks: 1}); err != nil {
		return curve.G1Affine{}, err
	}
	var base curve.G1Affine
	if k0 == nil {
		base = v.vk.G1.K[0]
	} else {
		base.ScalarMultiplication(&v.vk.G1.K[0], k0.BigInt(new(big.Int)))
	}
	var bj curve.G1Jac
	bj.FromAffine(&base)
	sum.AddAssign(&bj)
	var out curve.G1Affine
	out.FromJacobian(&sum)
	return out, nil
}

// Verify checks e(A, B) · e(C, -δ) · e(L, -γ) = e(α, β), where
// L = K0 + Σ public[i]·K[i+1].
func Verify(v *VerifyingKey, p Proof, public fr.Vector) error {
	if len(public) != v.NumPublic() {
		return fmt.Errorf("%w: got %d, want %d", ErrPublicInputs, len(public), v.NumPublic())
	}
	l, err := v.publicPoint(public, nil)
	if err != nil {
		return fmt.Errorf("zk: verify: %w", err)
	}
	ab, err := curve.MillerLoop([]curve.G1Affine{p.a}, []curve.G2Affine{p.b})
	if err != nil {
		return fmt.Errorf("zk: verify: %w", err)
	}
	fixed, err := curve.MillerLoopFixedQ([]curve.G1Affine{p.c, l},
		[][2][len(curve.LoopCounter)]curve.LineEvaluationAff{v.deltaNeg, v.gammaNeg})
	if err != nil {
		return fmt.Errorf("zk: verify: %w", err)
	}
	got := curve.FinalExponentiation(&ab, &fixed)
	if !got.Equal(&v.alphaBeta) {
		return ErrInvalidProof
	}
	return nil
}
