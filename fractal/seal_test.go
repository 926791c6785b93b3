package fractal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// fixture is an instance with the test predicates deployed and two keys.
type fixture struct {
	in                      *Instance
	home                    string
	allow, deny, boom, spin notes.Hash
	signed                  notes.Hash
	alice, bob              keys.PrivateKey
	nonce                   uint64
}

// oneKeyConfig is DefaultConfig with the per-key limit off (decision
// 142), for tests and benchmarks that put several transactions signed by
// one key in one block, which the limit would spread over several blocks;
// the limit has tests of its own (perkey_test.go).
func oneKeyConfig() Config {
	c := DefaultConfig()
	c.PerKeyLimit = false
	return c
}

func newFixture(t testing.TB, cfg Config, opts ...Option) *fixture {
	t.Helper()
	home := t.TempDir() + "/inst"
	in, err := Init(home, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.db.Close() })
	f := &fixture{in: in, home: home}
	for name, h := range map[string]*notes.Hash{"allow": &f.allow, "deny": &f.deny, "boom": &f.boom, "spin": &f.spin, "signed": &f.signed} {
		*h = deploy(t, in, "testdata/"+name+".lua")
	}
	f.alice, f.bob = genKey(t), genKey(t)
	return f
}

// reopen closes f's instance and opens it again (closed at the test's end).
func (f *fixture) reopen(t testing.TB) {
	t.Helper()
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	f.in = in
	t.Cleanup(func() { in.Close() })
}

