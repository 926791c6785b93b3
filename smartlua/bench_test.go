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
