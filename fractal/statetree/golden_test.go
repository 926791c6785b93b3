package statetree

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/fractalvm/fractal/fractal/kv"
)

// TestGoldenVectors checks the worked example of docs/formats/statetree.md,
// whose root and proofs were computed by an independent implementation of
// that document: keys SHA-256("a"|"b"|"c") with values SHA-256("note-"+x).
func TestGoldenVectors(t *testing.T) {
	h := func(s string) Hash { return sha256.Sum256([]byte(s)) }
	db := openDB(t)
	tr := New(testPrefix)
	var changes []Change
	for _, x := range []string{"a", "b", "c"} {
		v := h("note-" + x)
		changes = append(changes, Change{h(x), &v})
	}
	root := update(t, db, tr, EmptyRoot, changes...)
	if got, want := hexOf(root), "6218573477a7619fbf054fac9f23d3d18009fc99563bf76e7d899989bd8f3521"; got != want {
		t.Fatalf("root %s, want %s", got, want)
	}
	vectors := []struct{ key, proof string }{
		{"a", "01000000018012095b33c71db1b3ba45fb7df7bcdc3a09fbc1d5297e8b4d2a1f195b3c5a35df01ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bbca89aaca6c6f0a4d29a871f07034320dcf304b99811f305c3ff9036a4a2fc8cc"},
		{"d", "0100000003a08643f6e61e15033876c6e845320e05437a5b34868c1293b51dc4bcda52e2ffa3f07ed54b84f8113fec9eb2bfbf390d69087df6192b0e1fac4e631ae6d5cfae8f00"},
		{"e", "0100000004908643f6e61e15033876c6e845320e05437a5b34868c1293b51dc4bcda52e2ffa3a4e3187b7112ae5441aa4faf3e8f0cb00321cb28cc8c6293fcec243f3780435b013e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009dbf44f260ffaca18e8688fccbd11f1d35845c6456151f5d9272eaf775058e6376"},
	}
	for _, v := range vectors {
		p, err := view(t, db, func(txn kv.Reader) (*Proof, error) { return tr.Prove(txn, root, h(v.key)) })
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(p.Encode()); got != v.proof {
			t.Fatalf("proof for %q:\n got %s\nwant %s", v.key, got, v.proof)
		}
		var want *Hash
		if v.key == "a" {
			a := h("note-a")
			want = &a
		}
		if err := VerifyProof(root, h(v.key), want, p); err != nil {
			t.Fatalf("proof for %q: %v", v.key, err)
		}
	}
}
