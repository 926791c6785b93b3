package validator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/logbuf"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// testnet is a devnet of validators running in this process on loopback.
type testnet struct {
	t     testing.TB
	dir   string
	devn  *Devnet
	nodes []*Node // nil when stopped
	logs  []*logbuf.Buffer
	// faulty makes validator i go wrong on purpose (Options.faulty).
	faulty map[int]func(abcitypes.Application) abcitypes.Application
	// badDeal makes validator i deal badly in the epochs' DKGs.
	badDeal map[int]dealHook
}

// freeBase returns a base port whose devnet ports are free now.
func freeBase(t testing.TB, n int) int {
	t.Helper()
	base, err := FreeDevnetBase(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// newTestnet writes a devnet of n validators with short timeouts and
// starts them all; every node is stopped when the test ends.
func newTestnet(t testing.TB, n int, o DevnetOptions, faulty map[int]func(abcitypes.Application) abcitypes.Application) *testnet {
	t.Helper()
	return newTestnetDealing(t, n, o, faulty, nil)
}

// newTestnetDealing is newTestnet with validators that deal badly.
func newTestnetDealing(t testing.TB, n int, o DevnetOptions, faulty map[int]func(abcitypes.Application) abcitypes.Application, badDeal map[int]dealHook) *testnet {
	t.Helper()
	o.Validators, o.BasePort = n, freeBase(t, n)
	if o.Instance.Instance == "" && o.Instance.MaxBlockTxs == 0 {
		o.Instance = fractal.DefaultConfig()
	}
	if o.TimeoutCommit == 0 { // short blocks for the tests; the benchmark sets its own
		o.TimeoutPropose, o.TimeoutCommit = time.Second, 300*time.Millisecond
	}
	tn := &testnet{t: t, dir: t.TempDir(), nodes: make([]*Node, n), logs: make([]*logbuf.Buffer, n), faulty: faulty, badDeal: badDeal}
	var err error
	if tn.devn, err = WriteDevnet(filepath.Join(tn.dir, "devnet"), o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := range tn.nodes {
			tn.stop(i)
		}
		if t.Failed() {
			for i, l := range tn.logs {
				if l != nil {
					t.Logf("log of v%d:\n%s", i, tail(l.String(), 4000))
				}
			}
		}
	})
	for i := range n {
		tn.start(i)
	}
	return tn
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (tn *testnet) start(i int) {
	tn.t.Helper()
	if tn.logs[i] == nil {
		tn.logs[i] = &logbuf.Buffer{}
	}
	n, err := Open(tn.devn.Homes[i], Options{Log: tn.logs[i], faulty: tn.faulty[i], badDeal: tn.badDeal[i]})
	if err != nil {
		tn.t.Fatalf("open v%d: %v", i, err)
	}
	if err := n.Start(); err != nil {
		tn.t.Fatalf("start v%d: %v", i, err)
	}
	tn.nodes[i] = n
}

func (tn *testnet) stop(i int) {
	tn.t.Helper()
	if n := tn.nodes[i]; n != nil {
		tn.nodes[i] = nil
		if err := n.Stop(); err != nil {
			tn.t.Errorf("stop v%d: %v", i, err)
		}
		select {
		case err := <-n.Failed():
			tn.t.Errorf("v%d failed: %v", i, err)
		default:
		}
	}
}

// running returns the indices of the running validators.
func (tn *testnet) running() []int {
	var out []int
	for i, n := range tn.nodes {
		if n != nil {
			out = append(out, i)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing the test after timeout.
func (tn *testnet) waitFor(timeout time.Duration, what string, cond func() bool) {
	tn.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tn.t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// decided is validator i's last committed consensus height.
func (tn *testnet) decided(i int) uint64 {
	tn.t.Helper()
	h, _, err := tn.nodes[i].Instance().Decided()
	if err != nil {
		tn.t.Fatal(err)
	}
	return h
}

// submit hands raw to validator i and fails unless it is admitted.
func (tn *testnet) submit(i int, raw []byte) {
	tn.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := tn.nodes[i].Submit(ctx, raw)
	if err != nil {
		tn.t.Fatal(err)
	}
	if r.Code != abci.CodeOK {
		tn.t.Fatalf("v%d refused: code %d: %s", i, r.Code, r.Log)
	}
}

// deploy submits a deploy of src and waits until every running validator
// holds the code; it returns the code's hash.
func (tn *testnet) deploy(src []byte) notes.Hash {
	tn.t.Helper()
	h := sha256.Sum256(src)
	tn.submit(0, fractal.DeployTx(src))
	tn.waitFor(30*time.Second, "the code is deployed everywhere", func() bool {
		for _, i := range tn.running() {
			if _, err := tn.nodes[i].Instance().Code(h); err != nil {
				return false
			}
		}
		return true
	})
	return h
}

// committed waits until every running validator holds an accepted receipt
// for each transaction.
func (tn *testnet) committed(ids ...notes.Hash) {
	tn.t.Helper()
	for _, i := range tn.running() {
		for _, id := range ids {
			tn.waitFor(30*time.Second, fmt.Sprintf("v%d commits %x", i, id[:4]), func() bool {
				rc, err := tn.nodes[i].Instance().Receipt(id)
				if err != nil || rc == nil {
					return false
				}
				if rc.Status != phases.Accepted {
					tn.t.Fatalf("v%d refused %x: %s", i, id[:4], rc.Reason)
				}
				return true
			})
		}
	}
}

// agree checks that the running validators hold the same blocks (the same
// manifest hashes, the app hashes they agreed on) up to the lowest head.
func (tn *testnet) agree() uint64 {
	tn.t.Helper()
	run := tn.running()
	low := uint64(1 << 62)
	for _, i := range run {
		h, err := tn.nodes[i].Instance().Head()
		if err != nil {
			tn.t.Fatal(err)
		}
		low = min(low, h.Height)
	}
	for h := uint64(0); h <= low; h++ {
		var want [32]byte
		for k, i := range run {
			b, err := tn.nodes[i].Instance().Block(h)
			if err != nil {
				tn.t.Fatal(err)
			}
			if k == 0 {
				want = b.Hash()
			} else if b.Hash() != want {
				tn.t.Fatalf("block %d: v%d holds %x, v%d %x", h, run[0], want[:8], i, b.Hash())
			}
		}
	}
	return low
}

// mintedWorld deploys the allow-all predicate and commits a note "coin"
// handed in at validator i.
func (tn *testnet) mintedWorld(i int) *world {
	tn.t.Helper()
	w := newWorld(tn.t)
	src, err := os.ReadFile("../testdata/allow.lua")
	if err != nil {
		tn.t.Fatal(err)
	}
	w.app = tn.deploy(src)
	mint := w.tx(tn.t, "", "coin", "1")
	tn.submit(i, mint.Encode())
	tn.committed(mint.ID())
	return w
}

// world makes the transactions of the tests: notes under one
// application whose predicate allows everything.
type world struct {
	alice keys.PrivateKey
	app   notes.Hash
	nonce uint64
}

func newWorld(t testing.TB) *world {
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &world{alice: k}
}

func (w *world) pattern() notes.Pattern {
	return notes.AnyPattern().WithProvenance(nil).WithApplication(w.app).WithOwner(w.app)
}

// tx creates the note key = value, spending the note at spend when given.
func (w *world) tx(t testing.TB, spend, key, value string) *phases.Tx {
	h := hex.EncodeToString(w.app[:])
	w.nonce++
	tx := &phases.Tx{Nonce: w.nonce, GasLimit: 1_000_000, Write: notes.ConstraintSet{w.pattern()},
		Calculation: fmt.Appendf(nil, "return {{provenance={}, application=%q, owner=%q, key=%q, value=%q}}", h, h, key, value),
		Signers:     []keys.PublicKey{w.alice.Public()}}
	if spend != "" {
		tx.Read = notes.ConstraintSet{w.pattern()}
		tx.Lookup = fmt.Appendf(nil, "return {%q}", w.key(spend).String())
	}
	if err := tx.Sign(rand.Reader, w.alice); err != nil {
		t.Fatal(err)
	}
	return tx
}

func (w *world) key(k string) notes.StateKey {
	return notes.StateKey{Application: w.app, Owner: w.app, Key: []byte(k)}
}

// readTrust reads the devnet's trust.json: the instance's genesis
// validator set, all a checker holds.
func readTrust(t testing.TB, dir string) fractal.Peer {
	raw, err := os.ReadFile(filepath.Join(dir, TrustFile))
	if err != nil {
		t.Fatal(err)
	}
	var p fractal.Peer
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.Validators == nil {
		t.Fatal("trust.json names no validator set")
	}
	return p
}

// TestFourValidators: four validators on loopback deploy code and commit
// transfers with the same blocks (the app hashes they agreed on); a query
// proof from one is checked offline with only the genesis validator set;
// one validator killed, the chain goes on; restarted, it replays and
// catches up and agrees; two killed, no new block and no fork; back, the
// chain moves again.
func TestFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	tn := newTestnet(t, 4, DevnetOptions{}, nil)
	w := tn.mintedWorld(1)
	move := w.tx(t, "coin", "coin2", "1")
	tn.submit(2, move.Encode())
	tn.committed(move.ID())
	tn.agree()

	// A query proof, checked offline against trust.json alone.
	trust := readTrust(t, tn.dir+"/devnet")
	res, err := tn.nodes[3].App().Query(context.Background(), queryProve(w.key("coin2")))
	if err != nil || res.Code != abci.CodeOK {
		t.Fatalf("query: %v %d %s", err, res.Code, res.Log)
	}
	qp, err := chain.DecodeQueryProof(res.Value)
	if err != nil {
		t.Fatal(err)
	}
	st, err := chain.CheckQueryProofBy(qp, trust.Validators, &trust.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Note == nil || string(st.Note.Value) != "1" {
		t.Fatalf("proof states %+v", st)
	}
	other := otherSet(t)
	if _, err := chain.CheckQueryProofBy(qp, other, &trust.ID); err == nil || !strings.Contains(err.Error(), "not the trusted") {
		t.Fatalf("another set: %v", err)
	}

	// One validator down: the chain goes on.
	tn.stop(3)
	h := tn.decided(0)
	tn.waitFor(30*time.Second, "three validators make blocks", func() bool { return tn.decided(0) >= h+3 })
	more := w.tx(t, "coin2", "coin3", "1")
	tn.submit(0, more.Encode())
	tn.committed(more.ID())
	// Back: it replays what it lacks and agrees.
	tn.start(3)
	tn.waitFor(60*time.Second, "v3 catches up", func() bool { return tn.decided(3) >= tn.decided(0) })
	tn.committed(more.ID())
	tn.agree()

	// Two down: no new block, no fork.
	tn.stop(2)
	tn.stop(3)
	time.Sleep(2 * time.Second) // a block under way when they stopped may still commit
	h0, h1 := tn.decided(0), tn.decided(1)
	time.Sleep(4 * time.Second)
	if a, b := tn.decided(0), tn.decided(1); a != h0 || b != h1 {
		t.Fatalf("two of four validators made blocks: %d→%d, %d→%d", h0, a, h1, b)
	}
	tn.agree()
	// Back: blocks again.
	tn.start(2)
	tn.start(3)
	tn.waitFor(60*time.Second, "four validators make blocks again", func() bool {
		for _, i := range tn.running() {
			if tn.decided(i) < h0+2 {
				return false
			}
		}
		return true
	})
	last := w.tx(t, "coin3", "coin4", "1")
	tn.submit(3, last.Encode())
	tn.committed(last.ID())
	tn.agree()
}

func queryProve(k notes.StateKey) *abcitypes.RequestQuery {
	return &abcitypes.RequestQuery{Path: abci.PathProve, Data: []byte(k.String())}
}

// otherSet is a validator set of one random key.
func otherSet(t testing.TB) *certify.ValidatorSet {
	var v certify.Validator
	copy(v.PubKey[:], ed25519.GenPrivKey().PubKey().Bytes())
	v.Power = 1
	vs, err := certify.NewValidatorSet([]certify.Validator{v})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// exportTx spends the note at key and exports it whole to instance to.
func (w *world) exportTx(t *testing.T, key notes.StateKey, to [32]byte) *phases.Tx {
	w.nonce++
	tx := &phases.Tx{Nonce: w.nonce, GasLimit: 1_000_000,
		Read: notes.ConstraintSet{notes.ExactPattern(key)}, Write: notes.ConstraintSet{notes.ExactPattern(key)},
		Lookup:      fmt.Appendf(nil, "return {%q}", key.String()),
		Calculation: fmt.Appendf(nil, "return {}, {{to = %q, note = inputs[1]}}", hex.EncodeToString(to[:])),
		Signers:     []keys.PublicKey{w.alice.Public()}}
	if err := tx.Sign(rand.Reader, w.alice); err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestCrossInstanceBothWays: a note moves from a solo instance to a
// four-validator instance (the claim's manifest signed by the solo
// executor, checked by every validator against its trust file) and back
// (the claim's manifest certified by the validators' commit, checked by
// the solo instance against the validator set in its trust file).
func TestCrossInstanceBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	ctx := context.Background()
	w := newWorld(t)
	src, err := os.ReadFile("../testdata/allow.lua")
	if err != nil {
		t.Fatal(err)
	}
	solo, err := fractal.Init(filepath.Join(t.TempDir(), "solo"), fractal.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer solo.Close()
	if w.app, err = solo.Deploy(src); err != nil {
		t.Fatal(err)
	}
	soloEntry, err := solo.TrustEntry()
	if err != nil {
		t.Fatal(err)
	}
	tn := newTestnet(t, 4, DevnetOptions{Trust: []fractal.Peer{soloEntry}}, nil)
	trust := readTrust(t, tn.dir+"/devnet")
	if _, err := solo.AddPeer(trust); err != nil {
		t.Fatal(err)
	}
	tn.deploy(src)

	// Solo → validators.
	run := func(tx *phases.Tx) {
		t.Helper()
		if _, err := solo.Submit(tx); err != nil {
			t.Fatal(err)
		}
		rc, _, err := solo.SealFor(ctx, tx.ID())
		if err != nil || rc.Status != phases.Accepted {
			t.Fatalf("solo: %v %+v", err, rc)
		}
	}
	run(w.tx(t, "", "gold", "7"))
	run(w.exportTx(t, w.key("gold"), trust.ID))
	recs, err := solo.Exports(&trust.ID)
	if err != nil || len(recs) != 1 {
		t.Fatalf("exports %d %v", len(recs), err)
	}
	claim, err := solo.ExportClaim(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	imp := chain.ImportTx(claim, w.alice.Public())
	if err := imp.Sign(rand.Reader, w.alice); err != nil {
		t.Fatal(err)
	}
	tn.submit(1, imp.Encode())
	tn.committed(imp.ID())
	var there notes.StateKey // the note with the solo instance in its provenance
	for _, i := range tn.running() {
		rc, err := tn.nodes[i].Instance().Receipt(imp.ID())
		if err != nil {
			t.Fatal(err)
		}
		there = rc.Outputs[0].Key
		if n := live(t, tn.nodes[i].Instance(), there); n == nil || string(n.Value) != "7" || len(n.Provenance) != 1 || [32]byte(n.Provenance[0]) != solo.ID() {
			t.Fatalf("v%d: imported note %+v", i, n)
		}
	}

	// Validators → solo, with a claim certified by their commit.
	back := w.exportTx(t, there, solo.ID())
	tn.submit(2, back.Encode())
	tn.committed(back.ID())
	recs, err = tn.nodes[3].Instance().Exports(ptr(solo.ID()))
	if err != nil || len(recs) != 1 {
		t.Fatalf("exports %d %v", len(recs), err)
	}
	c, err := Dial(tn.devn.RPC[3])
	if err != nil {
		t.Fatal(err)
	}
	certified, err := c.Claim(ctx, recs[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(certified.Certificate) == 0 {
		t.Fatal("the validators' claim carries no certificate")
	}
	// A claim whose certificate is gone is refused, changing nothing.
	bare := *certified
	bare.Certificate = nil
	if rc, _, err := solo.ImportClaim(ctx, bare.Encode(), w.alice); err == nil && rc.Status == phases.Accepted {
		t.Fatal("a claim without its certificate was imported")
	}
	rc, _, err := solo.ImportClaim(ctx, certified.Encode(), w.alice)
	if err != nil || rc.Status != phases.Accepted {
		t.Fatalf("import on solo: %v %+v", err, rc)
	}
	if n := live(t, solo, rc.Outputs[0].Key); n == nil || string(n.Value) != "7" || len(n.Provenance) != 2 || [32]byte(n.Provenance[0]) != trust.ID {
		t.Fatalf("solo: note back %+v", n)
	}
}

// live is the note living at k in in, nil when none does.
func live(t *testing.T, in *fractal.Instance, k notes.StateKey) *notes.Note {
	qp, err := in.Prove(k)
	if err != nil {
		t.Fatal(err)
	}
	return qp.Note
}

func ptr[T any](v T) *T { return &v }
