package smartlua

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/vp"
)

// BenchmarkApplyVerifyTransfer10k makes, signs and stores one transfer on
// the seed's balance program holding 10,000 accounts, and verifies it with
// a verifier that already trusts the previous state.
func BenchmarkApplyVerifyTransfer10k(b *testing.B) {
	src := strings.Replace(string(readExample(b, "balances.lua")), "function transfer",
		"for i = 1, 9997 do balances['account' .. i] = 10 end\n\nfunction transfer", 1)
	c := newChain(b)
	init := c.apply(b, nil, src)
	k1 := seedKey(b, 0)
	frag := []byte(transfer(1, "1"))
	verifier := NewVerifier(vp.NewPool(), c.store.Get)
	if err := verifier.Verify(init.Hash); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(init.State)))
	b.ReportAllocs()
	for b.Loop() {
		rec, _, err := Apply(c.store, c.v, rand.Reader, &init.Hash, frag, []keys.PrivateKey{k1})
		if err != nil {
			b.Fatal(err)
		}
		if err := verifier.Check(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckSuccessor is what smartlua_check costs a predicate on an
// instance: one transfer on the balance program holding 2,000 accounts (a
// state near the 64 KiB note value limit). It reports the gas charged, so
// ns/gas can be compared with plain Lua's (BenchmarkLuaGas).
func BenchmarkCheckSuccessor(b *testing.B) {
	src := strings.Replace(string(readExample(b, "balances.lua")), "function transfer",
		"for i = 1, 1997 do balances['account' .. i] = 10 end\n\nfunction transfer", 1)
	c := newChain(b)
	init := c.apply(b, nil, src)
	next := c.apply(b, &init.Hash, transfer(1, "1"), seedKey(b, 0))
	prev, succ := EncodeRecord(init), EncodeRecord(next)
	var used uint64
	b.SetBytes(int64(len(prev) + len(succ)))
	for b.Loop() {
		var err error
		if _, used, err = CheckSuccessor(c.pool, prev, succ, Limits().Gas); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(used), "gas/op")
}

// BenchmarkLuaGas runs a plain Lua loop, for the ns/gas of ordinary code.
func BenchmarkLuaGas(b *testing.B) {
	pool := vp.NewPool()
	prog, err := vp.Compile("loop", []byte("local t = {} for i = 1, 20000 do t[i % 100 + 1] = i .. 'x' end return #t"))
	if err != nil {
		b.Fatal(err)
	}
	var res vp.Result
	for b.Loop() {
		if res, err = pool.Run(prog, vp.Call{Limits: Limits()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.GasUsed), "gas/op")
}
