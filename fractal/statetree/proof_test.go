package statetree

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
)

// proofTree builds a committed tree of keys 0..n-1 and returns it and its root.
func proofTree(t testing.TB, n int) (*badger.DB, *Tree, Hash) {
	db := openDB(t)
	tr := New(testPrefix)
	var changes []Change
	for i := range n {
		changes = append(changes, Change{key(i), val(i)})
	}
	return db, tr, update(t, db, tr, EmptyRoot, changes...)
}

func prove(t testing.TB, db *badger.DB, tr *Tree, root, k Hash) *Proof {
	t.Helper()
	p, err := view(t, db, func(txn kv.Reader) (*Proof, error) { return tr.Prove(txn, root, k) })
	if err != nil {
		t.Fatal(err)
	}
	// Every proof survives its own encoding unchanged.
	b := p.Encode()
	q, err := DecodeProof(b)
	if err != nil {
		t.Fatalf("decode own proof: %v", err)
	}
	if !bytes.Equal(q.Encode(), b) {
		t.Fatal("proof changed across encode/decode")
	}
	return q
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// absentKeys finds absent keys whose proofs end in an empty subtree and in
// another key's leaf.
func absentKeys(t *testing.T, db *badger.DB, tr *Tree, root Hash) (emptyEnd, leafEnd Hash) {
	var haveEmpty, haveLeaf bool
	for i := 1 << 20; !haveEmpty || !haveLeaf; i++ {
		p := prove(t, db, tr, root, key(i))
		if p.Leaf == nil && !haveEmpty {
			emptyEnd, haveEmpty = key(i), true
		}
		if p.Leaf != nil && !haveLeaf {
			leafEnd, haveLeaf = key(i), true
		}
	}
	return emptyEnd, leafEnd
}

func TestEmptyTreeProof(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	p := prove(t, db, tr, EmptyRoot, key(1))
	if got, want := hex.EncodeToString(p.Encode()), "010000000000"; got != want {
		t.Fatalf("empty-tree proof %s, want %s", got, want)
	}
	if err := VerifyProof(EmptyRoot, key(1), nil, p); err != nil {
		t.Fatal(err)
	}
	wantErr(t, VerifyProof(EmptyRoot, key(1), val(1), p), "absent, not holding")
}

func TestInclusionProof(t *testing.T) {
	db, tr, root := proofTree(t, 200)
	for i := range 200 {
		p := prove(t, db, tr, root, key(i))
		if err := VerifyProof(root, key(i), val(i), p); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	p := prove(t, db, tr, root, key(7))
	wantErr(t, VerifyProof(root, key(7), val(8), p), "holding "+hexOf(*val(7))+", not "+hexOf(*val(8)))
	wantErr(t, VerifyProof(root, key(7), nil, p), "present with value")
	wantErr(t, VerifyProof(root, key(8), val(7), p), "off key")
	wrongRoot := root
	wrongRoot[0] ^= 1
	wantErr(t, VerifyProof(wrongRoot, key(7), val(7), p), "leads to root "+hexOf(root))
	wantErr(t, VerifyProof(root, key(7), val(7), nil), "no proof")
	tamperEveryByte(t, root, key(7), val(7), p)
}

func TestNonInclusionProof(t *testing.T) {
	db, tr, root := proofTree(t, 200)
	emptyEnd, leafEnd := absentKeys(t, db, tr, root)
	for _, k := range []Hash{emptyEnd, leafEnd} {
		p := prove(t, db, tr, root, k)
		if err := VerifyProof(root, k, nil, p); err != nil {
			t.Fatal(err)
		}
		wantErr(t, VerifyProof(root, k, val(1), p), "absent, not holding")
		tamperEveryByte(t, root, k, nil, p)
	}
	// The proof that ends in another key's leaf is that key's inclusion
	// proof, and proves only that key's value.
	p := prove(t, db, tr, root, leafEnd)
	if err := VerifyProof(root, p.Leaf.Key, &p.Leaf.Value, p); err != nil {
		t.Fatal(err)
	}
	// A present key cannot be passed off as absent by showing an empty
	// subtree or a neighbour's leaf where it lives.
	incl := prove(t, db, tr, root, key(3))
	fake := &Proof{Siblings: incl.Siblings}
	wantErr(t, VerifyProof(root, key(3), nil, fake), "leads to root")
	other := prove(t, db, tr, root, key(4)).Leaf
	fake = &Proof{Siblings: incl.Siblings, Leaf: other}
	if err := VerifyProof(root, key(3), nil, fake); err == nil {
		t.Fatal("a neighbour's leaf proved a present key absent")
	}
}

// tamperEveryByte flips each byte of the encoded proof in two ways; every
// result must fail to decode or fail to verify.
func tamperEveryByte(t *testing.T, root, k Hash, value *Hash, p *Proof) {
	t.Helper()
	b := p.Encode()
	for i := range b {
		for _, mask := range []byte{0x01, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			q, err := DecodeProof(c)
			if err != nil {
				continue
			}
			if err := VerifyProof(root, k, value, q); err == nil {
				t.Fatalf("proof with byte %d ^ %#x still verifies", i, mask)
			}
		}
	}
	for _, cut := range []int{1, len(b) - 1} {
		if _, err := DecodeProof(b[:cut]); err == nil {
			t.Fatalf("proof cut to %d bytes decodes", cut)
		}
	}
	if _, err := DecodeProof(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("proof with a trailing byte decodes")
	}
}

func TestDecodeProofRefusals(t *testing.T) {
	sib := strings.Repeat("ab", 32)
	cases := []struct{ name, hex, want string }{
		{"empty input", "", "truncated"},
		{"unknown version", "020000000000", "unknown version 2"},
		{"too deep", "0100000101", "count 257 exceeds limit 256"},
		{"padding bit", "010000000141" + sib + "00", "padding bits are not zero"},
		{"written-out empty sibling", "010000000180" + strings.Repeat("00", 32) + "00", "sibling 0 is written out but empty"},
		{"bad leaf flag", "010000000002", "boolean byte 2"},
		{"short leaf", "01000000000100", "truncated"},
		{"trailing", "01000000000000", "1 trailing bytes"},
	}
	for _, c := range cases {
		b, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeProof(b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestProofsAgainstOldRoots proves keys against every past root after many
// later updates: old roots stay provable because nodes are never removed.
func TestProofsAgainstOldRoots(t *testing.T) {
	db := openDB(t)
	tr := New(testPrefix)
	type snapshot struct {
		root Hash
		m    map[Hash]Hash
	}
	var history []snapshot
	m := map[Hash]Hash{}
	root := EmptyRoot
	for step := range 60 {
		k := key(step % 20)
		var c Change
		if _, ok := m[k]; ok && step%3 == 0 {
			c = Change{k, nil}
			delete(m, k)
		} else {
			c = Change{k, val(step)}
			m[k] = *val(step)
		}
		root = update(t, db, tr, root, c)
		copyM := map[Hash]Hash{}
		for k, v := range m {
			copyM[k] = v
		}
		history = append(history, snapshot{root, copyM})
	}
	fresh := New(testPrefix) // no cache: everything comes from badger
	for i, s := range history {
		for j := range 20 {
			p := prove(t, db, fresh, s.root, key(j))
			var want *Hash
			if v, ok := s.m[key(j)]; ok {
				want = &v
			}
			if err := VerifyProof(s.root, key(j), want, p); err != nil {
				t.Fatalf("root %d key %d: %v", i, j, err)
			}
		}
	}
}
