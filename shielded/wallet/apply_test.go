package wallet

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// These tests feed apply blocks a dishonest executor could sign: the
// transactions are never proved or executed, only scanned.

const applyToken = "rhiLmrhEs/JhVvCrSMN4bePYPBqA8H/GOM+JUmPM7iQ=:TOK"

var applyApp = notes.Hash{0xab}

// applyWorld is a wallet, the blocks it has seen and a tree that mirrors
// the chain's commitment tree.
type applyWorld struct {
	t     *testing.T
	w     *Wallet
	chain *merkle.Tree
	nfs   map[fr.Element]int
	h     uint64
}

func newApplyWorld(t *testing.T) *applyWorld {
	t.Helper()
	w, err := Create(filepath.Join(t.TempDir(), "wallet"))
	if err != nil {
		t.Fatal(err)
	}
	w.State.Next = 1
	return &applyWorld{t: t, w: w, chain: merkle.New(), nfs: w.nullifiers(), h: 1}
}

// note returns a fresh note of value for the wallet.
func (a *applyWorld) note(value uint64) note.Note {
	a.t.Helper()
	n := note.Note{Owner: a.w.Keys.Spend.Owner(), Value: value, Asset: shielded.AssetOf(applyApp, applyToken)}
	var err error
	if n.Rho, err = note.RandomElement(rand.Reader); err != nil {
		a.t.Fatal(err)
	}
	if n.Rcm, err = note.RandomElement(rand.Reader); err != nil {
		a.t.Fatal(err)
	}
	return n
}

// tx is a shielded transaction with nullifiers nf whose two outputs are
// out[0] and out[1], encrypted in ct.
func (a *applyWorld) tx(nf [2]fr.Element, out [2]note.Note, ct shielded.Ciphertexts) *phases.Tx {
	a.t.Helper()
	bd := &shielded.Bundle{Header: shielded.Header{App: applyApp, Pool: shielded.PoolOwner, Token: applyToken}}
	bd.Public.Asset, bd.Public.Nullifiers, bd.Ciphertexts = shielded.AssetOf(applyApp, applyToken), nf, ct
	for j := range out {
		bd.Public.Commitments[j] = out[j].Commitment()
	}
	x, err := bd.Extradata()
	if err != nil {
		a.t.Fatal(err)
	}
	return &phases.Tx{Extradata: x}
}

// encrypt encrypts the notes ns to the wallet in a bundle of the given
// version.
func (a *applyWorld) encrypt(version byte, ns ...note.Note) shielded.Ciphertexts {
	a.t.Helper()
	to := make([]Address, len(ns))
	for i := range to {
		to[i] = a.w.Keys.Address()
	}
	ct, err := Encrypt(rand.Reader, version, to, ns)
	if err != nil {
		a.t.Fatal(err)
	}
	return ct
}

// block is the next block holding txs, with the commitment root of the
// chain tree after appending leaves (not kept in the chain tree unless the
// block applies: see apply).
func (a *applyWorld) block(leaves ...fr.Element) *chain.Block {
	a.t.Helper()
	raw, err := a.chain.MarshalBinary()
	if err != nil {
		a.t.Fatal(err)
	}
	c := merkle.New()
	if err := c.UnmarshalBinary(raw); err != nil {
		a.t.Fatal(err)
	}
	for _, l := range leaves {
		if _, err := c.Append(l, false); err != nil {
			a.t.Fatal(err)
		}
	}
	root := c.Root()
	return &chain.Block{Height: a.h, CommitmentRoot: root.Bytes()}
}

// apply applies b and, when it succeeds, moves the chain tree on by leaves.
func (a *applyWorld) apply(b *chain.Block, txs []*phases.Tx, leaves ...fr.Element) (*SyncReport, error) {
	rep := &SyncReport{}
	err := a.w.apply(b, txs, a.nfs, rep)
	if err == nil {
		for _, l := range leaves {
			if _, err := a.chain.Append(l, false); err != nil {
				a.t.Fatal(err)
			}
		}
		a.h++
	}
	return rep, err
}

func (a *applyWorld) balance() uint64 {
	var v uint64
	for _, b := range a.w.Balances() {
		v += b.Value
	}
	return v
}

