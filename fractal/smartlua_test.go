package fractal

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// The Smart Lua seed's public keys, in the order of its balance table.
const (
	seedPub1 = "HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE="
	seedPub2 = "Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw="
	seedPub3 = "ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM="
)

// luaChain is an instance with the smartlua application predicate
// (examples/smartlua) and the sig owner predicate (examples/sig) deployed,
// and the seed's first key, which owns the chain's note and signs its steps.
type luaChain struct {
	*fixture
	pool       *vp.Pool
	app, owner notes.Hash
	k1         keys.PrivateKey
	key        string // the chain note's key: "<owner>:bank"
}

func newChainFixture(t *testing.T) *luaChain {
	t.Helper()
	k1, err := keys.ParsePrivateKey("2KgXomoYNRdlBq+CPZcw+mze5UDUp/iCVDBuDIRLym0=")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, DefaultConfig())
	return &luaChain{
		fixture: f, pool: vp.NewPool(), k1: k1, key: seedPub1 + ":bank",
		app:   deploy(t, f.in, "../examples/smartlua/smartlua.lua"),
		owner: deploy(t, f.in, "../examples/sig/sig.lua"),
	}
}

// record runs fragment on prev (nil: an initial state) and signs the
// result with signers, as `fractal smartlua apply` does.
func (c *luaChain) record(t *testing.T, prev *smartlua.Record, fragment string, signers ...keys.PrivateKey) *smartlua.Record {
	t.Helper()
	tr := &smartlua.Transition{Version: smartlua.Version, Fragment: []byte(fragment)}
	var prevState []byte
	if prev != nil {
		tr.Prev, prevState = &prev.Hash, prev.State
	}
	for _, k := range signers {
		tr.Keys = append(tr.Keys, k.Public())
	}
	out, err := smartlua.Execute(c.pool, tr, prevState)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := smartlua.Sign(rand.Reader, out.Hash, signers)
	if err != nil {
		t.Fatal(err)
	}
	return &smartlua.Record{Hash: out.Hash, Transition: tr, State: out.State, Sigs: sigs}
}

// initialBalances is the initial state of the seed's balance chain
// (examples/smartlua/balances.lua).
func (c *luaChain) initialBalances(t *testing.T) *smartlua.Record {
	t.Helper()
	src, err := os.ReadFile("../examples/smartlua/balances.lua")
	if err != nil {
		t.Fatal(err)
	}
	return c.record(t, nil, string(src))
}

// step is a transaction that spends the chain's live note (when spend) and
// creates the note holding value, carried in the extradata.
func (c *luaChain) step(spend bool, value []byte, gasLimit uint64) *phases.Tx {
	c.nonce++
	p := appPattern(c.app, c.owner)
	tx := &phases.Tx{
		Nonce: c.nonce, GasLimit: gasLimit, Extradata: value,
		Write: notes.ConstraintSet{p},
		Calculation: []byte(fmt.Sprintf("local n = %s\nn.value = extradata\nreturn {n}",
			luaNote(c.app, c.owner, c.key, ""))),
	}
	if spend {
		sk := notes.StateKey{Application: c.app, Owner: c.owner, Key: []byte(c.key)}
		tx.Read = notes.ConstraintSet{p}
		tx.Lookup = []byte(fmt.Sprintf("return {%q}", sk.String()))
	}
	return c.sign(tx, c.k1)
}

// seal submits tx, seals it alone and returns its receipt.
func (c *luaChain) seal(t *testing.T, tx *phases.Tx) *phases.Receipt {
	t.Helper()
	if _, err := c.in.Submit(tx); err != nil {
		t.Fatal(err)
	}
	s, err := c.in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Receipts) != 1 {
		t.Fatalf("%d receipts", len(s.Receipts))
	}
	return s.Receipts[0]
}

// live is the value of the chain's live note, or nil.
func (c *luaChain) live(t *testing.T) []byte {
	t.Helper()
	list, err := c.in.Notes(appPattern(c.app, c.owner))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) > 1 {
		t.Fatalf("%d chain notes", len(list))
	}
	if len(list) == 0 {
		return nil
	}
	return list[0].Value
}

// balances reads the balance table of the state held in a chain note's
// value, in canonical key order (the seed's third, first, second key).
func balances(t *testing.T, value []byte) string {
	t.Helper()
	rec, err := smartlua.DecodeRecord(value)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vp.ShowState(rec.State)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range v.Objects {
		for _, e := range o.Entries {
			if strings.HasPrefix(e.Key, `["`) && strings.HasSuffix(e.Key, `="]`) {
				out = append(out, e.Key[2:8]+"="+e.Value)
			}
		}
	}
	return strings.Join(out, " ")
}

