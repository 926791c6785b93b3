package fractal

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// codeHash is the hash the instance deploys the Lua file at path under.
func codeHash(t testing.TB, path string) notes.Hash {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(src)
}

// TestRewardAcceptedByAnApplication: every block's first transaction mints
// the producer a reward note (examples/reward); the token's issuer accepts
// it in exchange for 50 GOLD, in one transaction both sign; a transaction
// that tries to mint reward notes itself is refused by reward.lua; verify
// replays the rewards.
func TestRewardAcceptedByAnApplication(t *testing.T) {
	reward, sig, token := codeHash(t, "../examples/reward/reward.lua"), codeHash(t, "../examples/sig/sig.lua"), codeHash(t, "../examples/token/token.lua")
	f := newFixture(t, DefaultConfig(), WithRules(chain.Rules{Reward: &chain.Reward{Application: reward, Owner: sig, Amount: 50}}))
	for _, p := range []string{"reward/reward.lua", "sig/sig.lua", "token/token.lua"} {
		deploy(t, f.in, "../examples/"+p)
	}
	exec, err := keys.LoadKeyFile(filepath.Join(f.home, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	issuer := f.bob
	s := f.commit(t, f.mint(f.allow, f.allow, f.alice, "a", "1"))
	if txs, err := f.in.Transactions(s.Block); err != nil || len(txs) != 2 || !phases.IsReward(txs[0]) {
		t.Fatalf("block 1 holds %d transactions, the first not a reward (%v)", len(s.Block.TxIDs), err)
	}
	key := fmt.Sprintf("%s:reward:1", exec.Public())
	if got := strings.Join(liveKeys(t, f.in), " "); got != "a=1 "+key+"=50" {
		t.Fatalf("live notes %q", got)
	}
	rewardKey := notes.StateKey{Application: reward, Owner: sig, Key: []byte(key)}
	gold := fmt.Sprintf("%s:GOLD:50", issuer.Public())
	exchange := f.sign(&phases.Tx{
		Nonce: 99, GasLimit: 1_000_000,
		Read:   notes.ConstraintSet{notes.ExactPattern(rewardKey)},
		Write:  notes.ConstraintSet{appPattern(reward, sig), appPattern(token, sig)},
		Lookup: []byte(fmt.Sprintf("return {%q}", rewardKey.String())),
		Calculation: []byte(fmt.Sprintf("return {%s, %s}",
			luaNote(reward, sig, issuer.Public().String()+":from-block-1", "50"),
			luaNote(token, sig, exec.Public().String()+":bought", gold))),
	}, exec, issuer)
	f.commit(t, exchange)
	if got := strings.Join(liveKeys(t, f.in), " "); !strings.Contains(got, issuer.Public().String()+":from-block-1=50") ||
		!strings.Contains(got, exec.Public().String()+":bought="+gold) || strings.Contains(got, key+"=") {
		t.Fatalf("live notes after the exchange %q", got)
	}
	forged := f.sign(&phases.Tx{Nonce: 100, GasLimit: 1_000_000, Write: notes.ConstraintSet{appPattern(reward, sig)},
		Calculation: []byte("return {" + luaNote(reward, sig, f.alice.Public().String()+":free", "1000") + "}")}, f.alice)
	before := dumpStore(t, f.in)
	if _, err := f.in.Submit(forged); err != nil {
		t.Fatal(err)
	}
	s, err = f.in.Seal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rc := s.Receipts[1]; rc.Phase != phases.PhaseValidity || !strings.HasSuffix(rc.Reason, "reward notes: outputs exceed inputs by 1000; only a block's reward transaction mints them") {
		t.Fatalf("forged reward: %+v", rc)
	}
	if strings.Contains(strings.Join(liveKeys(t, f.in), " "), ":free=") || dumpStore(t, f.in) == before {
		t.Fatal("the forged reward was minted, or block 4 and its reward were not stored")
	}
	rep, err := f.in.Verify(t.Context(), nil)
	if err != nil || rep.Height != 3 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// kvOf is a read view of in's store, discarded at the test's end.
func kvOf(t testing.TB, in *Instance) badgerdb.KV {
	txn := in.db.NewTransaction(false)
	t.Cleanup(txn.Discard)
	return badgerdb.KV{Txn: txn}
}

// TestRewardOncePerBlock: a block with a second reward transaction refuses
// it in admission (the producer mints once a block), one for another
// height or signed by another key is refused by the rules, and an
// instance without rewards refuses any; none mints.
func TestRewardOncePerBlock(t *testing.T) {
	r := &chain.Reward{Application: notes.Hash{1}, Owner: notes.Hash{2}, Amount: 7}
	f := newFixture(t, DefaultConfig(), WithRules(chain.Rules{Reward: r}))
	exec, err := keys.LoadKeyFile(filepath.Join(f.home, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	code := blockCode{f.in, chain.BlockContext{Rules: f.in.rules, ProducerKey: exec.Public(), Height: 1}}
	twice := []*phases.Tx{f.sign(r.RewardTx(exec.Public(), 1), exec), f.sign(r.RewardTx(exec.Public(), 1), exec)}
	if errs := (rewardPart{}).admit(twice); errs[0] != nil || errs[1] == nil || errs[1].Error() != "reward: a block's reward transaction is its first, and there is one at most" {
		t.Fatalf("admission of two rewards: %v", errs)
	}
	for _, c := range []struct {
		tx   *phases.Tx
		want string
	}{
		{f.sign(r.RewardTx(exec.Public(), 2), exec), "reward: a reward transaction for block 2, this is block 1"},
		{f.sign(r.RewardTx(f.alice.Public(), 1), f.alice), "reward: a reward transaction is signed by the block's producer " + exec.Public().String() + " alone"},
	} {
		out, err := phases.Execute(snapshot{kvOf(t, f.in)}, code, f.in.pool, c.tx)
		if err != nil || out.Receipt.Reason != c.want || len(out.Created) != 0 {
			t.Fatalf("%+v %v, want %q", out.Receipt, err, c.want)
		}
	}
	plain := newFixture(t, DefaultConfig())
	plainCode := blockCode{plain.in, chain.BlockContext{ProducerKey: exec.Public(), Height: 1}}
	out, err := phases.Execute(snapshot{kvOf(t, plain.in)}, plainCode, plain.in.pool, twice[0])
	if err != nil || out.Receipt.Reason != "reward: this instance gives no block rewards" {
		t.Fatalf("%+v %v", out.Receipt, err)
	}
}
