package dispute

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/vp"
)

const blockTxs = 64

// scene is an instance whose block 2 holds 64 transactions, each spending
// one note minted in block 1 and creating another.
type scene struct {
	in     *fractal.Instance
	parent *chain.Block // block 1
	block  *chain.Block // block 2, the honest executor's
	txs    []*phases.Tx
	pre    []*notes.Note // live notes after block 1
}

func newScene(t *testing.T) *scene {
	t.Helper()
	cfg := fractal.DefaultConfig()
	cfg.PerKeyLimit = false // one key signs block 2's 64 transactions
	in, err := fractal.Init(t.TempDir()+"/inst", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	allow, err := in.Deploy([]byte("return true"))
	if err != nil {
		t.Fatal(err)
	}
	key := genKey(t)
	pat := notes.AnyPattern().WithProvenance(nil).WithApplication(allow).WithOwner(allow)
	var out []string
	for i := 0; i < blockTxs; i++ {
		out = append(out, fmt.Sprintf("{provenance={}, application=%q, owner=%q, key=%q, value=%q}", hex.EncodeToString(allow[:]), hex.EncodeToString(allow[:]), fmt.Sprint("k", i), "1"))
	}
	mint := sign(t, &phases.Tx{Nonce: 1, GasLimit: 10_000_000, Write: notes.ConstraintSet{pat}, Calculation: []byte("return {" + strings.Join(out, ",") + "}")}, key)
	s := &scene{in: in}
	s.parent = sealOne(t, in, mint)
	if s.pre, err = in.Notes(notes.AnyPattern()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < blockTxs; i++ {
		sk := notes.StateKey{Application: allow, Owner: allow, Key: []byte(fmt.Sprint("k", i))}
		tx := sign(t, &phases.Tx{
			Nonce: uint64(100 + i), GasLimit: 1_000_000,
			Read: notes.ConstraintSet{pat}, Write: notes.ConstraintSet{pat},
			Lookup:      []byte(fmt.Sprintf("return {%q}", sk.String())),
			Calculation: []byte(fmt.Sprintf("return {{provenance={}, application=%q, owner=%q, key=%q, value=inputs[1].value .. '+'}}", hex.EncodeToString(allow[:]), hex.EncodeToString(allow[:]), fmt.Sprint("m", i))),
		}, key)
		s.txs = append(s.txs, tx)
	}
	s.block = sealOne(t, in, s.txs...)
	if len(s.block.TxIDs) != blockTxs {
		t.Fatalf("block 2 holds %d transactions", len(s.block.TxIDs))
	}
	return s
}

func genKey(t *testing.T) keys.PrivateKey {
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, tx *phases.Tx, k keys.PrivateKey) *phases.Tx {
	tx.Signers = []keys.PublicKey{k.Public()}
	if err := tx.Sign(rand.Reader, k); err != nil {
		t.Fatal(err)
	}
	return tx
}

func sealOne(t *testing.T, in *fractal.Instance, txs ...*phases.Tx) *chain.Block {
	t.Helper()
	for _, tx := range txs {
		if _, err := in.Submit(tx); err != nil {
			t.Fatal(err)
		}
	}
	s, err := in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range s.Receipts {
		if err := rc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return s.Block
}

// mapState is the faulty executor's own note store.
type mapState struct {
	mu sync.Mutex
	m  map[string]*notes.Note
}

func (s *mapState) Get(k notes.StateKey) (*notes.Note, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k.String()], nil
}

func (s *mapState) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	s.mu.Lock()
	var ks []string
	for k := range s.m {
		ks = append(ks, k)
	}
	s.mu.Unlock()
	sort.Strings(ks)
	for _, k := range ks {
		if n := s.m[k]; p.Match(n.StateKey()) {
			if err := fn(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// faultyExecutor executes the block itself from the parent's notes with the
// real phases and state tree, but corrupts the output of transaction bad
// (and so every root from there on), and signs its block with its own key.
func faultyExecutor(t *testing.T, s *scene, bad int, key keys.PrivateKey) *chain.Block {
	t.Helper()
	st := &mapState{m: map[string]*notes.Note{}}
	var changes []statetree.Change
	for _, n := range s.pre {
		st.m[n.StateKey().String()] = n
		id := n.ID()
		changes = append(changes, statetree.Change{Key: chain.TreeKey(n.StateKey()), Value: &id})
	}
	tr := statetree.New([]byte{'s'})
	txn := kv.Map{}
	root, err := tr.UpdateBatch(txn, statetree.EmptyRoot, changes)
	if err != nil || root != s.parent.StateRoot {
		t.Fatalf("faulty executor's pre-state root %x, parent %x (%v)", root[:8], s.parent.StateRoot[:8], err)
	}
	b := *s.block
	b.Roots = nil
	pool := vp.NewPool()
	for i, tx := range s.txs {
		o, err := phases.Execute(st, s.in, pool, tx)
		if err != nil || o.Receipt.Err() != nil {
			t.Fatalf("faulty executor, transaction %d: %v %v", i, err, o.Receipt.Err())
		}
		if i == bad {
			o.Created[0].Value = []byte("forged")
		}
		var ch []statetree.Change
		for _, n := range o.Spent {
			delete(st.m, n.StateKey().String())
			ch = append(ch, statetree.Change{Key: chain.TreeKey(n.StateKey())})
		}
		for j := range o.Created {
			n := o.Created[j]
			st.m[n.StateKey().String()] = &n
			id := n.ID()
			ch = append(ch, statetree.Change{Key: chain.TreeKey(n.StateKey()), Value: &id})
		}
		if root, err = tr.UpdateBatch(txn, root, ch); err != nil {
			t.Fatal(err)
		}
		b.Roots = append(b.Roots, root)
	}
	b.StateRoot = root
	if err := chain.SignBlock(context.Background(), &b, keys.NewKeySigner(key)); err != nil {
		t.Fatal(err)
	}
	return &b
}

func (s *scene) txAt(i int) (*phases.Tx, error) { return s.txs[i], nil }

func (s *scene) honest() *Signed {
	return &Signed{Block: s.block, WitnessFor: func(i int) (*chain.Witness, error) { return s.in.Witness(s.block.Height, i) }}
}

func TestFaultyExecutorLoses(t *testing.T) {
	s := newScene(t)
	const bad = 37
	faultyKey := genKey(t)
	faulty := faultyExecutor(t, s, bad, faultyKey)
	for i := range faulty.Roots {
		if (faulty.Roots[i] == s.block.Roots[i]) != (i < bad) {
			t.Fatalf("faulty roots diverge at %d, want from %d on", i, bad)
		}
	}
	for _, order := range []string{"honest first", "faulty first"} {
		a, b := Party(s.honest()), Party(&Signed{Block: faulty})
		if order == "faulty first" {
			a, b = b, a
		}
		tr, err := Play(s.parent, a, b, s.txAt)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Rounds) != 6 {
			t.Fatalf("%s: %d rounds for %d transactions, want 6", order, len(tr.Rounds), blockTxs)
		}
		if tr.Index != bad || tr.TxID != s.block.TxIDs[bad] || tr.PreRoot != s.block.Roots[bad-1] {
			t.Fatalf("%s: came down to transaction %d", order, tr.Index)
		}
		if !tr.Decided || tr.Root != s.block.Roots[bad] {
			t.Fatalf("%s: referee root %x decided=%v, honest %x", order, tr.Root[:8], tr.Decided, s.block.Roots[bad][:8])
		}
		loser, ok := tr.Loser()
		if !ok || loser != faultyKey.Public() {
			t.Fatalf("%s: verdict %+v", order, tr.Wrong)
		}
		// The rounds halve [lo, hi] around the bad transaction.
		first := tr.Rounds[0]
		if first.Lo != -1 || first.Hi != blockTxs-1 || first.Mid != 31 || first.A != first.B {
			t.Fatalf("%s: first round %+v", order, first)
		}
		if last := tr.Rounds[5]; last.Hi-last.Lo != 2 {
			t.Fatalf("%s: last round %+v", order, last)
		}
	}
}

// lossyWitness drops one note from the honest witness.
type lossyWitness struct{ *Signed }

func (l lossyWitness) Witness(i int) (*chain.Witness, error) {
	w, err := l.Signed.Witness(i)
	if err != nil {
		return nil, err
	}
	w.Notes = nil
	return w, nil
}

func TestWitnessMissingAReadLoses(t *testing.T) {
	s := newScene(t)
	faulty := faultyExecutor(t, s, 5, genKey(t))
	tr, err := Play(s.parent, lossyWitness{s.honest()}, &Signed{Block: faulty}, s.txAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Wrong) != 1 || tr.Wrong[0].Side != SideA || !strings.Contains(tr.Wrong[0].Reason, "read outside the witness") || tr.Decided {
		t.Fatalf("verdict %+v decided=%v", tr.Wrong, tr.Decided)
	}
	// With the faulty side's witness honest too, the truth is still found.
	tr, err = Play(s.parent, lossyWitness{s.honest()}, &Signed{Block: faulty, WitnessFor: s.honest().WitnessFor}, s.txAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Wrong) != 2 || !tr.Decided || tr.Root != s.block.Roots[5] {
		t.Fatalf("verdict %+v", tr.Wrong)
	}
}

// liar commits in bisection to roots that contradict its signed manifest.
type liar struct{ *Signed }

func (l liar) Commit(i int) ([32]byte, error) {
	return l.Signed.Block.Roots[len(l.Signed.Block.Roots)-1], nil
}

func TestEquivocationInARoundLoses(t *testing.T) {
	s := newScene(t)
	faulty := faultyExecutor(t, s, 50, genKey(t))
	tr, err := Play(s.parent, s.honest(), liar{&Signed{Block: faulty}}, s.txAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Rounds) != 1 || len(tr.Wrong) != 1 || tr.Wrong[0].Side != SideB || !strings.Contains(tr.Wrong[0].Reason, "contradicts its signed manifest") {
		t.Fatalf("rounds %d verdict %+v", len(tr.Rounds), tr.Wrong)
	}
}

func TestPlayRefusesNonDisputes(t *testing.T) {
	s := newScene(t)
	other := genKey(t)
	same := *s.block
	if err := chain.SignBlock(context.Background(), &same, keys.NewKeySigner(other)); err != nil {
		t.Fatal(err)
	}
	forged := *faultyExecutor(t, s, 3, other)
	forged.Signature[0] ^= 1
	otherParent := *s.block
	cases := []struct {
		name   string
		parent *chain.Block
		b      *chain.Block
		want   string
	}{
		{"same roots", s.parent, &same, "nothing to dispute"},
		{"bad signature", s.parent, &forged, "executor signature"},
		{"wrong parent", &otherParent, &same, "do not both extend the given parent"},
	}
	for _, c := range cases {
		_, err := Play(c.parent, s.honest(), &Signed{Block: c.b}, s.txAt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

// TestChallengeFindsTheDisputedBlock: given another executor's blocks as a
// manifest file holds them (genesis, an identical block 1, its faulty block
// 2), Challenge disputes block 2 with the instance as party A and reaches
// the verdict Play reaches; blocks all identical, or past the instance's
// head, are refused naming why.
func TestChallengeFindsTheDisputedBlock(t *testing.T) {
	s := newScene(t)
	faultyKey := genKey(t)
	faulty := faultyExecutor(t, s, 20, faultyKey)
	genesis, err := s.in.Block(0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Challenge(t.Context(), s.in, []*chain.Block{genesis, s.parent, faulty})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Play(s.parent, s.honest(), &Signed{Block: faulty}, s.txAt)
	if err != nil {
		t.Fatal(err)
	}
	if loser, ok := tr.Loser(); !ok || loser != faultyKey.Public() || tr.Index != 20 || string(tr.Encode()) != string(want.Encode()) {
		t.Fatalf("challenge: transaction %d, verdict %+v; want Play's transcript naming the faulty executor", tr.Index, tr.Wrong)
	}

	if _, err := Challenge(t.Context(), s.in, []*chain.Block{genesis, s.parent, s.block}); err == nil ||
		err.Error() != "dispute: every block in the file is identical to this instance's own" {
		t.Fatalf("identical blocks: %v", err)
	}
	later := *faulty
	later.Height = 3
	if _, err := Challenge(t.Context(), s.in, []*chain.Block{&later}); err == nil || !strings.HasPrefix(err.Error(), "dispute: ") {
		t.Fatalf("block past the head: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Challenge(ctx, s.in, []*chain.Block{faulty}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