func randomNullifiers(t *testing.T) [2]fr.Element {
	t.Helper()
	var nf [2]fr.Element
	for i := range nf {
		var err error
		if nf[i], err = note.RandomElement(rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	return nf
}

// TestDuplicateNoteCountsOnce: a note sent twice (two outputs with one
// commitment: in a version-1 bundle one ciphertext replayed, in a
// version-2 bundle the note encrypted for both indices), then the same
// again after it was spent, is owned once; once spent, the balance is zero.
func TestDuplicateNoteCountsOnce(t *testing.T) {
	for _, v := range []byte{shielded.BundleV1, shielded.BundleV2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { testDuplicateNoteCountsOnce(t, v) })
	}
}

func testDuplicateNoteCountsOnce(t *testing.T, version byte) {
	a := newApplyWorld(t)
	n := a.note(7)
	cm := n.Commitment()
	twice := a.encrypt(version, n, n)
	if version == shielded.BundleV1 {
		one := a.encrypt(version, n)
		twice.EPKs, twice.Sealed = slices.Repeat(one.EPKs, 2), slices.Repeat(one.Sealed, 2)
	}
	rep, err := a.apply(a.block(cm, cm), []*phases.Tx{a.tx(randomNullifiers(t), [2]note.Note{n, n}, twice)}, cm, cm)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Found != 1 || len(a.w.State.Notes) != 1 || a.balance() != 7 {
		t.Fatalf("found %d, notes %d, balance %d; want 1, 1, 7", rep.Found, len(a.w.State.Notes), a.balance())
	}
	// Spend it and replay it (a fresh encryption) in the same block.
	nf := randomNullifiers(t)
	nf[0] = noteNullifier(a.w.Keys, n)
	other := a.note(0)
	replay := a.tx(nf, [2]note.Note{n, other}, a.encrypt(version, n, other))
	rep, err = a.apply(a.block(cm, other.Commitment()), []*phases.Tx{replay}, cm, other.Commitment())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Spent != 1 || rep.Found != 0 || len(a.w.State.Notes) != 1 || a.balance() != 0 {
		t.Fatalf("spent %d, found %d, notes %d, balance %d; want 1, 0, 1, 0", rep.Spent, rep.Found, len(a.w.State.Notes), a.balance())
	}
	// The tree still holds every leaf: the wallet follows the chain's root.
	if a.w.State.Tree.Size() != 4 || a.w.State.Next != 3 {
		t.Fatalf("tree size %d, next %d; want 4, 3", a.w.State.Tree.Size(), a.w.State.Next)
	}
}

// TestBlockAppliesWholeOrNotAtAll: a block that fails part-way (a malformed
// transaction after a good one, or a commitment root that disagrees) leaves
// the state, the saved state and the nullifier index as before the block;
// the honest block then applies.
func TestBlockAppliesWholeOrNotAtAll(t *testing.T) {
	a := newApplyWorld(t)
	first := a.note(5)
	cm := first.Commitment()
	zero := a.note(0)
	if _, err := a.apply(a.block(cm, zero.Commitment()), []*phases.Tx{a.tx(randomNullifiers(t), [2]note.Note{first, zero}, a.encrypt(shielded.BundleV2, first, zero))}, cm, zero.Commitment()); err != nil {
		t.Fatal(err)
	}
	before, err := a.w.State.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}

	second := a.note(9)
	nf := randomNullifiers(t)
	nf[1] = noteNullifier(a.w.Keys, first)
	good := a.tx(nf, [2]note.Note{second, zero}, a.encrypt(shielded.BundleV2, second, zero))
	leaves := []fr.Element{second.Commitment(), zero.Commitment()}
	malformed := &phases.Tx{Extradata: []byte(shielded.Magic + "not a header")}
	wrongRoot := a.block(leaves...)
	wrongRoot.CommitmentRoot[0] ^= 1
	for _, c := range []struct {
		name string
		b    *chain.Block
		txs  []*phases.Tx
		want string
	}{
		{"malformed later transaction", a.block(leaves...), []*phases.Tx{good, malformed}, "committed transaction"},
		{"root disagrees", wrongRoot, []*phases.Tx{good}, "disagrees with the block's commitment root"},
	} {
		if _, err := a.apply(c.b, c.txs, leaves...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want an error with %q", c.name, err, c.want)
		}
		if err := a.w.Save(); err != nil {
			t.Fatal(err)
		}
		saved, err := Open(a.w.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []*State{a.w.State, saved.State} {
			after, err := st.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, before) {
				t.Fatalf("%s: the state changed", c.name)
			}
		}
		if len(a.nfs) != 1 {
			t.Fatalf("%s: the nullifier index holds %d entries, want 1", c.name, len(a.nfs))
		}
	}
	rep, err := a.apply(a.block(leaves...), []*phases.Tx{good}, leaves...)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Found != 1 || rep.Spent != 1 || a.balance() != 9 || a.w.State.Next != 3 {
		t.Fatalf("found %d, spent %d, balance %d, next %d; want 1, 1, 9, 3", rep.Found, rep.Spent, a.balance(), a.w.State.Next)
	}
}

