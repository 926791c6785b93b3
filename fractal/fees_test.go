package fractal

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// feeFixture is a fixture whose instance charges fees in the issuer's
// GOLD, notes of testdata/allow.lua as application and owner (the host
// moves fee notes itself; the predicates matter only for the notes
// transactions write), and, with reward set, mints a reward note of 50 to
// each block's producer.
type feeFixture struct {
	*fixture
	issuer keys.PrivateKey
	token  *phases.FeeToken
}

func newFeeFixture(t testing.TB, cfg Config, reward bool) *feeFixture {
	t.Helper()
	src, err := os.ReadFile("testdata/allow.lua")
	if err != nil {
		t.Fatal(err)
	}
	allow := notes.Hash(sha256.Sum256(src))
	issuer := genKey(t)
	rules := chain.Rules{Fee: &phases.FeeToken{Application: allow, Owner: allow, Token: issuer.Public().String() + ":GOLD"}}
	if reward {
		rules.Reward = &chain.Reward{Application: allow, Owner: allow, Amount: 50}
	}
	return &feeFixture{fixture: newFixture(t, cfg, WithRules(rules)), issuer: issuer, token: rules.Fee}
}

// gold is a GOLD note of owner at "<owner>:<tag>" holding amount.
func (f *feeFixture) gold(owner keys.PublicKey, tag string, amount uint64) (key, value string) {
	return owner.String() + ":" + tag, f.token.Token + ":" + strconv.FormatUint(amount, 10)
}

// feeKey is the state key of owner's GOLD note at tag.
func (f *feeFixture) feeKey(owner keys.PublicKey, tag string) notes.StateKey {
	k, _ := f.gold(owner, tag, 1)
	return notes.StateKey{Application: f.token.Application, Owner: f.token.Owner, Key: []byte(k)}
}

// paying makes tx offer owner's fee note at tag at price, signed again by
// signers.
func (f *feeFixture) paying(tx *phases.Tx, owner keys.PublicKey, tag string, price uint64, signers ...keys.PrivateKey) *phases.Tx {
	tx.Fee = &phases.Fee{Note: f.feeKey(owner, tag), Price: price}
	return f.sign(tx, signers...)
}

// goldOf sums the GOLD held by notes whose keys start with owner's key.
func (f *feeFixture) goldOf(t testing.TB, owner keys.PublicKey) uint64 {
	t.Helper()
	list, err := f.in.Notes(notes.PatternFromKeyPrefix(notes.StateKey{Application: f.token.Application, Owner: f.token.Owner, Key: []byte(owner.String() + ":")}))
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, n := range list {
		amount, ok := strings.CutPrefix(string(n.Value), f.token.Token+":")
		if !ok {
			continue
		}
		a, err := strconv.ParseUint(amount, 10, 64)
		if err != nil {
			t.Fatal(fmt.Errorf("note %s: %w", n.Key, err))
		}
		sum += a
	}
	return sum
}
