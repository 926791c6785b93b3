package fractal

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// TestMaxQueue fills a small mempool: the next submission is refused with
// the count and the limit and stores nothing, a seal makes room again, and a
// reopened instance counts what is still queued.
func TestMaxQueue(t *testing.T) {
	cfg := oneKeyConfig() // alice signs every transaction
	cfg.MaxQueue = 3
	cfg.MaxBlockTxs = 2
	f := newFixture(t, cfg)
	// One call that overflows: the first three fit, the rest are refused.
	var in []*phases.Tx
	for i := 0; i < 5; i++ {
		in = append(in, f.mint(f.allow, f.allow, f.alice, "k", "v"))
	}
	errs := f.in.SubmitAll(in)
	for i, err := range errs {
		if i < 3 && err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		if i >= 3 && (err == nil || !strings.HasSuffix(err.Error(), ": mempool full (3 queued, max_queue 3)")) {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	full := dumpStore(t, f.in)
	if _, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, "k", "v")); err == nil || !strings.HasSuffix(err.Error(), ": mempool full (3 queued, max_queue 3)") {
		t.Fatalf("submit to a full mempool: %v", err)
	}
	if dumpStore(t, f.in) != full {
		t.Fatal("mempool-full refusal changed the store")
	}
	// A refused transaction was not queued: it may be submitted once there
	// is room.
	if _, err := f.in.Seal(context.Background()); err != nil { // takes two of three
		t.Fatal(err)
	}
	if ids, err := f.in.Queued(); err != nil || len(ids) != 1 {
		t.Fatalf("queued after seal: %d, %v", len(ids), err)
	}
	if errs := f.in.SubmitAll(in[3:]); errs[0] != nil || errs[1] != nil {
		t.Fatalf("resubmit after seal: %v", errs)
	}
	if _, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, "k", "v")); err == nil || !strings.HasSuffix(err.Error(), ": mempool full (3 queued, max_queue 3)") {
		t.Fatalf("submit to a refilled mempool: %v", err)
	}

	// Reopened, the instance counts the three still queued.
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	re, err := Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { re.Close() })
	if _, err := re.Submit(f.mint(f.allow, f.allow, f.alice, "k", "v")); err == nil || !strings.HasSuffix(err.Error(), ": mempool full (3 queued, max_queue 3)") {
		t.Fatalf("submit after reopen: %v", err)
	}
	if _, err := re.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := re.Submit(f.mint(f.allow, f.allow, f.alice, "k", "v")); err != nil {
		t.Fatalf("submit after reopen and seal: %v", err)
	}
	if _, err := re.Submit(f.mint(f.allow, f.allow, f.alice, "k", "v")); err != nil {
		t.Fatalf("second submit after reopen and seal: %v", err)
	}
	if _, err := re.Submit(f.mint(f.allow, f.allow, f.alice, "k", "v")); err == nil || !strings.HasSuffix(err.Error(), ": mempool full (3 queued, max_queue 3)") {
		t.Fatalf("submit after refilling: %v", err)
	}
}

// TestMaxQueueCountsEncrypted: encrypted payloads share the mempool with
// plaintext transactions.
func TestMaxQueueCountsEncrypted(t *testing.T) {
	f := newEncFixture(t, 3, 2, false)
	f.in.cfg.MaxQueue = 2
	f.encrypt(t, f.mint(f.allow, f.allow, f.alice, "a", "1"))
	if _, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, "b", "2")); err != nil {
		t.Fatal(err)
	}
	full := dumpStore(t, f.in)
	raw := mustEncrypt(t, f, f.mint(f.allow, f.allow, f.alice, "c", "3"))
	if _, err := f.in.SubmitEncrypted(raw); err == nil || !strings.HasSuffix(err.Error(), ": mempool full (2 queued, max_queue 2)") {
		t.Fatalf("encrypted submit to a full mempool: %v", err)
	}
	if _, err := f.in.Submit(f.mint(f.allow, f.allow, f.alice, "d", "4")); err == nil || !strings.HasSuffix(err.Error(), ": mempool full (2 queued, max_queue 2)") {
		t.Fatalf("submit to a full mempool: %v", err)
	}
	if dumpStore(t, f.in) != full {
		t.Fatal("mempool-full refusal changed the store")
	}
}