// versionsState is the SHA-256 of the wallet state that the blocks of
// TestStateIndependentOfBundleVersion leave, as the code before bundle
// version 2 computed it (commit ad5c1ec, version-1 bundles).
const versionsState = "485817ac59fe5c5e416a51a279e70a45d34d1860861ddc46cfa3087bff21c484"

// TestStateIndependentOfBundleVersion: one run of blocks (notes to the
// wallet and to another, a padding note, a spend) applied as version-1
// bundles, as version-2 bundles, and as both alternately leaves one wallet
// state, byte for byte, and it is the state the code before version 2 left
// for the version-1 run.
func TestStateIndependentOfBundleVersion(t *testing.T) {
	for _, versions := range [][]byte{{shielded.BundleV1}, {shielded.BundleV2}, {shielded.BundleV1, shielded.BundleV2}} {
		raw, err := versionsRun(t, versions).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(raw)); got != versionsState {
			t.Fatalf("versions %v: state %s, want %s", versions, got, versionsState)
		}
	}
}

// versionsRun applies the run of blocks with deterministic keys and notes,
// transaction k a bundle of version versions[k mod len(versions)].
func versionsRun(t *testing.T, versions []byte) *State {
	r := mrand.NewChaCha8([32]byte{'v', '2'})
	a := newApplyWorld(t)
	keysOf := func() *Keys {
		sk, err := note.NewSpendingKey(r)
		if err != nil {
			t.Fatal(err)
		}
		k, err := NewKeys(sk)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a.w.Keys = keysOf()
	stranger := keysOf()
	noteTo := func(k *Keys, value uint64) note.Note {
		n := note.Note{Owner: k.Spend.Owner(), Value: value, Asset: shielded.AssetOf(applyApp, applyToken)}
		var err error
		if n.Rho, err = note.RandomElement(r); err == nil {
			n.Rcm, err = note.RandomElement(r)
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	me, other := a.w.Keys, stranger
	n1 := noteTo(me, 5)
	blocks := [][][2]note.Note{
		{{n1, noteTo(other, 3)}},
		{{noteTo(other, 1), noteTo(other, 2)}, {noteTo(me, 9), noteTo(me, 0)}},
		{{noteTo(me, 7), noteTo(other, 4)}},
	}
	k := 0
	for b, txs := range blocks {
		var all []*phases.Tx
		var leaves []fr.Element
		for _, out := range txs {
			nf := [2]fr.Element{fr.NewElement(uint64(2*k + 1)), fr.NewElement(uint64(2*k + 2))}
			if b == 2 {
				nf[1] = noteNullifier(me, n1)
			}
			to := make([]Address, 2)
			for j := range out {
				to[j] = other.Address()
				if out[j].Owner == me.Spend.Owner() {
					to[j] = me.Address()
				}
			}
			ct, err := Encrypt(rand.Reader, versions[k%len(versions)], to, out[:])
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, a.tx(nf, out, ct))
			leaves = append(leaves, out[0].Commitment(), out[1].Commitment())
			k++
		}
		if _, err := a.apply(a.block(leaves...), all, leaves...); err != nil {
			t.Fatal(err)
		}
	}
	return a.w.State
}
