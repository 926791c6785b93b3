package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	home := t.TempDir()
	cfg, err := LoadConfig(home)
	if err != nil || cfg != DefaultConfig() {
		t.Fatalf("no file: %+v %v", cfg, err)
	}
	for _, c := range []struct{ file, want string }{
		{`{"block_time": "250ms", "max_streams": 3}`, ""},
		{`{"block_tme": "1s"}`, `unknown field "block_tme"`},
		{`{"block_time": 5}`, `a duration is a string such as "1s"`},
		{`{"block_time": "0s"}`, "block_time 0s outside 1ms..1h0m0s"},
		{`{"max_connections": 0}`, "max_connections 0 outside 1..1048576"},
		{`{"simulate_gas_limit": 100000001}`, "simulate_gas_limit 100000001 outside 1..100000000"},
		{`{"listen": "localhost"}`, `listen "localhost"`},
		{`{"max_tx_gas": 0}`, "max_tx_gas 0 outside 1..100000000"},
		{`{"max_streams_per_client": 0}`, "max_streams_per_client 0 outside 1..1048576"},
		{`{"max_request_bytes_in_flight": 1048576}`, "max_request_bytes_in_flight 1048576 outside 8388608..1099511627776"},
		{`{"max_queue_bytes": 1000}`, "max_queue_bytes 1000 outside 1048576..1099511627776"},
	} {
		if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(c.file), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(home)
		switch {
		case c.want == "" && err != nil:
			t.Fatalf("%s: %v", c.file, err)
		case c.want == "" && (time.Duration(cfg.BlockTime) != 250*time.Millisecond || cfg.MaxStreams != 3 || cfg.MaxConnections != 256):
			t.Fatalf("%s: %+v", c.file, cfg)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Fatalf("%s: %v, want %q", c.file, err, c.want)
		}
	}
}

// The bucket gives its size, then refills at its rate.
func TestBucket(t *testing.T) {
	b := newBucket(100, time.Minute)
	now := time.Now()
	b.now = func() time.Time { return now }
	if !b.take(60) || !b.take(40) || b.take(1) {
		t.Fatal("a full bucket of 100 gave other than 100")
	}
	now = now.Add(30 * time.Second)
	if !b.take(50) || b.take(1) {
		t.Fatal("half a minute refilled other than half")
	}
}
