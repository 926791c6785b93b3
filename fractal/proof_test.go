package fractal

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

func TestQueryProofPresentAndAbsent(t *testing.T) {
	f := chainFixture(t)
	head, _ := f.in.Head()
	live := notes.StateKey{Application: f.allow, Owner: f.allow, Key: []byte("e")}
	spent := notes.StateKey{Application: f.allow, Owner: f.allow, Key: []byte("a")}
	for _, c := range []struct {
		key  notes.StateKey
		want string
	}{
		{live, "lives at " + live.String()},
		{spent, "no note at " + spent.String()},
	} {
		qp, err := f.in.Prove(c.key)
		if err != nil {
			t.Fatal(err)
		}
		back, err := chain.DecodeQueryProof(qp.Encode())
		if err != nil {
			t.Fatal(err)
		}
		id := f.in.ID()
		st, err := chain.CheckQueryProof(back, f.in.Executor(), &id)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(st.String(), c.want) || st.Height != 3 || st.Root != head.StateRoot {
			t.Fatalf("statement %q", st)
		}
	}
}

// TestQueryProofRefusesTampering flips every byte of an encoded proof and
// checks that nothing but a refusal or the same statement comes out, and
// that a claimed absence cannot be made from a presence proof.
func TestQueryProofRefusesTampering(t *testing.T) {
	f := chainFixture(t)
	k := notes.StateKey{Application: f.allow, Owner: f.allow, Key: []byte("e")}
	qp, err := f.in.Prove(k)
	if err != nil {
		t.Fatal(err)
	}
	raw := qp.Encode()
	for i := range raw {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 0x01
		p, err := chain.DecodeQueryProof(bad)
		if err != nil {
			continue
		}
		if _, err := chain.CheckQueryProof(p, f.in.Executor(), nil); err == nil {
			t.Fatalf("byte %d flipped: proof still checks", i)
		}
	}
	// Dropping the note: the proof shows the key present, not absent.
	qp2 := *qp
	qp2.Note = nil
	if _, err := chain.CheckQueryProof(&qp2, f.in.Executor(), nil); err == nil || !strings.Contains(err.Error(), "not absent") {
		t.Fatalf("absence from a presence proof: %v", err)
	}
	if _, err := chain.CheckQueryProof(qp, f.bob.Public(), nil); err == nil || !strings.Contains(err.Error(), "not signed by the given executor key") {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestQueryProofRefusesOtherInstance: one executor key may sign blocks of
// several instances; a proof whose block names another instance checks
// against the key alone but is refused once the instance is given.
func TestQueryProofRefusesOtherInstance(t *testing.T) {
	f := chainFixture(t)
	qp, err := f.in.Prove(notes.StateKey{Application: f.allow, Owner: f.allow, Key: []byte("e")})
	if err != nil {
		t.Fatal(err)
	}
	other := *qp.Block
	other.Instance[0] ^= 1
	if err := chain.SignBlock(context.Background(), &other, f.in.signer); err != nil {
		t.Fatal(err)
	}
	foreign := *qp
	foreign.Block = &other
	if st, err := chain.CheckQueryProof(&foreign, f.in.Executor(), nil); err != nil || st.Instance != other.Instance {
		t.Fatalf("without an instance: %v %v", st, err)
	}
	id := f.in.ID()
	want := fmt.Sprintf("fractal: check proof: the proof is for instance %x, not %x", other.Instance, id)
	if _, err := chain.CheckQueryProof(&foreign, f.in.Executor(), &id); err == nil || err.Error() != want {
		t.Fatalf("another instance: %v, want %q", err, want)
	}
}

func FuzzDecodeQueryProof(f *testing.F) {
	fx := chainFixture(f)
	for _, key := range []string{"e", "a"} {
		qp, err := fx.in.Prove(notes.StateKey{Application: fx.allow, Owner: fx.allow, Key: []byte(key)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(qp.Encode())
	}
	exec := fx.in.Executor()
	f.Fuzz(func(t *testing.T, data []byte) {
		qp, err := chain.DecodeQueryProof(data)
		if err != nil {
			return
		}
		chain.CheckQueryProof(qp, exec, nil)
		if again, err := chain.DecodeQueryProof(qp.Encode()); err != nil || string(again.Encode()) != string(qp.Encode()) {
			t.Fatalf("re-encoding does not round-trip: %v", err)
		}
	})
}

func TestManifestImportAndForkEvidence(t *testing.T) {
	f := chainFixture(t)
	own, err := f.in.Manifests()
	if err != nil || len(own) != 4 {
		t.Fatalf("manifests: %d %v", len(own), err)
	}
	file := chain.EncodeManifests(own)
	res, err := f.in.ImportManifests(file)
	if err != nil || res.Known != 4 || res.Stored != 0 || len(res.Evidence) != 0 {
		t.Fatalf("re-import of own manifests: %+v %v", res, err)
	}
	// The executor signs a second block 2 (an equivocation) and a block 4.
	fork := *own[2]
	fork.Roots = append([][32]byte(nil), fork.Roots...)
	fork.Roots[0][5] ^= 0x40
	if err := chain.SignBlock(context.Background(), &fork, f.in.signer); err != nil {
		t.Fatal(err)
	}
	next := &chain.Block{Instance: f.in.ID(), Height: 4, Prev: own[3].Hash(), TxsHash: chain.TxsHash(nil), StateRoot: own[3].StateRoot}
	if err := chain.SignBlock(context.Background(), next, f.in.signer); err != nil {
		t.Fatal(err)
	}
	res, err = f.in.ImportManifests(chain.EncodeManifests([]*chain.Block{&fork, next}))
	if err != nil || res.Stored != 2 || len(res.Evidence) != 1 || res.Evidence[0].Conflict != chain.SameHeight {
		t.Fatalf("import: %+v %v", res, err)
	}
	ev, err := f.in.Evidence()
	if err != nil || len(ev) != 1 {
		t.Fatalf("evidence: %d %v", len(ev), err)
	}
	hs := map[[32]byte]bool{ev[0].A.Hash(): true, ev[0].B.Hash(): true}
	if !hs[fork.Hash()] || !hs[own[2].Hash()] {
		t.Fatal("evidence does not hold both blocks")
	}
	// The chain is not changed by the import. Verify accepts the fork at
	// height 2 (it is evidence, kept apart) but not block 4: the executor
	// signed a block this chain does not reach.
	if head, _ := f.in.Head(); head.Height != 3 {
		t.Fatalf("head moved to %d", head.Height)
	}
	nh := next.Hash()
	wantVerify(t, f.in, fmt.Sprintf("verify: manifest %x: another copy's manifest, imported, holds block 4 (hash %x…) but the chain ends at block 3: committed blocks are missing",
		importedKey(4, nh), nh[:8]))
	// Importing again records nothing new.
	res, err = f.in.ImportManifests(chain.EncodeManifests([]*chain.Block{&fork, next}))
	if err != nil || res.Known != 2 || len(res.Evidence) != 0 {
		t.Fatalf("second import: %+v %v", res, err)
	}
}

// TestManifestImportLarge imports 20,000 new blocks with an equivocation
// and a block lying about its height among them: every block is kept and
// exactly the two conflicts are found (the import looks blocks up by height
// and parent rather than comparing every pair).
func TestManifestImportLarge(t *testing.T) {
	const n = 20_000
	f := chainFixture(t)
	own, _ := f.in.Manifests()
	prev := own[len(own)-1]
	var file []*chain.Block
	for h := prev.Height + 1; len(file) < n; h++ {
		b := &chain.Block{Instance: f.in.ID(), Height: h, Prev: prev.Hash(), TxsHash: chain.TxsHash(nil), StateRoot: prev.StateRoot}
		if err := chain.SignBlock(context.Background(), b, f.in.signer); err != nil {
			t.Fatal(err)
		}
		file, prev = append(file, b), b
	}
	twin := *file[100] // another block at the same height
	twin.StateRoot[0] ^= 1
	liar := *file[5000] // same parent, claims another height
	liar.Height += 3 * n
	for _, b := range []*chain.Block{&twin, &liar} {
		if err := chain.SignBlock(context.Background(), b, f.in.signer); err != nil {
			t.Fatal(err)
		}
	}
	file = append(file, &twin, &liar)
	res, err := f.in.ImportManifests(chain.EncodeManifests(file))
	if err != nil {
		t.Fatal(err)
	}
	if res.Known != 0 || res.Stored != n+2 || len(res.Evidence) != 2 {
		t.Fatalf("import: known %d, stored %d, evidence %d; want 0, %d, 2", res.Known, res.Stored, len(res.Evidence), n+2)
	}
	for i, want := range []struct {
		c    chain.Conflict
		a, b *chain.Block
	}{{chain.SameHeight, file[100], &twin}, {chain.SameParent, file[5000], &liar}} {
		e := res.Evidence[i]
		if e.Conflict != want.c || string(evidenceKey(e)) != string(evidenceKey(chain.NewEvidence(want.c, want.a, want.b))) {
			t.Fatalf("evidence %d: %v between %x and %x", i, e.Conflict, e.A.Hash(), e.B.Hash())
		}
	}
	res, err = f.in.ImportManifests(chain.EncodeManifests(file))
	if err != nil || res.Known != n+2 || res.Stored != 0 || len(res.Evidence) != 0 {
		t.Fatalf("second import: %+v %v", res, err)
	}
}

// TestManifestImportCap: imports stop at maxImported stored manifests; an
// import that would go past it is refused whole and stores nothing, while
// blocks already known still import.
func TestManifestImportCap(t *testing.T) {
	saved := maxImported
	maxImported = 3
	t.Cleanup(func() { maxImported = saved })
	f := chainFixture(t)
	own, _ := f.in.Manifests()
	prev := own[len(own)-1]
	var extra []*chain.Block
	for len(extra) < 4 {
		b := &chain.Block{Instance: f.in.ID(), Height: prev.Height + 1, Prev: prev.Hash(), TxsHash: chain.TxsHash(nil), StateRoot: prev.StateRoot}
		if err := chain.SignBlock(context.Background(), b, f.in.signer); err != nil {
			t.Fatal(err)
		}
		extra, prev = append(extra, b), b
	}
	before := dumpStore(t, f.in)
	want := "fractal: manifest import: this instance already holds 3 imported manifests, the limit (3); the file's block at height 7 would be one more"
	if _, err := f.in.ImportManifests(chain.EncodeManifests(append(own, extra...))); err == nil || err.Error() != want {
		t.Fatalf("over the cap: %v, want %q", err, want)
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("a refused import changed the store")
	}
	if res, err := f.in.ImportManifests(chain.EncodeManifests(append(own, extra[:3]...))); err != nil || res.Stored != 3 || res.Known != len(own) {
		t.Fatalf("up to the cap: %+v %v", res, err)
	}
	if res, err := f.in.ImportManifests(chain.EncodeManifests(append(own, extra[:3]...))); err != nil || res.Known != len(own)+3 {
		t.Fatalf("known blocks at the cap: %+v %v", res, err)
	}
	if _, err := f.in.ImportManifests(chain.EncodeManifests(extra[3:])); err == nil || err.Error() != want {
		t.Fatalf("one more at the cap: %v, want %q", err, want)
	}
}

func TestManifestImportRefusals(t *testing.T) {
	f := chainFixture(t)
	own, _ := f.in.Manifests()
	before := dumpStore(t, f.in)
	forged := *own[2]
	forged.Signature[10] ^= 1
	other := newFixture(t, DefaultConfig())
	foreign, _ := other.in.Manifests()
	stranger := *own[2]
	if err := chain.SignBlock(context.Background(), &stranger, keys.NewKeySigner(f.bob)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		file []byte
		want string
	}{
		{"bad signature", chain.EncodeManifests([]*chain.Block{own[1], &forged}), "block 1 of the file: height 2: invalid executor signature"},
		{"other instance", chain.EncodeManifests(foreign), "not this one"},
		{"other key", chain.EncodeManifests([]*chain.Block{&stranger}), "not signed by this instance's executor key"},
		{"truncated", chain.EncodeManifests(own)[:100], "manifest file"},
	} {
		if _, err := f.in.ImportManifests(c.file); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("a refused import changed the store")
	}
}

func FuzzDecodeManifests(f *testing.F) {
	fx := chainFixture(f)
	own, _ := fx.in.Manifests()
	f.Add(chain.EncodeManifests(own))
	f.Add(chain.EncodeManifests(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, err := chain.DecodeManifests(data)
		if err != nil {
			return
		}
		if string(chain.EncodeManifests(bs)) != string(data) {
			t.Fatal("manifest file does not round-trip")
		}
	})
}

func TestWitnessRoundTrip(t *testing.T) {
	f := chainFixture(t)
	w, err := f.in.Witness(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	back, err := chain.DecodeWitness(w.Encode())
	if err != nil || string(back.Encode()) != string(w.Encode()) {
		t.Fatalf("witness round trip: %v", err)
	}
	b2, _ := f.in.Block(2)
	b3, _ := f.in.Block(3)
	txs, err := f.in.Transactions(b3)
	if err != nil {
		t.Fatal(err)
	}
	res, err := back.Execute(b2, b3, b2.StateRoot, txs[0])
	if err != nil || res.Root != b3.Roots[0] || res.Receipt.Status != phases.Accepted {
		t.Fatalf("re-execution from the witness: %+v %v", res, err)
	}
	if _, err := f.in.Witness(9, 0); err == nil || !strings.Contains(err.Error(), "no block with transactions at height 9") {
		t.Fatalf("witness past the head: %v", err)
	}
}

func FuzzDecodeWitness(f *testing.F) {
	fx := chainFixture(f)
	w, err := fx.in.Witness(2, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(w.Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := chain.DecodeWitness(data)
		if err != nil {
			return
		}
		if string(w.Encode()) != string(data) {
			t.Fatal("witness does not round-trip")
		}
	})
}

// TestManifestImportEquivocationFlood: 50 blocks signed at one height hold
// 1,275 conflicting pairs with each other and the chain's block; one
// evidence record proves the fork and the rest are only counted, in this
// import and the next.
func TestManifestImportEquivocationFlood(t *testing.T) {
	f := chainFixture(t)
	own, _ := f.in.Manifests()
	forks := make([]*chain.Block, 51)
	for i := range forks {
		b := *own[2]
		b.Roots = append([][32]byte(nil), b.Roots...)
		b.Roots[0][5] ^= byte(i + 1) // an earlier root: the last is the state root
		if err := chain.SignBlock(context.Background(), &b, f.in.signer); err != nil {
			t.Fatal(err)
		}
		forks[i] = &b
	}
	res, err := f.in.ImportManifests(chain.EncodeManifests(forks[:50]))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 50 || len(res.Evidence) != 1 || res.Unstored != 50*51/2-1 {
		t.Fatalf("import: stored %d, evidence %d, unstored %d; want 50, 1, %d", res.Stored, len(res.Evidence), res.Unstored, 50*51/2-1)
	}
	// The first pair found: the first file block against the chain's block.
	if e := res.Evidence[0]; e.Conflict != chain.SameHeight || string(evidenceKey(e)) != string(evidenceKey(chain.NewEvidence(chain.SameHeight, own[2], forks[0]))) {
		t.Fatalf("evidence: %v between %x and %x", e.Conflict, e.A.Hash(), e.B.Hash())
	}
	ev, err := f.in.Evidence()
	if err != nil || len(ev) != 1 {
		t.Fatalf("stored evidence: %d, %v", len(ev), err)
	}
	before := dumpStore(t, f.in)
	res, err = f.in.ImportManifests(chain.EncodeManifests(forks))
	if err != nil || res.Known != 50 || res.Stored != 1 || len(res.Evidence) != 0 || res.Unstored != 51 {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	if added := diffLines(before, dumpStore(t, f.in)); strings.Count(added, "\n") != 0 || !strings.Contains(added, fmt.Sprintf("%x", importedKey(2, forks[50].Hash()))) {
		t.Fatalf("second import stored more than the new manifest:\n%s", added)
	}
}
