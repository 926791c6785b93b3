package fractal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
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
	var last []byte
	err := in.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			// Keys in byte order (not the lines: a key that is a prefix of
			// the next sorts after it as text, "6b=" > "6b00=").
			if last != nil && bytes.Compare(last, k) >= 0 {
				return fmt.Errorf("store iteration out of order: %x after %x", k, last)
			}
			last = k
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%x=%x", k, v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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
	if err := chain.VerifyBlock(g); err != nil {
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