func deploy(t testing.TB, in *Instance, path string) notes.Hash {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := in.Deploy(src)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func genKey(t testing.TB) keys.PrivateKey {
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// luaNote renders a note as a Lua table constructor.
func luaNote(app, owner notes.Hash, key, value string) string {
	return fmt.Sprintf("{provenance={}, application=%q, owner=%q, key=%q, value=%q}",
		hex.EncodeToString(app[:]), hex.EncodeToString(owner[:]), key, value)
}

// appPattern allows every key of one application and owner.
func appPattern(app, owner notes.Hash) notes.Pattern {
	return notes.AnyPattern().WithProvenance(nil).WithApplication(app).WithOwner(owner)
}

// mint creates notes (key → value) under app and owner, signed by signer.
func (f *fixture) mint(app, owner notes.Hash, signer keys.PrivateKey, kv ...string) *phases.Tx {
	var out []string
	for i := 0; i < len(kv); i += 2 {
		out = append(out, luaNote(app, owner, kv[i], kv[i+1]))
	}
	f.nonce++
	return f.sign(&phases.Tx{
		Nonce: f.nonce, GasLimit: 1_000_000,
		Write:       notes.ConstraintSet{appPattern(app, owner)},
		Calculation: []byte("return {" + strings.Join(out, ", ") + "}"),
	}, signer)
}

// move spends the note at key and creates the given notes (key → value),
// all under app and owner.
func (f *fixture) move(app, owner notes.Hash, signer keys.PrivateKey, key string, kv ...string) *phases.Tx {
	tx := f.mint(app, owner, signer, kv...)
	sk := notes.StateKey{Application: app, Owner: owner, Key: []byte(key)}
	tx.Read = notes.ConstraintSet{appPattern(app, owner)}
	tx.Lookup = []byte(fmt.Sprintf("return {%q}", sk.String()))
	tx.Signatures = nil
	return f.sign(tx, signer)
}

func (f *fixture) sign(tx *phases.Tx, signers ...keys.PrivateKey) *phases.Tx {
	tx.Signers, tx.Signatures = nil, nil
	for _, k := range signers {
		tx.Signers = append(tx.Signers, k.Public())
	}
	for _, k := range signers {
		if err := tx.Sign(rand.Reader, k); err != nil {
			panic(err)
		}
	}
	return tx
}

// commit submits tx, seals, and fails the test unless it was accepted.
func (f *fixture) commit(t testing.TB, tx *phases.Tx) *Sealed {
	t.Helper()
	if _, err := f.in.Submit(tx); err != nil {
		t.Fatal(err)
	}
	s, err := f.in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range s.Receipts {
		if err := rc.Err(); err != nil {
			t.Fatalf("transaction %x: %v", rc.TxID[:8], err)
		}
	}
	return s
}

func liveKeys(t testing.TB, in *Instance) []string {
	t.Helper()
	list, err := in.Notes(notes.AnyPattern())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range list {
		out = append(out, string(n.Key)+"="+string(n.Value))
	}
	return out
}

func TestMintMoveAndBlocks(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	s := f.commit(t, f.mint(f.allow, f.allow, f.alice, "a", "1", "b", "2"))
	if s.Block == nil || s.Block.Height != 1 || len(s.Block.TxIDs) != 1 {
		t.Fatalf("block = %+v", s.Block)
	}
	s2 := f.commit(t, f.move(f.allow, f.allow, f.alice, "a", "c", "3"))
	if got := strings.Join(liveKeys(t, f.in), " "); got != "b=2 c=3" {
		t.Fatalf("live notes %q", got)
	}
	if s2.Block.Prev != s.Block.Hash() || s2.Block.Height != 2 {
		t.Fatal("block 2 does not chain to block 1")
	}
	if s2.Block.StateRoot == s.Block.StateRoot || s.Block.StateRoot == [32]byte{} {
		t.Fatal("state root did not move")
	}
	rc, err := f.in.Receipt(s2.Block.TxIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Inputs) != 1 || len(rc.Outputs) != 1 || string(rc.Outputs[0].Key.Key) != "c" {
		t.Fatalf("receipt %+v", rc)
	}
	for h := uint64(0); h <= 2; h++ {
		b, err := f.in.Block(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := chain.VerifyBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	// Sealing an empty queue writes nothing.
	before := dumpStore(t, f.in)
	if s, err := f.in.Seal(context.Background()); err != nil || s.Block != nil || len(s.Receipts) != 0 {
		t.Fatalf("empty seal: %+v, %v", s, err)
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("empty seal changed the store")
	}
}

// TestRefusalsChangeNothing runs each bad input of issue 3 against a store
// holding a live note, and checks the refusal's reason and that the whole
// store is byte-for-byte as before.
func TestRefusalsChangeNothing(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	f.commit(t, f.mint(f.allow, f.signed, f.alice, "coin", f.alice.Public().String()))
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "taken", "x"))
	replayed := f.mint(f.allow, f.allow, f.alice, "once", "1")
	f.commit(t, replayed)
	unknown := notes.Hash{0xee}

	type refusal struct {
		name   string
		tx     func() *phases.Tx
		submit string // wanted Submit error, or "" when Submit accepts it
		seal   string // wanted refusal reason at seal
	}
	cases := []refusal{
		{"unsigned", func() *phases.Tx {
			tx := f.mint(f.allow, f.allow, f.alice, "u", "1")
			tx.Signatures = nil
			return tx
		}, "transaction is unsigned", ""},
		{"wrong signature", func() *phases.Tx {
			tx := f.mint(f.allow, f.allow, f.alice, "w", "1")
			tx.Signatures[0][5] ^= 1
			return tx
		}, "does not verify", ""},
		{"signature by another key", func() *phases.Tx {
			tx := f.mint(f.allow, f.allow, f.alice, "w", "1")
			other := f.sign(f.mint(f.allow, f.allow, f.bob, "w", "1"), f.bob)
			tx.Signatures[0] = other.Signatures[0]
			return tx
		}, "does not verify", ""},
		{"signer missing", func() *phases.Tx {
			tx := f.sign(f.mint(f.allow, f.allow, f.alice, "m", "1"), f.alice, f.bob)
			tx.Signatures[1] = nil
			return tx
		}, "signer 2 (" + f.bob.Public().String() + ") has not signed", ""},
		{"no signers", func() *phases.Tx {
			return f.sign(f.mint(f.allow, f.allow, f.alice, "n", "1"))
		}, "transaction lists no signers", ""},
		{"replayed", func() *phases.Tx { return replayed }, "replayed transaction: already executed in block 3", ""},
		{"write outside constraints", func() *phases.Tx {
			tx := f.mint(f.allow, f.allow, f.alice, "o", "1")
			tx.Write = notes.ConstraintSet{appPattern(f.allow, f.deny)}
			return f.sign(tx, f.alice)
		}, "", "refused in calculation: output 1 at /" + hex.EncodeToString(f.allow[:]) + "/" + hex.EncodeToString(f.allow[:]) + "/6f is outside the write constraints"},
		{"read outside constraints", func() *phases.Tx {
			tx := f.move(f.allow, f.allow, f.alice, "taken", "t2", "1")
			tx.Read = notes.ConstraintSet{appPattern(f.allow, f.deny)}
			return f.sign(tx, f.alice)
		}, "", "outside the read constraints"},
		{"spend a note that is gone", func() *phases.Tx {
			return f.move(f.allow, f.allow, f.alice, "never", "g", "1")
		}, "", "no live note at"},
		{"create at an occupied key", func() *phases.Tx {
			return f.mint(f.allow, f.allow, f.alice, "taken", "again")
		}, "", "a live note is already there"},
		{"unknown code", func() *phases.Tx {
			return f.mint(unknown, f.allow, f.alice, "k", "1")
		}, "", "refused in validity: application predicate ee00000000000000: unknown code ee00"},
		{"predicate refuses", func() *phases.Tx {
			return f.mint(f.deny, f.allow, f.alice, "k", "1")
		}, "", fmt.Sprintf("refused in validity: application predicate %x: returned false", f.deny[:8])},
		{"predicate errors", func() *phases.Tx {
			return f.mint(f.allow, f.boom, f.alice, "k", "1")
		}, "", fmt.Sprintf("refused in validity: output 1 owner predicate %x: code:%x:1: boom", f.boom[:8], f.boom[:8])},
		{"predicate runs out of gas", func() *phases.Tx {
			return f.mint(f.spin, f.allow, f.alice, "k", "1")
		}, "", fmt.Sprintf("application predicate %x: code:%x:2: out of gas", f.spin[:8], f.spin[:8])},
		{"owner did not sign", func() *phases.Tx {
			return f.move(f.allow, f.signed, f.bob, "coin", "stolen", f.bob.Public().String())
		}, "", fmt.Sprintf("refused in validity: input 1 owner predicate %x: returned false", f.signed[:8])},
		{"lua error in lookup", func() *phases.Tx {
			tx := f.move(f.allow, f.allow, f.alice, "taken", "t3", "1")
			tx.Lookup = []byte("error('no')")
			return f.sign(tx, f.alice)
		}, "", "refused in lookup: lookup:1: no"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dumpStore(t, f.in)
			tx := c.tx()
			_, err := f.in.Submit(tx)
			switch {
			case c.submit != "":
				if err == nil || !strings.Contains(err.Error(), c.submit) {
					t.Fatalf("submit: %v, want %q", err, c.submit)
				}
			case err != nil:
				t.Fatalf("submit: %v", err)
			default:
				s, err := f.in.Seal(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if s.Block != nil || len(s.Receipts) != 1 {
					t.Fatalf("seal made block %v with %d receipts", s.Block, len(s.Receipts))
				}
				if err := s.Receipts[0].Err(); err == nil || !strings.Contains(err.Error(), c.seal) {
					t.Fatalf("receipt: %v, want %q", err, c.seal)
				}
			}
			if after := dumpStore(t, f.in); after != before {
				t.Fatalf("store changed:\n%s", diffLines(before, after))
			}
		})
	}
}

func TestSubmitRefusesOversizeAndQueued(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxTxBytes = 1024
	f := newFixture(t, cfg)
	before := dumpStore(t, f.in)
	big := f.mint(f.allow, f.allow, f.alice, "k", strings.Repeat("v", 2000))
	if _, err := f.in.Submit(big); err == nil || !strings.Contains(err.Error(), "bytes, limit 1024") {
		t.Fatalf("oversize: %v", err)
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("oversize refusal changed the store")
	}
	tx := f.mint(f.allow, f.allow, f.alice, "k", "v")
	if _, err := f.in.Submit(tx); err != nil {
		t.Fatal(err)
	}
	queued := dumpStore(t, f.in)
	if _, err := f.in.Submit(tx); err == nil || !strings.Contains(err.Error(), "already queued") {
		t.Fatalf("second submit: %v", err)
	}
	if dumpStore(t, f.in) != queued {
		t.Fatal("queued refusal changed the store")
	}
}

// diffLines shows the lines only in a or only in b.
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
