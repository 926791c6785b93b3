package smartlua

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/vp"
)

var seedKeys = []string{
	"2KgXomoYNRdlBq+CPZcw+mze5UDUp/iCVDBuDIRLym0=",
	"cHute+Qu7HqkIbCqy0FdlHnhU+RRg6vtnlAFdgyZbVw=",
	"oC6x+LFZdNsBpwsKEn6SSoGDrIaMpZ9HD1MKQ0ogqWg=",
}

func seedKey(t testing.TB, i int) keys.PrivateKey {
	t.Helper()
	k, err := keys.ParsePrivateKey(seedKeys[i])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "smartlua", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chain is a store with its verifier, for tests.
type chain struct {
	store *Store
	v     *Verifier
	pool  *vp.Pool
	dir   string
}

func newChain(t testing.TB) *chain {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := vp.NewPool()
	return &chain{store: s, v: NewVerifier(pool, s.Get), pool: pool, dir: dir}
}

func (c *chain) apply(t testing.TB, prev *Hash, frag string, signers ...keys.PrivateKey) *Record {
	t.Helper()
	rec, _, err := Apply(c.store, c.v, rand.Reader, prev, []byte(frag), signers)
	if err != nil {
		t.Fatalf("apply %q: %v", frag, err)
	}
	return rec
}

func transfer(to int, amount string) string {
	pubs := []string{"HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=", "Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw=", "ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM="}
	target := "'nobody'"
	if to >= 0 {
		target = "'" + pubs[to] + "'"
	}
	return fmt.Sprintf("transfer(%s, %s)", target, amount)
}

func balancesOf(t *testing.T, st []byte) string {
	t.Helper()
	v, err := vp.ShowState(st)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range v.Objects {
		if len(o.Entries) == 3 {
			for _, e := range o.Entries {
				out = append(out, e.Value)
			}
		}
	}
	return strings.Join(out, " ")
}

func TestSeedBalanceExample(t *testing.T) {
	c := newChain(t)
	k1, k2, k3 := seedKey(t, 0), seedKey(t, 1), seedKey(t, 2)
	init := c.apply(t, nil, string(readExample(t, "balances.lua")))
	// Balances are listed in canonical key order: key 3, key 1, key 2.
	if got := balancesOf(t, init.State); got != "10 10 10" {
		t.Fatalf("initial balances %s", got)
	}
	rec := c.apply(t, &init.Hash, transfer(1, "3"), k1)
	if got := balancesOf(t, rec.State); got != "10 7 13" {
		t.Fatalf("balances after transfer: %s, want key1 7, key2 13, key3 10", got)
	}
	before, _ := c.store.Hashes()
	for _, tc := range []struct {
		name    string
		frag    string
		signers []keys.PrivateKey
		want    string
	}{
		{"two signers", transfer(2, "1"), []keys.PrivateKey{k1, k2}, "assertion failed"},
		{"no signer", transfer(2, "1"), nil, "assertion failed"},
		{"overdraft", transfer(2, "8"), []keys.PrivateKey{k1}, "assertion failed"},
		{"non-integer amount", transfer(2, "1.5"), []keys.PrivateKey{k1}, "assertion failed"},
		{"unknown target", transfer(-1, "1"), []keys.PrivateKey{k1}, "assertion failed"},
		{"to oneself", transfer(0, "1"), []keys.PrivateKey{k1}, "assertion failed"},
		{"assigning a global", "transfer = function() end", []keys.PrivateKey{k1}, "globals are read-only after the initial state"},
		{"new global", "balances = {}", []keys.PrivateKey{k3}, "globals are read-only after the initial state"},
	} {
		got, _, err := Apply(c.store, c.v, rand.Reader, &rec.Hash, []byte(tc.frag), tc.signers)
		if err == nil || !strings.Contains(err.Error(), tc.want) || got != nil {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	after, _ := c.store.Hashes()
	if len(after) != len(before) {
		t.Errorf("refused transitions stored something: %d records, had %d", len(after), len(before))
	}
	// A fresh verifier accepts the chain, reporting each record.
	var seen []string
	n, err := VerifyStore(c.store, NewVerifier(vp.NewPool(), c.store.Get), func(done, total int) {
		seen = append(seen, fmt.Sprintf("%d/%d", done, total))
	})
	if err != nil || n != 2 || strings.Join(seen, " ") != "1/2 2/2" {
		t.Fatalf("verify: %d, %v, progress %v", n, err, seen)
	}
}

func TestFork(t *testing.T) {
	c := newChain(t)
	k1 := seedKey(t, 0)
	init := c.apply(t, nil, string(readExample(t, "balances.lua")))
	a := c.apply(t, &init.Hash, transfer(1, "3"), k1)
	// The maker refuses a second successor.
	_, _, err := Apply(c.store, c.v, rand.Reader, &init.Hash, []byte(transfer(2, "3")), []keys.PrivateKey{k1})
	var fe *ForkError
	if !errors.As(err, &fe) || fe.Prev != init.Hash || fe.First.Hash != a.Hash {
		t.Fatalf("second successor: %v", err)
	}
	// So does a fresh store's Put, and a verifier that saw the first.
	b := &Record{Transition: &Transition{Version: Version, Prev: &init.Hash, Fragment: []byte(transfer(2, "3")), Keys: []keys.PublicKey{k1.Public()}}}
	out, err := Execute(c.pool, b.Transition, init.State)
	if err != nil {
		t.Fatal(err)
	}
	b.Hash, b.State = out.Hash, out.State
	if b.Sigs, err = Sign(rand.Reader, b.Hash, []keys.PrivateKey{k1}); err != nil {
		t.Fatal(err)
	}
	if err := c.store.Put(b); !errors.As(err, &fe) || fe.Second.Hash != b.Hash {
		t.Fatalf("put: %v", err)
	}
	if err := c.v.Check(b); !errors.As(err, &fe) || fe.First.Hash != a.Hash || fe.Second.Hash != b.Hash {
		t.Fatalf("check: %v", err)
	}
	want := fmt.Sprintf("smartlua: fork: state %s has two successors, %s and %s", init.Hash, a.Hash, b.Hash)
	if fe.Error() != want {
		t.Errorf("fork error %q", fe)
	}
	// Both branches planted in the folder behind the index's back: verify
	// reports the fork.
	for kind, data := range map[string][]byte{"states": b.State, "signatures": EncodeSigs(b.Sigs), "transitions": b.Transition.Encode()} {
		if err := os.WriteFile(filepath.Join(c.dir, kind, b.Hash.String()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := VerifyStore(c.store, NewVerifier(vp.NewPool(), c.store.Get), nil); !errors.As(err, &fe) {
		t.Fatalf("verify store with a fork: %v", err)
	}
}

// Every stored byte of a state, transition or signature list matters.
func TestTamperingCaught(t *testing.T) {
	c := newChain(t)
	k1 := seedKey(t, 0)
	init := c.apply(t, nil, string(readExample(t, "balances.lua")), seedKey(t, 2))
	rec := c.apply(t, &init.Hash, transfer(1, "3"), k1)
	pool := vp.NewPool()
	for _, h := range []Hash{init.Hash, rec.Hash} {
		for _, kind := range []string{"states", "transitions", "signatures"} {
			path := filepath.Join(c.dir, kind, h.String())
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range orig {
				bad := bytes.Clone(orig)
				bad[i] ^= 0x20
				if err := os.WriteFile(path, bad, 0o644); err != nil {
					t.Fatal(err)
				}
				if _, err := VerifyStore(c.store, NewVerifier(pool, c.store.Get), nil); err == nil {
					t.Fatalf("%s/%s byte %d: tampering not caught", kind, h, i)
				}
			}
			if err := os.WriteFile(path, orig, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The successor index too.
	next := filepath.Join(c.dir, "next", init.Hash.String())
	if err := os.WriteFile(next, []byte(init.Hash.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyStore(c.store, NewVerifier(pool, c.store.Get), nil); err == nil || !strings.Contains(err.Error(), "successor index") {
		t.Fatalf("tampered index: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	c := newChain(t)
	k1, k2 := seedKey(t, 0), seedKey(t, 1)
	init := c.apply(t, nil, string(readExample(t, "balances.lua")))
	rec := c.apply(t, &init.Hash, transfer(1, "3"), k1)
	check := func(name string, r *Record, want string) {
		t.Helper()
		v := NewVerifier(vp.NewPool(), c.store.Get)
		if err := v.Verify(init.Hash); err != nil {
			t.Fatal(err)
		}
		if err := v.Check(r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	cp := func() *Record { r := *rec; return &r }
	r := cp()
	r.Sigs = nil
	check("missing signature", r, "0 signatures for 1 keys")
	r = cp()
	r.Sigs, _ = Sign(rand.Reader, rec.Hash, []keys.PrivateKey{k2})
	check("wrong signer", r, "signature 1")
	r = cp()
	r.State = init.State
	check("state not re-executed", r, "stored state differs from re-execution")
	r = cp()
	r.Hash = init.Hash
	r.Sigs, _ = Sign(rand.Reader, r.Hash, []keys.PrivateKey{k1})
	check("wrong hash", r, "re-execution gives hash")
	r = cp()
	other := Hash{1}
	r.Transition = &Transition{Version: Version, Prev: &other, Fragment: rec.Transition.Fragment, Keys: rec.Transition.Keys}
	check("unknown previous", r, "not verified")
	if err := NewVerifier(vp.NewPool(), c.store.Get).Verify(other); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hash: %v", err)
	}
}

// pairs sees the same order for the maker and the verifier: the order is
// part of the state the fragment writes, and verification re-executes it.
func TestPairsOrderAgrees(t *testing.T) {
	c := newChain(t)
	init := c.apply(t, nil, `local t = {z = 1, [3] = 1, a = 1, [1] = 1, m = 1, [2.5] = 1, [true] = 1}
local seen = {}
function record() local s = '' for k in pairs(t) do s = s .. tostring(k) .. ',' end; seen[#seen + 1] = s; t['k' .. #seen] = 1 end
function last() return seen[#seen] end`)
	r1 := c.apply(t, &init.Hash, "record()")
	r2 := c.apply(t, &r1.Hash, "record()")
	rec, res, err := Apply(c.store, c.v, rand.Reader, &r2.Hash, []byte("return last()"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Values[0]; got != "1,3,true,2.5,a,k1,m,z," {
		t.Errorf("pairs order %q", got)
	}
	if _, err := VerifyStore(c.store, NewVerifier(vp.NewPool(), c.store.Get), nil); err != nil {
		t.Fatal(err)
	}
	_ = rec
}

func TestTransitionEncoding(t *testing.T) {
	prev := Hash{9}
	tr := &Transition{Version: Version, Prev: &prev, Fragment: []byte("x()"), Keys: []keys.PublicKey{seedKey(t, 0).Public()}}
	b := tr.Encode()
	got, err := DecodeTransition(b)
	if err != nil || !bytes.Equal(got.Encode(), b) {
		t.Fatalf("round trip: %v", err)
	}
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 0),
		"version":   append([]byte{2}, b[1:]...),
		"bool":      append([]byte{1, 2}, b[2:]...),
		"dup keys":  (&Transition{Version: 1, Keys: []keys.PublicKey{{1}, {1}}}).Encode(),
	} {
		if _, err := DecodeTransition(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseHash(strings.ToUpper(Hash{0xab}.String())); err == nil {
		t.Error("upper-case hash accepted")
	}
}

func FuzzDecodeTransition(f *testing.F) {
	prev := Hash{9}
	f.Add((&Transition{Version: 1, Fragment: []byte("x = 1")}).Encode())
	f.Add((&Transition{Version: 1, Prev: &prev, Fragment: []byte("f()"), Keys: []keys.PublicKey{{1}, {2}}}).Encode())
	f.Add(EncodeSigs([][]byte{make([]byte, 64)}))
	f.Add(EncodeRecord(&Record{Transition: &Transition{Version: 1, Fragment: []byte("x = 1")}, State: []byte{1, 0, 0, 0, 0}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if tr, err := DecodeTransition(b); err == nil && !bytes.Equal(tr.Encode(), b) {
			t.Fatal("decoded transition re-encodes differently")
		}
		if s, err := DecodeSigs(b); err == nil && !bytes.Equal(EncodeSigs(s), b) {
			t.Fatal("decoded signatures re-encode differently")
		}
		if r, err := DecodeRecord(b); err == nil && !bytes.Equal(EncodeRecord(r), b) {
			t.Fatal("decoded record re-encodes differently")
		}
	})
}

// Closures that later fragments make and store through the initial
// state's functions are state: they survive, and verification re-executes
// the chain to the same hashes.
func TestLaterClosuresVerify(t *testing.T) {
	c := newChain(t)
	s := c.apply(t, nil, `local reg = {}
function register(name, f) reg[name] = f end
function call(name, ...) return reg[name](...) end`)
	s = c.apply(t, &s.Hash, `local total = 0
register('add', function(n) total = total + n; return total end)`)
	s = c.apply(t, &s.Hash, `call('add', 40)`)
	_, res, err := Apply(c.store, c.v, rand.Reader, &s.Hash, []byte(`return call('add', 2)`), nil)
	if err != nil || len(res.Values) != 1 || res.Values[0] != int64(42) {
		t.Fatalf("call: %v %v", res.Values, err)
	}
	if n, err := VerifyStore(c.store, NewVerifier(vp.NewPool(), c.store.Get), nil); err != nil || n != 4 {
		t.Fatalf("verify: %d %v", n, err)
	}
}
