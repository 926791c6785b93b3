package fractal

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// TestStoragePrefixesDoNotCollide: no listed prefix is a prefix of another
// (one-byte prefixes, components' sub-prefixes and the metadata names
// alike), so no two owners can ever write the same key.
func TestStoragePrefixesDoNotCollide(t *testing.T) {
	if len(storagePrefixes) < 30 {
		t.Fatalf("only %d prefixes listed", len(storagePrefixes))
	}
	for i, a := range storagePrefixes {
		for j, b := range storagePrefixes {
			if i != j && bytes.HasPrefix(b.prefix, a.prefix) {
				t.Errorf("%q (%s) is a prefix of %q (%s)", a.prefix, a.owner, b.prefix, b.owner)
			}
		}
	}
}

// owners returns the owners of the listed prefixes that key starts with.
func owners(key []byte) []string {
	var out []string
	for _, p := range storagePrefixes {
		if bytes.HasPrefix(key, p.prefix) {
			out = append(out, p.owner)
		}
	}
	return out
}

// TestEveryStoredKeyIsListed: in stores holding every kind of record (the
// old-chain fixture's two instances, one of them also with a queued plain
// and a queued encrypted transaction, imported manifests, fork evidence
// and an exported manifest file; an instance with a fee token and the
// per-key limit, holding a label record and a queued transaction offering
// a fee; and a validator-set instance's), every key starts with exactly one
// listed prefix: layout.go lists them all.
func TestEveryStoredKeyIsListed(t *testing.T) {
	a, b := openOldChain(t, "a"), openOldChain(t, "b")
	ctx := context.Background()
	f := &fixture{in: a}
	f.alice, f.bob = genKey(t), genKey(t)
	allow := deploy(t, a, "testdata/allow.lua")
	if _, err := a.Submit(f.mint(allow, allow, f.alice, "queued", "1")); err != nil {
		t.Fatal(err)
	}
	pk, err := a.ThresholdKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := EncryptTx(pk, a.ID(), f.mint(allow, allow, f.bob, "secret", "2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SubmitEncrypted(p.Encode()); err != nil {
		t.Fatal(err)
	}
	own, err := a.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	fork := *own[3]
	fork.StateRoot[0] ^= 1
	fork.Roots = append([][32]byte(nil), fork.Roots...)
	fork.Roots[len(fork.Roots)-1] = fork.StateRoot
	if err := chain.SignBlock(ctx, &fork, a.signer); err != nil {
		t.Fatal(err)
	}
	if res, err := a.ImportManifests(chain.EncodeManifests([]*chain.Block{&fork})); err != nil || len(res.Evidence) != 1 {
		t.Fatalf("import of a fork: %+v %v", res, err)
	}
	if _, _, err := a.ExportManifests(); err != nil {
		t.Fatal(err)
	}
	c := newFeeFixture(t, DefaultConfig(), false)
	key, value := c.gold(c.alice.Public(), "fee", 10_000_000)
	mint := c.mint(c.allow, c.allow, c.alice, key, value)
	mint.Calculation = []byte("return {" + strings.TrimSuffix(luaNote(c.allow, c.allow, key, value), "}") + ", label='fee'}}")
	c.commit(t, c.sign(mint, c.alice))
	if _, err := c.in.Submit(c.paying(c.mint(c.allow, c.allow, c.alice, "x", "1"), c.alice.Public(), "fee", 1, c.alice)); err != nil {
		t.Fatal(err)
	}
	// A validator-set instance's records: its set, the decided heights, a
	// misbehaviour record.
	v := newValidatorSetFixture(t)
	decide(t, v.in, 2, [][]byte{{1}}, v.mint(v.allow, v.allow, v.alice, "k", "1").Encode())
	// And one with a threshold key whose batch waits after a block that
	// brought no shares: its window, fixing height and last shares.
	x := newValidatorSetFixtureKey(t, genesisKey(t), DefaultEncryptedExpiryBlocks)
	x.fixEncrypted(t, 2)
	decide(t, x.in, 3, nil)
	// Epochs: the rules, a DKG envelope, an attempt's record (it fails:
	// one dealer) and the epoch state after it.
	e := newEpochFixture(t)
	for h := uint64(2); h <= 12; h++ {
		var txs [][]byte
		if h == 7 {
			st, err := e.in.Epochs()
			if err != nil {
				t.Fatal(err)
			}
			p, err := dkg.NewParty(st.Session, e.ks[0])
			if err != nil {
				t.Fatal(err)
			}
			deal, err := p.Start()
			if err != nil {
				t.Fatal(err)
			}
			txs = dkgTxs(deal)
		}
		decide(t, e.in, h, nil, txs...)
	}
	// A node's memory queue: a log folded (its marker), then a block that
	// refused a logged transaction (its taken record).
	m := newFixture(t, oneKeyConfig())
	for i := range 2 {
		if err := m.in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
			t.Fatal(err)
		}
		if _, err := m.in.Submit(m.mint(m.deny, m.allow, m.alice, "d", "1")); err != nil {
			t.Fatal(err)
		}
		if _, err := m.in.Seal(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			m.reopen(t) // Close folds the log
		}
	}
	seen := map[string]bool{}
	for _, in := range []*Instance{a, b, c.in, v.in, e.in, x.in, m.in} {
		err := in.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().Key()
				if o := owners(k); len(o) != 1 {
					t.Errorf("key %s has owners %v", hex.EncodeToString(k), o)
				}
				for _, p := range storagePrefixes {
					if bytes.HasPrefix(k, p.prefix) {
						seen[string(p.prefix)] = true
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The stores hold every kind of key.
	var unseen []string
	for _, p := range storagePrefixes {
		if !seen[string(p.prefix)] {
			unseen = append(unseen, string(p.prefix))
		}
	}
	if len(unseen) > 0 {
		t.Fatalf("prefixes the stores do not hold: %q", unseen)
	}
}
