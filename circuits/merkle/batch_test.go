package merkle

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// AppendBatch leaves the tree byte for byte as the same leaves appended one
// by one: batches of every size from 0 to 70 at every offset into the tree,
// tracked leaves before and inside the batch, a forgotten one included.
func TestAppendBatchIsAppend(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	one, batch := New(), New()
	n := 0
	for round := 0; round < 60; round++ {
		size := rng.IntN(71)
		var leaves []fr.Element
		var track []bool
		for j := 0; j < size; j++ {
			leaves = append(leaves, leafN(n+j))
			track = append(track, rng.IntN(5) == 0)
		}
		for j, l := range leaves {
			if _, err := one.Append(l, track[j]); err != nil {
				t.Fatal(err)
			}
		}
		first, err := batch.AppendBatch(leaves, func(j int) bool { return track[j] })
		if err != nil || first != uint64(n) {
			t.Fatalf("round %d: first %d, err %v; want %d", round, first, err, n)
		}
		n += size
		if round == 30 && len(one.tracked) > 0 {
			pos := one.tracked[0].Position
			one.Forget(pos)
			batch.Forget(pos)
		}
		a, _ := one.MarshalBinary()
		b, _ := batch.MarshalBinary()
		if string(a) != string(b) || one.Root() != batch.Root() {
			t.Fatalf("round %d (%d leaves, batch of %d): the trees differ", round, n, size)
		}
	}
	if n < 1000 {
		t.Fatalf("only %d leaves appended", n)
	}
}

// A batch that would pass Capacity is refused whole.
func TestAppendBatchFull(t *testing.T) {
	tr := New()
	raw, _ := tr.MarshalBinary()
	binary.BigEndian.PutUint64(raw[1:9], Capacity-1)
	if err := tr.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.AppendBatch([]fr.Element{leafN(1), leafN(2)}, nil); !errors.Is(err, ErrFull) {
		t.Fatalf("batch past capacity: %v", err)
	}
	if tr.Size() != Capacity-1 {
		t.Fatalf("size %d after a refused batch", tr.Size())
	}
	if _, err := tr.AppendBatch([]fr.Element{leafN(1)}, nil); err != nil || tr.Size() != Capacity {
		t.Fatalf("last leaf: size %d, %v", tr.Size(), err)
	}
}

// BenchmarkAppend32 appends a block's worth of commitments (16 shielded
// transactions, 32 outputs) one by one and as a batch.
func BenchmarkAppend32(b *testing.B) {
	leaves := make([]fr.Element, 32)
	for i := range leaves {
		leaves[i] = leafN(i)
	}
	b.Run("one-by-one", func(b *testing.B) {
		tr := New()
		for range b.N {
			for _, l := range leaves {
				tr.Append(l, false)
			}
		}
	})
	b.Run("batch", func(b *testing.B) {
		tr := New()
		for range b.N {
			tr.AppendBatch(leaves, nil)
		}
	})
}

// A clone is independent of its tree: appending to one leaves the other
// exactly as it was.
func TestClone(t *testing.T) {
	tr := New()
	tr.AppendBatch([]fr.Element{leafN(0), leafN(1), leafN(2)}, func(j int) bool { return j == 1 })
	before, _ := tr.MarshalBinary()
	c := tr.Clone()
	c.AppendBatch([]fr.Element{leafN(3), leafN(4)}, func(int) bool { return true })
	after, _ := tr.MarshalBinary()
	if string(before) != string(after) {
		t.Fatal("appending to the clone changed the tree")
	}
	if c.Size() != 5 || len(c.tracked) != 3 {
		t.Fatalf("clone: size %d, %d tracked", c.Size(), len(c.tracked))
	}
}
