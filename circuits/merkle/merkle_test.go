package merkle

import (
	"bytes"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/circuits/poseidon"
	"github.com/fractalvm/fractal/zk"
)

func leafN(i int) fr.Element {
	var e fr.Element
	e.SetUint64(uint64(1000 + i))
	return poseidon.Hash(poseidon.NewTag("merkle.test"), e)
}

// naiveNode computes a node of the tree holding leaves by plain recursion.
func naiveNode(leaves []fr.Element, level int, index uint64) fr.Element {
	if index<<level >= uint64(len(leaves)) {
		return empty[level]
	}
	if level == 0 {
		return leaves[index]
	}
	return poseidon.Compress(naiveNode(leaves, level-1, 2*index), naiveNode(leaves, level-1, 2*index+1))
}

// The frontier tree's root equals the naive root after every append, and
// every tracked witness leads to the current root after every append.
func TestTreeRootsAndWitnesses(t *testing.T) {
	tr := New()
	if tr.Root() != naiveNode(nil, Depth, 0) {
		t.Fatal("empty root differs")
	}
	var leaves []fr.Element
	track := map[int]bool{0: true, 3: true, 4: true, 7: true, 12: true}
	for i := 0; i < 21; i++ {
		leaves = append(leaves, leafN(i))
		pos, err := tr.Append(leaves[i], track[i])
		if err != nil || pos != uint64(i) {
			t.Fatalf("append %d: pos %d err %v", i, pos, err)
		}
		if tr.Root() != naiveNode(leaves, Depth, 0) {
			t.Fatalf("root differs after %d leaves", i+1)
		}
		for j := range track {
			if j > i {
				continue
			}
			p, err := tr.Witness(uint64(j))
			if err != nil {
				t.Fatal(err)
			}
			if p.Root(leaves[j]) != tr.Root() {
				t.Fatalf("witness of leaf %d stale after %d leaves", j, i+1)
			}
			if p.Root(leaves[(j+1)%len(leaves)]) == tr.Root() && len(leaves) > 1 {
				t.Fatalf("witness of leaf %d accepts another leaf", j)
			}
		}
	}
	if _, err := tr.Witness(5); err == nil || !strings.Contains(err.Error(), "not tracked") {
		t.Fatalf("untracked witness: %v", err)
	}
	tr.Forget(3)
	if _, err := tr.Witness(3); err == nil {
		t.Fatal("forgotten witness still returned")
	}
}

func TestTreeEncodingRoundTrip(t *testing.T) {
	a := New()
	for i := 0; i < 11; i++ {
		if _, err := a.Append(leafN(i), i%4 == 1); err != nil {
			t.Fatal(err)
		}
	}
	b1, _ := a.MarshalBinary()
	var b Tree
	if err := b.UnmarshalBinary(b1); err != nil {
		t.Fatal(err)
	}
	if b.Root() != a.Root() || b.Size() != a.Size() {
		t.Fatal("decoded tree differs")
	}
	// Both continue identically, witnesses included.
	for i := 11; i < 17; i++ {
		a.Append(leafN(i), false)
		b.Append(leafN(i), false)
	}
	ab, _ := a.MarshalBinary()
	bb, _ := b.MarshalBinary()
	if !bytes.Equal(ab, bb) || a.Root() != b.Root() {
		t.Fatal("trees diverged after decoding")
	}
	w, err := b.Witness(9)
	if err != nil || w.Root(leafN(9)) != b.Root() {
		t.Fatalf("decoded witness stale: %v", err)
	}
}

func TestTreeDecodeRefusals(t *testing.T) {
	a := New()
	a.Append(leafN(0), true)
	a.Append(leafN(1), true)
	good, _ := a.MarshalBinary()
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	nonCanonical := mut(func(b []byte) []byte { copy(b[9:41], bytes.Repeat([]byte{0xff}, 32)); return b })
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"version", mut(func(b []byte) []byte { b[0] = 2; return b }), "unknown version 2"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"trailing", append(append([]byte(nil), good...), 0), "trailing"},
		{"noncanonical", nonCanonical, "not canonical"},
		{"oversize", mut(func(b []byte) []byte { b[1] = 0xff; return b }), "over capacity"},
		{"witness order", mut(func(b []byte) []byte {
			off := 1 + 8 + 32 + Depth*32 + 4
			b[off+7] = 5 // first witness at position 5 >= size 2
			return b
		}), "out of order"},
	}
	for _, c := range cases {
		var tr Tree
		before, _ := New().MarshalBinary()
		err := tr.UnmarshalBinary(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
		if after, _ := tr.MarshalBinary(); tr.size != 0 || len(after) != len(before) {
			t.Errorf("%s: tree changed by a refused decode", c.name)
		}
	}
}

func FuzzTreeDecode(f *testing.F) {
	a := New()
	a.Append(leafN(0), true)
	a.Append(leafN(1), false)
	a.Append(leafN(2), true)
	good, _ := a.MarshalBinary()
	f.Add(good)
	f.Add(good[:50])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr Tree
		if err := tr.UnmarshalBinary(b); err != nil {
			return
		}
		again, _ := tr.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("decode/encode not canonical")
		}
	})
}

type pathCircuit struct {
	Leaf     frontend.Variable
	Siblings [Depth]frontend.Variable
	Bits     [Depth]frontend.Variable
	Root     frontend.Variable `gnark:",public"`
}

func (c *pathCircuit) Define(api frontend.API) error {
	h, err := poseidon.NewGadget(api)
	if err != nil {
		return err
	}
	api.AssertIsEqual(RootGadget(api, h, c.Leaf, c.Siblings[:], c.Bits[:]), c.Root)
	return nil
}

// The path gadget computes Path.Root, and refuses a wrong root or a
// non-boolean bit.
func TestRootGadgetAgreesWithNative(t *testing.T) {
	ccs, err := zk.Compile(&pathCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []uint64{0, 1, 0xdeadbeef, Capacity - 1} {
		var p Path
		p.Position = pos
		for i := range p.Siblings {
			p.Siblings[i].SetRandom()
		}
		leaf := leafN(int(pos % 1000))
		w := &pathCircuit{Leaf: leaf, Root: p.Root(leaf)}
		for i := 0; i < Depth; i++ {
			w.Siblings[i] = p.Siblings[i]
			w.Bits[i] = pos >> i & 1
		}
		if err := zk.Check(ccs, w); err != nil {
			t.Fatalf("position %d: %v", pos, err)
		}
		bad := *w
		bad.Root = leaf
		if zk.Check(ccs, &bad) == nil {
			t.Fatal("wrong root accepted")
		}
		bad = *w
		bad.Bits[0] = 2
		if zk.Check(ccs, &bad) == nil {
			t.Fatal("non-boolean path bit accepted")
		}
	}
}