// rewriteConfig edits the config.json of the closed instance in home, as
// a JSON object.
func rewriteConfig(t *testing.T, home string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(home, configFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfigWithoutMaxQueue: a config.json written before max_queue opens
// with the default; a max_queue out of range is refused.
func TestConfigWithoutMaxQueue(t *testing.T) {
	in, home := newTestInstance(t)
	in.Close()
	rewriteConfig(t, home, func(m map[string]any) { delete(m, "max_queue") })
	re, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Config().MaxQueue; got != 65536 {
		t.Fatalf("max_queue of an old config: %d", got)
	}
	re.Close()
	rewriteConfig(t, home, func(m map[string]any) { m["max_queue"] = 1<<20 + 1 })
	if _, err := Open(home); err == nil || !strings.HasSuffix(err.Error(), "config.json: max_queue 1048577 outside 1..1048576") {
		t.Fatalf("open with max_queue too large: %v", err)
	}
}

// TestMaxBlockGas: a transaction asking for more gas than one block may
// spend is refused at submission, with both figures, and nothing is stored;
// one asking for exactly max_block_gas is queued and runs.
func TestMaxBlockGas(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBlockGas = 500_000
	f := newFixture(t, cfg)
	before := dumpStore(t, f.in)
	over := f.mint(f.allow, f.allow, f.alice, "k", "v") // gas limit 1 000 000
	if _, err := f.in.Submit(over); err == nil || !strings.HasSuffix(err.Error(), ": gas limit 1000000 exceeds the block gas limit (max_block_gas 500000)") {
		t.Fatalf("submit over max_block_gas: %v", err)
	}
	if errs := f.in.SubmitAll([]*phases.Tx{over}); errs[0] == nil || !strings.Contains(errs[0].Error(), "exceeds the block gas limit") {
		t.Fatalf("submit all over max_block_gas: %v", errs[0])
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("refused submission changed the store")
	}
	fits := f.mint(f.allow, f.allow, f.alice, "k", "v")
	fits.GasLimit, fits.Signatures = 500_000, nil
	f.sign(fits, f.alice)
	if _, err := f.in.Submit(fits); err != nil {
		t.Fatalf("submit at max_block_gas: %v", err)
	}
	s, err := f.in.Seal(t.Context())
	if err != nil || len(s.Receipts) != 1 || s.Receipts[0].Err() != nil {
		t.Fatalf("seal: %v %v", s, err)
	}
}

// TestProposeWithinBlockGas: a block takes queued transactions in arrival
// order while their gas limits add up to at most max_block_gas; the rest
// wait, in order, for the next block.
func TestProposeWithinBlockGas(t *testing.T) {
	cfg := oneKeyConfig() // alice signs every transaction
	cfg.MaxBlockGas = 700_000
	f := newFixture(t, cfg)
	var ids []notes.Hash
	for i := range 3 {
		tx := f.mint(f.allow, f.allow, f.alice, fmt.Sprintf("k%d", i), "v")
		tx.GasLimit, tx.Signatures = 300_000, nil
		f.sign(tx, f.alice)
		id, err := f.in.Submit(tx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, want := range [][]notes.Hash{ids[:2], ids[2:]} {
		s, err := f.in.Seal(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got []notes.Hash
		for _, rc := range s.Receipts {
			got = append(got, rc.TxID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("block took %x, want %x", got, want)
		}
	}
}

// TestConfigWithoutMaxBlockGas: a config.json written before max_block_gas
// opens with the default, the largest gas limit a transaction may ask for;
// a max_block_gas out of range is refused.
func TestConfigWithoutMaxBlockGas(t *testing.T) {
	in, home := newTestInstance(t)
	in.Close()
	rewriteConfig(t, home, func(m map[string]any) { delete(m, "max_block_gas") })
	re, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Config().MaxBlockGas; got != phases.MaxGasLimit {
		t.Fatalf("max_block_gas of an old config: %d", got)
	}
	re.Close()
	rewriteConfig(t, home, func(m map[string]any) { m["max_block_gas"] = 0 })
	if _, err := Open(home); err == nil || !strings.HasSuffix(err.Error(), "config.json: max_block_gas 0 outside 1..1000000000000") {
		t.Fatalf("open with max_block_gas 0: %v", err)
	}
}
