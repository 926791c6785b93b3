package circuits

import (
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/circuits/poseidon"
	"github.com/fractalvm/fractal/zk"
)

var (
	compileOnce sync.Once
	compiled    *cs.R1CS
	compileErr  error
)

func transferCCS(t testing.TB) *cs.R1CS {
	compileOnce.Do(func() { compiled, compileErr = zk.Compile(&Transfer{}) })
	if compileErr != nil {
		t.Fatal(compileErr)
	}
	return compiled
}

var testAsset = note.NewAsset([]byte("test-token"))

// fixture is a tree holding two of Alice's notes (100 and 50) among others.
type fixture struct {
	alice, bob note.SpendingKey
	tree       *merkle.Tree
	n100, n50  note.Note
	p100, p50  merkle.Path
}

func mustKey(t testing.TB) note.SpendingKey {
	k, err := note.NewSpendingKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustElement(t testing.TB) fr.Element {
	e, err := note.RandomElement(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{alice: mustKey(t), bob: mustKey(t), tree: merkle.New()}
	mk := func(v uint64) note.Note {
		return note.Note{Owner: f.alice.Owner(), Value: v, Asset: testAsset, Rho: mustElement(t), Rcm: mustElement(t)}
	}
	f.n100, f.n50 = mk(100), mk(50)
	f.tree.Append(mustElement(t), false)
	f.tree.Append(f.n100.Commitment(), true)
	f.tree.Append(mustElement(t), false)
	f.tree.Append(f.n50.Commitment(), true)
	f.tree.Append(mustElement(t), false)
	f.p100, _ = f.tree.Witness(1)
	f.p50, _ = f.tree.Witness(3)
	return f
}

func (f *fixture) spend(n note.Note, p merkle.Path) Spend {
	return Spend{Key: f.alice, Note: n, Path: p}
}

func (f *fixture) dummy(t testing.TB) Spend {
	d, err := NewDummySpend(rand.Reader, testAsset)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) out(owner note.SpendingKey, v uint64) Output {
	rcm, err := note.RandomElement(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return Output{Owner: owner.Owner(), Value: v, Rcm: rcm}
}

// pay100 sends 30 of the 100 note to Bob, 70 back to Alice.
func (f *fixture) pay100(t testing.TB) *Witness {
	w, err := NewTransferWitness(f.tree.Root(), [2]Spend{f.spend(f.n100, f.p100), f.dummy(t)},
		[2]Output{f.out(f.bob, 30), f.out(f.alice, 70)}, testAsset, 0, 0, BindingOf([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func check(t testing.TB, w *Witness) error { return zk.Check(transferCCS(t), w.Assignment) }

func TestConstraintCount(t *testing.T) {
	// Below 2^14 keeps Groth16's FFT domain at 16384; docs/circuits.md gives
	// this figure.
	if n := transferCCS(t).GetNbConstraints(); n != 16338 {
		t.Fatalf("constraints: %d, want 16338", n)
	}
	if n := transferCCS(t).GetNbPublicVariables(); n != NumPublic+1 {
		t.Fatalf("public variables: %d, want %d", n, NumPublic+1)
	}
}

// Valid transfers satisfy the circuit: the native statement (nullifiers,
// commitments) is what the circuit computes.
func TestValidTransfers(t *testing.T) {
	f := newFixture(t)
	if err := check(t, f.pay100(t)); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	// Two real inputs, fee 5, unshield 45 (net -45): 150 = 60 + 40 + 5 + 45.
	w, err := NewTransferWitness(f.tree.Root(), [2]Spend{f.spend(f.n100, f.p100), f.spend(f.n50, f.p50)},
		[2]Output{f.out(f.bob, 60), f.out(f.alice, 40)}, testAsset, -45, 5, BindingOf([32]byte{2}))
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, w); err != nil {
		t.Fatalf("unshield with fee: %v", err)
	}
	// Shield 100 from two dummies.
	w, err = NewTransferWitness(f.tree.Root(), [2]Spend{f.dummy(t), f.dummy(t)},
		[2]Output{f.out(f.alice, 100), f.out(f.alice, 0)}, testAsset, 100, 0, BindingOf([32]byte{3}))
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, w); err != nil {
		t.Fatalf("shield: %v", err)
	}
	// Output rho is the nullifier of the input with the same index.
	if w.Outputs[1].Rho != w.Public.Nullifiers[1] || w.Outputs[0].Commitment() != w.Public.Commitments[0] {
		t.Fatal("outputs not tied to nullifiers")
	}
}

// Each statement the circuit must refuse, first as NewTransferWitness's
// named error, then as a forged assignment the circuit itself rejects.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	root := f.tree.Root()

	t.Run("wrong root", func(t *testing.T) {
		w := f.pay100(t)
		w.Assignment.Root = mustElement(t)
		if check(t, w) == nil {
			t.Fatal("accepted a wrong root")
		}
		_, err := NewTransferWitness(mustElement(t), [2]Spend{f.spend(f.n100, f.p100), f.dummy(t)},
			[2]Output{f.out(f.bob, 30), f.out(f.alice, 70)}, testAsset, 0, 0, fr.Element{})
		if !errors.Is(err, ErrNotMember) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("same note twice", func(t *testing.T) {
		_, err := NewTransferWitness(root, [2]Spend{f.spend(f.n100, f.p100), f.spend(f.n100, f.p100)},
			[2]Output{f.out(f.bob, 100), f.out(f.alice, 100)}, testAsset, 0, 0, fr.Element{})
		if !errors.Is(err, ErrSameNullifier) {
			t.Fatalf("got %v", err)
		}
		// Forge: copy input 0 into input 1 and its nullifier into the statement.
		w := f.pay100(t)
		a := w.Assignment
		a.In[1] = a.In[0]
		a.Nullifiers[1] = a.Nullifiers[0]
		o := w.Outputs[1]
		o.Rho = w.Public.Nullifiers[0]
		o.Value = 170
		a.Out[1].Value = 170
		a.Commitments[1] = o.Commitment()
		if err := check(t, w); err == nil {
			t.Fatal("accepted a double spend inside one transaction")
		}
	})

	t.Run("outputs exceed inputs", func(t *testing.T) {
		_, err := NewTransferWitness(root, [2]Spend{f.spend(f.n100, f.p100), f.dummy(t)},
			[2]Output{f.out(f.bob, 31), f.out(f.alice, 70)}, testAsset, 0, 0, fr.Element{})
		if !errors.Is(err, ErrUnbalanced) {
			t.Fatalf("got %v", err)
		}
		w := f.pay100(t)
		forgeOutput(w, 0, 31)
		if check(t, w) == nil {
			t.Fatal("accepted outputs worth more than inputs")
		}
	})

	t.Run("2^64 wrap-around", func(t *testing.T) {
		// Output 2^64+30 balances 100 + 2^64 = (2^64+30) + 70 in the field.
		w := f.pay100(t)
		big64 := new(big.Int).Lsh(big.NewInt(1), 64)
		var v fr.Element
		v.SetBigInt(new(big.Int).Add(big64, big.NewInt(30)))
		forgeOutputElement(w, 0, v)
		var net fr.Element
		net.SetBigInt(big64)
		w.Assignment.Net = net
		if check(t, w) == nil {
			t.Fatal("accepted a 2^64 wrap-around")
		}
		// Negative output: 100 = (-1 mod r) + 101.
		w = f.pay100(t)
		var minus1 fr.Element
		minus1.SetInt64(-1)
		forgeOutputElement(w, 0, minus1)
		forgeOutput(w, 1, 101)
		if check(t, w) == nil {
			t.Fatal("accepted a negative output")
		}
	})

	t.Run("wrong spending key", func(t *testing.T) {
		thief := mustKey(t)
		_, err := NewTransferWitness(root, [2]Spend{{Key: thief, Note: f.n100, Path: f.p100}, f.dummy(t)},
			[2]Output{f.out(thief, 100), f.out(thief, 0)}, testAsset, 0, 0, fr.Element{})
		if !errors.Is(err, ErrWrongKey) {
			t.Fatalf("got %v", err)
		}
		w := f.pay100(t)
		w.Assignment.In[0].Ask = thief.AuthorizingKey()
		if check(t, w) == nil {
			t.Fatal("accepted a spend with another authorising key")
		}
	})

	t.Run("dummy with value", func(t *testing.T) {
		// A made-up note of value 5 outside the tree.
		d := f.dummy(t)
		d.Note.Value = 5
		_, err := NewTransferWitness(root, [2]Spend{f.spend(f.n100, f.p100), d},
			[2]Output{f.out(f.bob, 35), f.out(f.alice, 70)}, testAsset, 0, 0, fr.Element{})
		if !errors.Is(err, ErrNotMember) {
			t.Fatalf("got %v", err)
		}
		// Forge in the circuit: give the dummy input value 5 and pay it out,
		// so only the membership constraint (root − Root)·value = 0 objects.
		w := f.pay100(t)
		w.Assignment.In[1].Value = 5
		forgeOutput(w, 0, 35)
		err = check(t, w)
		if err == nil {
			t.Fatal("accepted a dummy input with value outside the tree")
		}
		w.Assignment.In[1].Value = 0
		forgeOutput(w, 0, 30)
		if err := check(t, w); err != nil {
			t.Fatalf("the untampered witness no longer solves: %v", err)
		}
	})

	t.Run("other asset", func(t *testing.T) {
		other := note.NewAsset([]byte("other"))
		_, err := NewTransferWitness(root, [2]Spend{f.spend(f.n100, f.p100), f.dummy(t)},
			[2]Output{f.out(f.bob, 30), f.out(f.alice, 70)}, other, 0, 0, fr.Element{})
		if !errors.Is(err, ErrWrongAsset) {
			t.Fatalf("got %v", err)
		}
		w := f.pay100(t)
		w.Assignment.Asset = other.Element()
		if check(t, w) == nil {
			t.Fatal("accepted a note under another asset")
		}
	})

	t.Run("output rho not a nullifier", func(t *testing.T) {
		w := f.pay100(t)
		o := w.Outputs[0]
		o.Rho = mustElement(t)
		w.Assignment.Commitments[0] = o.Commitment()
		if check(t, w) == nil {
			t.Fatal("accepted an output with a free rho")
		}
	})
}

// forgeOutput sets output j's value and makes its commitment consistent, so
// only the balance or range constraints can object.
func forgeOutput(w *Witness, j int, v uint64) {
	var e fr.Element
	e.SetUint64(v)
	forgeOutputElement(w, j, e)
}

// forgeOutputElement sets output j's value to any field element and
// recomputes the commitment with the packing the circuit uses.
func forgeOutputElement(w *Witness, j int, v fr.Element) {
	o := w.Outputs[j]
	w.Assignment.Out[j].Value = v
	var packed, shift fr.Element
	shift.SetBigInt(new(big.Int).Lsh(big.NewInt(1), 64))
	a := o.Asset.Element()
	packed.Mul(&a, &shift)
	packed.Add(&packed, &v)
	w.Assignment.Commitments[j] = commitPacked(o, packed)
}

func commitPacked(o note.Note, packed fr.Element) fr.Element {
	return poseidon.Hash(note.TagNote, o.Owner, packed, o.Rho, o.Rcm)
}

func TestPublicEncoding(t *testing.T) {
	f := newFixture(t)
	p := f.pay100(t).Public
	p.Net = -45
	b, _ := p.MarshalBinary()
	if len(b) != PublicSize {
		t.Fatalf("size %d", len(b))
	}
	var q Public
	if err := q.UnmarshalBinary(b); err != nil || q != p {
		t.Fatalf("round trip: %v", err)
	}
	for want, c := range map[string][]byte{
		"truncated":       b[:len(b)-1],
		"trailing":        append(append([]byte(nil), b...), 0),
		"unknown version": append([]byte{7}, b[1:]...),
	} {
		var z Public
		if err := z.UnmarshalBinary(c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	// Net -45 is r-45 in the vector.
	var m45 fr.Element
	m45.SetInt64(-45)
	if v := p.Vector(); len(v) != NumPublic || v[6] != m45 {
		t.Fatal("vector layout")
	}
}

func FuzzPublicDecode(f *testing.F) {
	b, _ := Public{Net: -3, Fee: 9}.MarshalBinary()
	f.Add(b)
	f.Add(b[:20])
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Public
		if p.UnmarshalBinary(in) != nil {
			return
		}
		out, _ := p.MarshalBinary()
		if string(out) != string(in) {
			t.Fatal("decode/encode not canonical")
		}
	})
}
