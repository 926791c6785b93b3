package fractal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// newTestInstance initialises an instance in a fresh temporary folder.
func newTestInstance(t testing.TB) (*Instance, string) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "inst")
	in, err := Init(home, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.db.Close() })
	return in, home
}

// dumpStore renders every live key and value of the store, in key order, so
// that two dumps are equal exactly when the stores hold the same data.
func dumpStore(t testing.TB, in *Instance) string {
	t.Helper()
	var lines []string
	err := in.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%x=%x", it.Item().Key(), v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sort.StringsAreSorted(lines) {
		t.Fatal("store iteration out of order")
	}
	return strings.Join(lines, "\n")
}

func TestInitOpenGenesis(t *testing.T) {
	in, home := newTestInstance(t)
	id := in.ID()
	g, err := in.Block(0)
	if err != nil {
		t.Fatal(err)
	}
	if g.Height != 0 || g.Instance != id || g.StateRoot != [32]byte{} || len(g.TxIDs) != 0 {
		t.Fatalf("genesis = %+v", g)
	}
	if err := VerifyBlock(g); err != nil {
		t.Fatal(err)
	}
	before := dumpStore(t, in)
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}

	in2, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	if in2.ID() != id || in2.Executor() != g.Executor {
		t.Fatal("identity changed across reopen")
	}
	if after := dumpStore(t, in2); after != before {
		t.Fatal("store changed across reopen")
	}
	head, err := in2.Head()
	if err != nil || head.Hash() != g.Hash() {
		t.Fatalf("head = %v, %v", head, err)
	}
}

func TestInitRefusesExisting(t *testing.T) {
	in, home := newTestInstance(t)
	_ = in
	_, err := Init(home, DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "already holds an instance") {
		t.Fatalf("second init: %v", err)
	}
	// A folder with only a stray db folder (an interrupted init) is refused too.
	other := t.TempDir()
	os.Mkdir(filepath.Join(other, dbDir), 0o700)
	if _, err := Init(other, DefaultConfig()); err == nil || !strings.Contains(err.Error(), "db exists") {
		t.Fatalf("init over stray db: %v", err)
	}
}

func TestInitRefusesBadConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBlockTxs = 0
	home := t.TempDir()
	if _, err := Init(home, cfg); err == nil || err.Error() != "fractal: init: max_block_txs 0 outside 1..4096" {
		t.Fatalf("init: %v", err)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Fatalf("refused init left %d entries", len(entries))
	}
}

func TestOpenRefusals(t *testing.T) {
	empty := t.TempDir()
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "not a fractal instance (no config.json; run fractal init)") {
		t.Fatalf("open empty: %v", err)
	}

	in, home := newTestInstance(t)
	// A second open while the first holds the store.
	if _, err := Open(home); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("open twice: %v", err)
	}
	in.Close()

	// A foreign executor key.
	other, otherHome := newTestInstance(t)
	other.Close()
	key, _ := os.ReadFile(filepath.Join(otherHome, keyFile))
	os.WriteFile(filepath.Join(home, keyFile), key, 0o600)
	if _, err := Open(home); err == nil || !strings.Contains(err.Error(), "executor.key is not the executor key of this instance") {
		t.Fatalf("open with foreign key: %v", err)
	}

	// A config naming another instance.
	cfg, _ := os.ReadFile(filepath.Join(otherHome, configFile))
	os.WriteFile(filepath.Join(home, configFile), cfg, 0o600)
	if _, err := Open(home); err == nil || !strings.Contains(err.Error(), "config.json names instance") {
		t.Fatalf("open with foreign config: %v", err)
	}

	// A config that is not JSON.
	os.WriteFile(filepath.Join(home, configFile), []byte("{"), 0o600)
	if _, err := Open(home); err == nil || !strings.Contains(err.Error(), "config.json: unexpected EOF") {
		t.Fatalf("open with broken config: %v", err)
	}
}

func TestBlockEncodingRoundTrip(t *testing.T) {
	in, _ := newTestInstance(t)
	ids := [][32]byte{{1}, {2}, {3}}
	b := &Block{Instance: in.ID(), Height: 7, Prev: [32]byte{9}, TxsHash: TxsHash(ids),
		Roots: [][32]byte{{4}, {5}, {6}}, StateRoot: [32]byte{6}, TxIDs: ids}
	if err := SignBlock(b, in.key); err != nil {
		t.Fatal(err)
	}
	enc := b.Encode()
	got, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), enc) || got.Hash() != b.Hash() {
		t.Fatal("block did not round-trip")
	}
	if err := VerifyBlock(got); err != nil {
		t.Fatal(err)
	}
	// Every single-byte change is refused by the decoder or the signature.
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 1
		if d, err := DecodeBlock(bad); err == nil && VerifyBlock(d) == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
}

func TestDecodeBlockRefusals(t *testing.T) {
	ids := [][32]byte{{1}}
	good := &Block{Height: 1, TxsHash: TxsHash(ids), Roots: [][32]byte{{4}}, StateRoot: [32]byte{4}, TxIDs: ids}
	cases := map[string]struct {
		mutate func(b *Block) []byte
		want   string
	}{
		"trailing":   {func(b *Block) []byte { return append(b.Encode(), 0) }, "1 trailing bytes"},
		"truncated":  {func(b *Block) []byte { e := b.Encode(); return e[:len(e)-1] }, "truncated input"},
		"version":    {func(b *Block) []byte { e := b.Encode(); e[0] = 2; return e }, "unknown version 2"},
		"roots":      {func(b *Block) []byte { b.Roots = nil; return b.Encode() }, "0 roots for 1 transactions"},
		"txs hash":   {func(b *Block) []byte { b.TxsHash = [32]byte{}; return b.Encode() }, "transactions hash does not match"},
		"final root": {func(b *Block) []byte { b.StateRoot = [32]byte{}; return b.Encode() }, "final state root differs"},
		"genesis":    {func(b *Block) []byte { b.Height = 0; return b.Encode() }, "genesis block with a parent or transactions"},
	}
	for name, c := range cases {
		b := *good
		_, err := DecodeBlock(c.mutate(&b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func FuzzDecodeBlock(f *testing.F) {
	ids := [][32]byte{{1}, {2}}
	f.Add((&Block{Height: 1, TxsHash: TxsHash(ids), Roots: [][32]byte{{4}, {5}}, StateRoot: [32]byte{5}, TxIDs: ids}).Encode())
	f.Add((&Block{TxsHash: TxsHash(nil)}).Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBlock(data)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Encode(), data) {
			t.Fatal("decode accepted a non-canonical encoding")
		}
	})
}
