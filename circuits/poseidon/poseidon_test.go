package poseidon

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	p2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/zk"
)

var testTag = NewTag("fractal.test.v1")

type agreeCircuit struct {
	L, R, A, B, C    frontend.Variable
	Compressed, Hash frontend.Variable `gnark:",public"`
}

func (c *agreeCircuit) Define(api frontend.API) error {
	g, err := NewGadget(api)
	if err != nil {
		return err
	}
	api.AssertIsEqual(g.Compress(c.L, c.R), c.Compressed)
	api.AssertIsEqual(g.Hash(testTag, c.A, c.B, c.C), c.Hash)
	return nil
}

func randomElement(t testing.TB) fr.Element {
	var e fr.Element
	if _, err := e.SetRandom(); err != nil {
		t.Fatal(err)
	}
	return e
}

// Native and in-circuit Compress and Hash agree on random inputs, and a
// wrong expected value is refused.
func TestGadgetAgreesWithNative(t *testing.T) {
	ccs, err := zk.Compile(&agreeCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		l, r, a, b, c := randomElement(t), randomElement(t), randomElement(t), randomElement(t), randomElement(t)
		w := &agreeCircuit{L: l, R: r, A: a, B: b, C: c, Compressed: Compress(l, r), Hash: Hash(testTag, a, b, c)}
		if err := zk.Check(ccs, w); err != nil {
			t.Fatalf("native and gadget disagree: %v", err)
		}
		bad := *w
		var one fr.Element
		one.SetOne()
		h := Hash(testTag, a, b, c)
		h.Add(&h, &one)
		bad.Hash = h
		if err := zk.Check(ccs, &bad); err == nil {
			t.Fatal("gadget accepted a wrong hash")
		}
	}
}

// Compress is gnark-crypto's own Compress, byte for byte.
func TestCompressMatchesGnarkCrypto(t *testing.T) {
	l, r := randomElement(t), randomElement(t)
	lb, rb := l.Bytes(), r.Bytes()
	want, err := p2.NewDefaultPermutation().Compress(lb[:], rb[:])
	if err != nil {
		t.Fatal(err)
	}
	got := Compress(l, r)
	if gb := got.Bytes(); string(gb[:]) != string(want) {
		t.Fatalf("Compress differs from gnark-crypto: %x vs %x", gb, want)
	}
}

// Hash is the tagged chain, so the tag and the order of inputs matter.
func TestHashSeparatesTagsAndOrder(t *testing.T) {
	a, b := randomElement(t), randomElement(t)
	if Hash(testTag, a, b) == Hash(NewTag("fractal.other.v1"), a, b) {
		t.Fatal("different tags gave the same hash")
	}
	if Hash(testTag, a, b) == Hash(testTag, b, a) {
		t.Fatal("swapped inputs gave the same hash")
	}
	if Hash(testTag, a, b) != Compress(Compress(testTag.Element(), a), b) {
		t.Fatal("Hash is not the documented chain")
	}
}

type compressCircuit struct {
	L, R frontend.Variable
	Out  frontend.Variable `gnark:",public"`
}

func (c *compressCircuit) Define(api frontend.API) error {
	g, err := NewGadget(api)
	if err != nil {
		return err
	}
	api.AssertIsEqual(g.Compress(c.L, c.R), c.Out)
	return nil
}

// The prover's B multi-exponentiations (one in G1, one in G2) run over the
// wires that appear in some constraint's B side. Compress keeps that set to
// the S-box inputs and squares: 2 wires per S-box instead of 3 with the
// std gadget. A change in gnark's operand ordering would show here.
func TestCompressConstraintShape(t *testing.T) {
	ccs, err := zk.Compile(&compressCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	if n := ccs.GetNbConstraints(); n != 187 { // 62 S-boxes × 3, and the final equality
		t.Fatalf("Compress costs %d constraints, want 187", n)
	}
	inA, inB := map[int]bool{}, map[int]bool{}
	for _, r := range ccs.GetR1Cs() {
		for _, term := range r.L {
			inA[term.WireID()] = true
		}
		for _, term := range r.R {
			inB[term.WireID()] = true
		}
	}
	// 190 wires: the constant 1, Out, L, R and 186 products. gnark's std
	// permutation has 187 of them in B (x⁴ joins x and x²); this gadget 125.
	if len(inA) != 127 || len(inB) != 125 {
		t.Fatalf("wires in A: %d, in B: %d; want 127 and 125", len(inA), len(inB))
	}
}
