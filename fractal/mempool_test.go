package fractal

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/phases"
)

// TestMaxQueue fills a small mempool: the next submission is refused with
// the count and the limit and stores nothing, a seal makes room again, and a
// reopened instance counts what is still queued.
func TestMaxQueue(t *testing.T) {
	cfg := DefaultConfig()
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

// TestConfigWithoutMaxQueue: a config.json written before max_queue opens
// with the default; a max_queue out of range is refused.
func TestConfigWithoutMaxQueue(t *testing.T) {
	in, home := newTestInstance(t)
	in.Close()
	path := filepath.Join(home, configFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "max_queue")
	old, _ := json.Marshal(m)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	re, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Config().MaxQueue; got != 65536 {
		t.Fatalf("max_queue of an old config: %d", got)
	}
	re.Close()
	m["max_queue"] = 1<<20 + 1
	bad, _ := json.Marshal(m)
	os.WriteFile(path, bad, 0o600)
	if _, err := Open(home); err == nil || !strings.HasSuffix(err.Error(), "config.json: max_queue 1048577 outside 1..1048576") {
		t.Fatalf("open with max_queue too large: %v", err)
	}
}
