package fractal

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/phases"
)

// The old-chain fixture (testdata/chain-v1, made by its make.sh with the
// code of commit 68a6903): instance a holds transfers, a refused one, an
// export, an encrypted batch and two shielded transactions; b imported a's
// export. What a verify of each reports.
var oldChains = []struct {
	home      string
	height    uint64
	txs       int
	notes     int
	stateRoot string
}{
	{"a", 8, 9, 6, "f83535286a2d6d083dbce279521a166192b03e056f0f8ad82a0861ae35109b56"},
	{"b", 1, 1, 1, "2ee8f67c247e28d17173c2e2355f59b7f94d4c88e18a8fec4d8f7f943f9671c9"},
}

// copyTree copies the file or folder from to the path to.
func copyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// openOldChain opens a copy of the fixture home name (b's trust file names
// a, whose home is not needed: claims carry what they prove).
func openOldChain(t testing.TB, name string) *Instance {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	copyTree(t, filepath.Join("testdata", "chain-v1", name), home)
	in, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// TestOldChainVerifies: the chains sealed by the code before the block
// lifecycle became stages verify, with the same figures.
func TestOldChainVerifies(t *testing.T) {
	for _, c := range oldChains {
		t.Run(c.home, func(t *testing.T) {
			in := openOldChain(t, c.home)
			rep, err := in.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Height != c.height || rep.Transactions != c.txs || rep.Notes != c.notes || hex.EncodeToString(rep.StateRoot[:]) != c.stateRoot {
				t.Fatalf("verify: height %d, %d transactions, %d notes, root %x; want %d, %d, %d, %s",
					rep.Height, rep.Transactions, rep.Notes, rep.StateRoot, c.height, c.txs, c.notes, c.stateRoot)
			}
		})
	}
}

// TestOldChainReseals: the old chains' transactions, submitted again to an
// instance with the same genesis (the same executor key and ID) and sealed
// block by block, give byte-identical blocks: equal block hashes (the hash
// covers every header field, the signature excepted: XEdDSA signatures are
// randomized), equal encrypted batch records, and a store equal to the old
// one in every entry but those signatures.
func TestOldChainReseals(t *testing.T) {
	for _, c := range oldChains {
		t.Run(c.home, func(t *testing.T) {
			old := openOldChain(t, c.home)
			in := genesisClone(t, old)
			reseal(t, old, in)
			if got, want := unsignedDump(t, in), unsignedDump(t, old); got != want {
				t.Fatalf("re-sealed store differs from the old one:\n%s", firstDiff(got, want))
			}
			if _, err := in.Verify(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// genesisClone makes, beside old's home, an instance with old's genesis:
// its configuration, executor key, trust file and circuit keys, and a store
// holding only old's genesis block, its deployed code and its threshold
// keys (neither of which is part of a block).
func genesisClone(t testing.TB, old *Instance) *Instance {
	t.Helper()
	home := old.home + "-clone"
	for _, name := range []string{configFile, keyFile, peersFile, "zk"} {
		if _, err := os.Stat(filepath.Join(old.home, name)); err == nil {
			copyTree(t, filepath.Join(old.home, name), filepath.Join(home, name))
		}
	}
	db, err := openDB(filepath.Join(home, dbDir))
	if err != nil {
		t.Fatal(err)
	}
	err = old.db.View(func(src *badger.Txn) error {
		return db.Update(func(dst *badger.Txn) error {
			for _, kv := range [][2][]byte{{metaHead, u64(0)}, {metaRoot, statetree.EmptyRoot[:]}} {
				if err := dst.Set(kv[0], kv[1]); err != nil {
					return err
				}
			}
			for _, pre := range [][]byte{metaGenesis, metaInstance, seqKey(prefixBlock, 0), {prefixCode}, encKeyOf(encKey), encKeyOf(encArchive)} {
				it := src.NewIterator(badger.IteratorOptions{Prefix: pre})
				for it.Rewind(); it.Valid(); it.Next() {
					v, err := it.Item().ValueCopy(nil)
					if err != nil {
						it.Close()
						return err
					}
					if err := dst.Set(it.Item().KeyCopy(nil), v); err != nil {
						it.Close()
						return err
					}
				}
				it.Close()
			}
			return nil
		})
	})
	if err == nil {
		err = db.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	in, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// reseal submits old's committed transactions (but reward transactions,
// which Seal makes) to in block by block and seals; an encrypted batch fixed after block h is submitted (its payloads,
// then the shares of the keyholders that opened it) before block h+1.
// Every block and batch record is compared with old's as it is made.
func reseal(t testing.TB, old, in *Instance) {
	t.Helper()
	head, err := old.Head()
	if err != nil {
		t.Fatal(err)
	}
	batches := oldBatches(t, old)
	for h := uint64(1); h <= head.Height; h++ {
		want, err := old.Block(h)
		if err != nil {
			t.Fatal(err)
		}
		var s *Sealed
		if ob := batches[h-1]; ob != nil {
			s = resealBatch(t, in, ob)
		} else {
			all, err := old.Transactions(want)
			if err != nil {
				t.Fatal(err)
			}
			var txs []*phases.Tx // the producer makes the reward transaction itself
			for _, tx := range all {
				if !phases.IsReward(tx) {
					txs = append(txs, tx)
				}
			}
			for i, err := range in.SubmitAll(txs) {
				if err != nil {
					t.Fatalf("block %d transaction %d: %v", h, i, err)
				}
			}
			if s, err = in.Seal(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if s.Block == nil || s.Block.Hash() != want.Hash() {
			t.Fatalf("block %d re-sealed differs: %+v, want %+v", h, s.Block, want)
		}
	}
}

// oldBatch is an encrypted batch of the old chain that opened into a block.
type oldBatch struct {
	record   *chain.EncryptedBatch
	payloads [][]byte
	shares   [][]byte // of the keyholders that opened it, in their order
}

// oldBatches returns old's opened encrypted batches by the height they were
// fixed at (the fixture has no expired batch and no batch that opened into
// no block).
func oldBatches(t testing.TB, old *Instance) map[uint64]*oldBatch {
	t.Helper()
	out := map[uint64]*oldBatch{}
	err := old.db.View(func(txn *badger.Txn) error {
		last, err := lastBatch(txn)
		if err != nil {
			return err
		}
		for n := uint64(1); n <= last; n++ {
			raw, err := getValue(txn, encKeyOf(encBatch, u64(n)))
			if err != nil {
				return err
			}
			ob := &oldBatch{}
			if ob.record, err = chain.DecodeEncryptedBatch(raw); err != nil {
				return err
			}
			c, err := readClose(txn, n)
			if err != nil {
				return err
			}
			if c.Expired || c.Block == 0 {
				t.Fatalf("batch %d: the fixture has only batches that opened into a block", n)
			}
			for i := range ob.record.PayloadIDs {
				p, err := getValue(txn, encKeyOf(encSlot, u64(n), u32(uint32(i))))
				if err != nil {
					return err
				}
				ob.payloads = append(ob.payloads, p)
			}
			for _, k := range c.Keyholders {
				s, err := getValue(txn, encKeyOf(encShares, u64(n), u32(uint32(k))))
				if err != nil {
					return err
				}
				ob.shares = append(ob.shares, s)
			}
			out[ob.record.Head] = ob
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// resealBatch submits an old batch's payloads, seals (fixing the batch,
// compared with the old record), submits the shares and seals again,
// opening it; it returns that seal.
func resealBatch(t testing.TB, in *Instance, ob *oldBatch) *Sealed {
	t.Helper()
	for _, p := range ob.payloads {
		if _, err := in.SubmitEncrypted(p); err != nil {
			t.Fatal(err)
		}
	}
	s, err := in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Encrypted == nil || s.Encrypted.State != BatchFixed || s.Encrypted.Batch.Hash() != ob.record.Hash() {
		t.Fatalf("batch %d re-fixed differs: %+v", ob.record.Number, s.Encrypted)
	}
	for _, sh := range ob.shares {
		if _, err := in.SubmitShares(sh); err != nil {
			t.Fatal(err)
		}
	}
	if s, err = in.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Encrypted == nil || s.Encrypted.State != BatchOpened {
		t.Fatalf("batch %d did not open: %+v", ob.record.Number, s.Encrypted)
	}
	return s
}

// unsignedDump is dumpStore with every signature left out: blocks are
// shown by their hash and transaction list, encrypted batch records by
// their hash and payload list, reward transactions by their height and ID.
func unsignedDump(t testing.TB, in *Instance) string {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(dumpStore(t, in), "\n") {
		k, v, _ := strings.Cut(line, "=")
		key, _ := hex.DecodeString(k)
		val, _ := hex.DecodeString(v)
		switch {
		case len(key) == 9 && key[0] == prefixBlock:
			b, err := chain.DecodeBlock(val)
			if err != nil {
				t.Fatal(err)
			}
			h, txs := b.Hash(), chain.TxsHash(b.TxIDs)
			line = k + "=block " + hex.EncodeToString(h[:]) + " " + hex.EncodeToString(txs[:])
		case bytes.HasPrefix(key, encKeyOf(encBatch)):
			b, err := chain.DecodeEncryptedBatch(val)
			if err != nil {
				t.Fatal(err)
			}
			h, c := b.Hash(), b.Commitment()
			line = k + "=batch " + hex.EncodeToString(h[:]) + " " + hex.EncodeToString(c[:])
		case len(key) == 33 && key[0] == prefixTx:
			// A reward transaction is signed by the producer at seal time
			// (XEdDSA signatures are randomized); its ID is what counts.
			if len(val) > 8 {
				if tx, err := phases.DecodeTx(val[8:]); err == nil && phases.IsReward(tx) {
					id := tx.ID()
					line = k + "=reward at " + hex.EncodeToString(val[:8]) + " " + hex.EncodeToString(id[:])
				}
			}
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// firstDiff shows the first line where two dumps differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "got  " + a + "\nwant " + b
		}
	}
	return ""
}
