package note

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/circuits/poseidon"
	"github.com/fractalvm/fractal/zk"
)

type noteCircuit struct {
	Ask, Nk, Value, Asset, Rho, Rcm frontend.Variable
	Owner, Commitment, Nullifier    frontend.Variable `gnark:",public"`
}

func (c *noteCircuit) Define(api frontend.API) error {
	h, err := poseidon.NewGadget(api)
	if err != nil {
		return err
	}
	g := NewGadget(api, h)
	owner := g.Owner(c.Ask, c.Nk)
	api.AssertIsEqual(owner, c.Owner)
	api.AssertIsEqual(g.Commitment(owner, c.Value, c.Asset, c.Rho, c.Rcm), c.Commitment)
	api.AssertIsEqual(g.Nullifier(c.Nk, c.Rho), c.Nullifier)
	return nil
}

func randomNote(t testing.TB) (SpendingKey, Note) {
	k, err := NewSpendingKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rho, _ := RandomElement(rand.Reader)
	rcm, _ := RandomElement(rand.Reader)
	var v [8]byte
	rand.Read(v[:])
	n := Note{Owner: k.Owner(), Value: uint64(v[0])<<56 | uint64(v[7]), Asset: NewAsset(v[:]), Rho: rho, Rcm: rcm}
	return k, n
}

// Owner, commitment and nullifier agree natively and in-circuit on random
// notes; a commitment to another value is refused.
func TestGadgetAgreesWithNative(t *testing.T) {
	ccs, err := zk.Compile(&noteCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		k, n := randomNote(t)
		nk := k.NullifierKey()
		w := &noteCircuit{Ask: k.AuthorizingKey(), Nk: nk, Value: n.Value, Asset: n.Asset.Element(), Rho: n.Rho, Rcm: n.Rcm,
			Owner: n.Owner, Commitment: n.Commitment(), Nullifier: Nullifier(nk, n.Rho)}
		if err := zk.Check(ccs, w); err != nil {
			t.Fatalf("native and gadget disagree: %v", err)
		}
		other := n
		other.Value++
		bad := *w
		bad.Commitment = other.Commitment()
		if zk.Check(ccs, &bad) == nil {
			t.Fatal("commitment to another value accepted")
		}
	}
}

// The commitment binds every field, and value and asset cannot trade bits.
func TestCommitmentBindsEveryField(t *testing.T) {
	_, n := randomNote(t)
	var one fr.Element
	one.SetOne()
	muts := map[string]func(*Note){
		"owner": func(m *Note) { m.Owner.Add(&m.Owner, &one) },
		"value": func(m *Note) { m.Value ^= 1 },
		"asset": func(m *Note) { m.Asset[AssetSize-1] ^= 1 },
		"rho":   func(m *Note) { m.Rho.Add(&m.Rho, &one) },
		"rcm":   func(m *Note) { m.Rcm.Add(&m.Rcm, &one) },
	}
	for name, f := range muts {
		m := n
		f(&m)
		if m.Commitment() == n.Commitment() {
			t.Errorf("changing %s kept the commitment", name)
		}
	}
	// value 2^64-1 in asset a differs from value 0 in asset a+1.
	a := Note{Value: ^uint64(0)}
	b := Note{Value: 0}
	b.Asset[AssetSize-1] = 1
	if packValueAsset(a.Value, a.Asset) == packValueAsset(b.Value, b.Asset) {
		t.Fatal("packing overlaps")
	}
}

func TestKeysDiffer(t *testing.T) {
	k, _ := randomNote(t)
	k2, err := ParseSpendingKey(k.Bytes())
	if err != nil || k2.Owner() != k.Owner() {
		t.Fatalf("spending key round trip: %v", err)
	}
	if k.AuthorizingKey() == k.NullifierKey() {
		t.Fatal("ask equals nk")
	}
	if _, err := ParseSpendingKey(bytes.Repeat([]byte{0xff}, 32)); err == nil || !strings.Contains(err.Error(), "not canonical") {
		t.Fatalf("non-canonical key: %v", err)
	}
}

func TestNoteEncoding(t *testing.T) {
	_, n := randomNote(t)
	b, _ := n.MarshalBinary()
	if len(b) != Size {
		t.Fatalf("size %d, want %d", len(b), Size)
	}
	var m Note
	if err := m.UnmarshalBinary(b); err != nil || m != n {
		t.Fatalf("round trip: %v", err)
	}
	cases := map[string][]byte{
		"truncated":       b[:Size-1],
		"trailing":        append(append([]byte(nil), b...), 0),
		"unknown version": append([]byte{9}, b[1:]...),
		"not canonical":   append(append([]byte{1}, bytes.Repeat([]byte{0xff}, 32)...), b[33:]...),
	}
	for want, c := range cases {
		var z Note
		err := z.UnmarshalBinary(c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
		if z != (Note{}) {
			t.Errorf("%s: note changed by refused decode", want)
		}
	}
}

func FuzzNoteDecode(f *testing.F) {
	_, n := randomNote(f)
	b, _ := n.MarshalBinary()
	f.Add(b)
	f.Add(b[:10])
	f.Fuzz(func(t *testing.T, in []byte) {
		var m Note
		if m.UnmarshalBinary(in) != nil {
			return
		}
		out, _ := m.MarshalBinary()
		if !bytes.Equal(out, in) {
			t.Fatal("decode/encode not canonical")
		}
	})
}