// TestSmartLuaOnInstance puts the seed's balance chain on an instance: a
// note holds the initial state, a transaction replaces it by the verified
// successor (a transfer of 3), and the spend-once rule leaves no way to
// commit a second successor of the same state. Forged successors are
// refused by the application predicate and change nothing.
func TestSmartLuaOnInstance(t *testing.T) {
	c := newChainFixture(t)
	init := c.initialBalances(t)
	next := c.record(t, init, "transfer('"+seedPub2+"', 3)", c.k1)
	other := c.record(t, init, "transfer('"+seedPub3+"', 3)", c.k1)

	// A new chain must start from an initial state.
	before := dumpStore(t, c.in)
	rc := c.seal(t, c.step(false, smartlua.EncodeRecord(next), 1_000_000))
	wantRefused(t, rc, "is not an initial state")
	if dumpStore(t, c.in) != before {
		t.Fatal("refused chain start changed the store")
	}

	if rc := c.seal(t, c.step(false, smartlua.EncodeRecord(init), 1_000_000)); rc.Err() != nil {
		t.Fatalf("chain start: %v", rc.Err())
	}
	if got := balances(t, c.live(t)); got != "ByRn70=10 HbaGF7=10 Ifni9g=10" {
		t.Fatalf("initial balances %s", got)
	}
	initNote := c.live(t)

	rc = c.seal(t, c.step(true, smartlua.EncodeRecord(next), 1_000_000))
	if rc.Err() != nil {
		t.Fatalf("transfer: %v", rc.Err())
	}
	// The predicate's gas includes the check: at least the re-execution's
	// gas and the bytes of both states.
	out, err := smartlua.Execute(c.pool, next.Transition, init.State)
	if err != nil {
		t.Fatal(err)
	}
	charged := smartlua.GasCheck + smartlua.GasPerSig + out.Result.GasUsed +
		uint64(len(initNote)+len(smartlua.EncodeRecord(next)))/smartlua.BytesPerGas
	if rc.Gas.Validity < charged {
		t.Errorf("validity gas %d, want at least the check's %d", rc.Gas.Validity, charged)
	}
	if got := balances(t, c.live(t)); got != "ByRn70=10 HbaGF7=7 Ifni9g=13" {
		t.Fatalf("balances after the transfer %s, want key1 7, key2 13, key3 10", got)
	}

	// A second successor of the initial state: the note that held it is
	// spent, so no transaction can name it; offered as the successor of the
	// live note it does not follow.
	before = dumpStore(t, c.in)
	initKey := notes.StateKey{Application: c.app, Owner: c.owner, Key: []byte(c.key)}
	fork := c.step(true, smartlua.EncodeRecord(other), 1_000_000)
	fork.Lookup = []byte("return {" + luaNoteValue(c.app, c.owner, c.key, initNote) + "}")
	c.sign(fork, c.k1)
	wantRefused(t, c.seal(t, fork), "input 1: the live note at "+initKey.String()+" differs from the one named")
	wantRefused(t, c.seal(t, c.step(true, smartlua.EncodeRecord(other), 1_000_000)),
		"does not follow state "+next.Hash.String())

	// Successors of the live state that are not verified.
	forged := *c.record(t, next, "transfer('"+seedPub2+"', 1)", c.k1)
	forged.State = next.State // signed, but not what re-execution gives
	forged.Hash = smartlua.StateHash(forged.Transition, forged.State)
	forged.Sigs, _ = smartlua.Sign(rand.Reader, forged.Hash, []keys.PrivateKey{c.k1})
	good := c.record(t, next, "transfer('"+seedPub2+"', 1)", c.k1)
	badSig := *good
	badSig.Sigs = [][]byte{make([]byte, keys.SignatureSize)}
	unsigned := *good
	unsigned.Sigs = nil
	tampered := smartlua.EncodeRecord(good)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"wrongly executed", smartlua.EncodeRecord(&forged), "stored state differs from re-execution"},
		{"bad signature", smartlua.EncodeRecord(&badSig), "signature 1 (key " + seedPub1 + ")"},
		{"unsigned", smartlua.EncodeRecord(&unsigned), "0 signatures for 1 keys"},
		{"tampered state byte", tampered, "signature 1 (key " + seedPub1 + ")"},
		{"not a record", []byte("balances: 7, 13, 10"), "smartlua: decode record"},
	} {
		rc := c.seal(t, c.step(true, tc.value, 1_000_000))
		if rc.Status == phases.Accepted || rc.Predicate.Role != phases.RoleApplication || !strings.Contains(rc.Reason, tc.want) {
			t.Errorf("%s: %v (predicate %v), want the application predicate's %q", tc.name, rc.Err(), rc.Predicate, tc.want)
		}
		if dumpStore(t, c.in) != before {
			t.Fatalf("%s: refused step changed the store", tc.name)
		}
	}

	// The check is charged to the application predicate's own meter: lookup
	// and calculation take 113 gas; the three predicates (application, the
	// input's and the output's owner) each get a third of the rest. The
	// application predicate needs 3885 (its Lua and the check together), the
	// owners 171 together. With a share of 300 it runs out in the check
	// (line 32), with 3884 just after it (line 34); a share of 3885 (limit
	// 11768) is exactly enough.
	for limit, want := range map[uint64]string{
		1013:  "code:f3b184a864e1e161:32: out of gas (limit 300)",
		11767: "code:f3b184a864e1e161:34: out of gas (limit 3884)",
	} {
		wantRefused(t, c.seal(t, c.step(true, smartlua.EncodeRecord(good), limit)), want)
		if dumpStore(t, c.in) != before {
			t.Fatal("step out of gas changed the store")
		}
	}
	if rc := c.seal(t, c.step(true, smartlua.EncodeRecord(good), 11768)); rc.Err() != nil || rc.Gas.Validity != 4056 {
		t.Fatalf("second transfer with exactly enough gas: %v, validity gas %d", rc.Err(), rc.Gas.Validity)
	}
	if got := balances(t, c.live(t)); got != "ByRn70=10 HbaGF7=6 Ifni9g=14" {
		t.Fatalf("balances after the second transfer %s", got)
	}
}

// luaNoteValue is luaNote with a value of any bytes (a decimal-escaped Lua
// string).
func luaNoteValue(app, owner notes.Hash, key string, value []byte) string {
	var b strings.Builder
	for _, c := range value {
		fmt.Fprintf(&b, "\\%d", c)
	}
	n := luaNote(app, owner, key, "")
	return strings.Replace(n, `value=""`, `value="`+b.String()+`"`, 1)
}

func wantRefused(t *testing.T, rc *phases.Receipt, want string) {
	t.Helper()
	if rc.Status == phases.Accepted || !strings.Contains(rc.Reason, want) {
		t.Fatalf("%v, want refused with %q", rc.Err(), want)
	}
}
