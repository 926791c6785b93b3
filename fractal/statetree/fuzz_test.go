package statetree

import (
	"bytes"
	"testing"
)

func FuzzDecodeProof(f *testing.F) {
	db, tr, root := proofTree(f, 50)
	for i := range 5 {
		f.Add(prove(f, db, tr, root, key(i)).Encode())
		f.Add(prove(f, db, tr, root, key(1000+i)).Encode())
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			return
		}
		// Only the canonical encoding decodes.
		if !bytes.Equal(p.Encode(), b) {
			t.Fatalf("decoded proof re-encodes differently")
		}
	})
}

// FuzzVerifyProof checks soundness against a fixed real tree: whatever the
// proof bytes, a proof that verifies against the root must claim the truth.
func FuzzVerifyProof(f *testing.F) {
	const n = 50
	db, tr, root := proofTree(f, n)
	for i := range 4 {
		f.Add(prove(f, db, tr, root, key(i)).Encode(), uint16(i))
		f.Add(prove(f, db, tr, root, key(n+i)).Encode(), uint16(n+i))
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint16) {
		p, err := DecodeProof(b)
		if err != nil {
			return
		}
		i := int(which) % (2 * n)
		got, err := ProvenValue(root, key(i), p)
		if err != nil {
			return
		}
		switch {
		case i < n && (got == nil || *got != *val(i)):
			t.Fatalf("forged proof: key %d claimed %v", i, got)
		case i >= n && got != nil:
			t.Fatalf("forged proof: absent key %d claimed present", i)
		}
	})
}
