package circuits

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/zk"
)

var (
	keysOnce sync.Once
	keys     *zk.Keys
	keysErr  error
)

// transferKeys runs the one development setup the package's tests share.
func transferKeys(t testing.TB) *zk.Keys {
	keysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "circuits-keys")
		if err != nil {
			keysErr = err
			return
		}
		defer os.RemoveAll(dir)
		cc, err := zk.CompileNamed(TransferName, &Transfer{})
		if err != nil {
			keysErr = err
			return
		}
		keys, keysErr = zk.Cache{Dir: dir}.DevSetup(cc)
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys
}

// A real Groth16 proof of a transfer verifies, and is refused after any
// change to what it is bound to.
func TestTransferProof(t *testing.T) {
	k := transferKeys(t)
	f := newFixture(t)
	w := f.pay100(t)
	proof, err := zk.Prove(k, w.Assignment)
	if err != nil {
		t.Fatal(err)
	}
	pub := w.Public.Vector()
	if err := zk.Verify(k.VK, proof, pub); err != nil {
		t.Fatalf("valid transfer refused: %v", err)
	}

	moved := w.Public
	moved.Binding = BindingOf([32]byte{9})
	if err := zk.Verify(k.VK, proof, moved.Vector()); !errors.Is(err, zk.ErrInvalidProof) {
		t.Fatalf("proof moved to another transaction: %v", err)
	}
	stale := w.Public
	stale.Root = mustElement(t)
	if err := zk.Verify(k.VK, proof, stale.Vector()); !errors.Is(err, zk.ErrInvalidProof) {
		t.Fatalf("other root: %v", err)
	}
	more := w.Public
	more.Net = -1 // claims one more unit leaves the pool
	if err := zk.Verify(k.VK, proof, more.Vector()); !errors.Is(err, zk.ErrInvalidProof) {
		t.Fatalf("changed net amount: %v", err)
	}
	swapped := w.Public
	swapped.Nullifiers[0], swapped.Nullifiers[1] = swapped.Nullifiers[1], swapped.Nullifiers[0]
	if err := zk.Verify(k.VK, proof, swapped.Vector()); !errors.Is(err, zk.ErrInvalidProof) {
		t.Fatalf("reordered public inputs: %v", err)
	}
	b, _ := proof.MarshalBinary()
	b[40] ^= 1
	var flipped zk.Proof
	if err := flipped.UnmarshalBinary(b); err == nil {
		if zk.Verify(k.VK, flipped, pub) == nil {
			t.Fatal("flipped proof byte accepted")
		}
	}
	// A second transfer in a batch with the first; then one bad in the batch.
	w2 := f.pay100(t)
	proof2, err := zk.Prove(k, w2.Assignment)
	if err != nil {
		t.Fatal(err)
	}
	if err := zk.BatchVerify(k.VK, []zk.Proof{proof, proof2}, []fr.Vector{pub, w2.Public.Vector()}); err != nil {
		t.Fatalf("batch: %v", err)
	}
	var be *zk.BatchError
	err = zk.BatchVerify(k.VK, []zk.Proof{proof, proof2}, []fr.Vector{pub, moved.Vector()})
	if !errors.As(err, &be) || len(be.Bad) != 1 || be.Bad[0] != 1 {
		t.Fatalf("bad proof in batch: %v", err)
	}
}
