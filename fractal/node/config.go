package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/phases"
)

// ConfigFile is the node's optional configuration in the home folder. Every
// field may be left out; DefaultConfig gives the defaults (docs/cli/node.md,
// decision 115).
const ConfigFile = "node-config.json"

// maxConfigFile bounds node-config.json.
const maxConfigFile = 64 << 10

// Config is how a node listens, seals and bounds what clients may ask.
type Config struct {
	// Listen is the API's address, host:port; a port of 0 picks a free one.
	Listen string `json:"listen"`
	// BlockTime is how often a block is sealed while work is queued; a
	// block that fills (max_block_txs queued) is sealed at once.
	BlockTime Duration `json:"block_time"`

	// MaxConnections caps open client connections; more wait to be
	// accepted.
	MaxConnections int `json:"max_connections"`
	// MaxConnectionsPerClient caps the connections one remote address
	// holds open; one more is closed as soon as it is accepted, so that one
	// address cannot take every slot of max_connections (decision 170).
	MaxConnectionsPerClient int `json:"max_connections_per_client"`
	// MaxStreams caps Watch and CompactBlocks streams open at once, over
	// all connections; more are refused with resource_exhausted.
	MaxStreams int `json:"max_streams"`
	// MaxStreamsPerClient caps the streams one client address holds, so
	// that one client cannot take every slot of max_streams.
	MaxStreamsPerClient int `json:"max_streams_per_client"`
	// MaxStreamsPerConnection caps the HTTP/2 streams (calls in flight) of
	// one connection.
	MaxStreamsPerConnection int `json:"max_streams_per_connection"`
	// MaxRequestBytes caps one request body, whatever its protocol.
	MaxRequestBytes int64 `json:"max_request_bytes"`
	// MaxRequestBytesInFlight caps the request bytes all calls hold at
	// once, beyond the first 64 KiB of each (a body costs about twice its
	// size while it is decoded); a call over it is refused with
	// resource_exhausted.
	MaxRequestBytesInFlight int64 `json:"max_request_bytes_in_flight"`
	// ReadHeaderTimeout is how long a client may take to send a request's
	// headers, counted from the connection's accept (the HTTP/2 preface
	// too) or from its previous request: a connection that sends nothing
	// is closed after it. RequestReadTimeout is how long a client may take
	// to send a body; IdleTimeout is how long an idle connection stays
	// open.
	ReadHeaderTimeout  Duration `json:"read_header_timeout"`
	RequestReadTimeout Duration `json:"request_read_timeout"`
	IdleTimeout        Duration `json:"idle_timeout"`
	// WriteTimeout is how long a client may take to take in one write of a
	// response (one message of a stream): a client that stops reading is
	// cut off, and its stream's slot freed.
	WriteTimeout Duration `json:"write_timeout"`
	// MaxReceiptWait caps how long SubmitTransaction waits for a receipt.
	MaxReceiptWait Duration `json:"max_receipt_wait"`
	// MaxTxGas caps the gas limit of a transaction admitted or simulated
	// (fractal.Instance.CheckTxGas; the home's tx submit and simulate and
	// a validator's CheckTx too, decision 170): one transaction runs for up
	// to its limit times the worst nanoseconds per gas (134 ns, decision
	// 090) while its block waits for it.
	MaxTxGas uint64 `json:"max_tx_gas"`
	// SimulateConcurrency caps simulations running at once; more are
	// refused with resource_exhausted. SimulateGasLimit is the largest gas
	// limit a simulated transaction may carry.
	SimulateConcurrency int    `json:"simulate_concurrency"`
	SimulateGasLimit    uint64 `json:"simulate_gas_limit"`
	// DeployBytesPerMinute caps the Lua source DeployCode stores, over all
	// clients: a bucket of that many bytes refilled over a minute.
	DeployBytesPerMinute int64 `json:"deploy_bytes_per_minute"`
	// RefusedReceipts is how many receipts of refused transactions the node
	// remembers (in memory only, decision 080).
	RefusedReceipts int `json:"refused_receipts"`
	// WatchBuffer is how many sealed blocks a stream may fall behind before
	// it is ended with resource_exhausted.
	WatchBuffer int `json:"watch_buffer"`
	// SubmitBatch caps the submissions admitted with one durable write.
	SubmitBatch int `json:"submit_batch"`
	// MaxQueueBytes bounds the encodings of the queue a solo node keeps in
	// memory (decision 184).
	MaxQueueBytes int64 `json:"max_queue_bytes"`
}

// DefaultPort is the port a node listens on by default.
const DefaultPort = "7810"

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:                  "127.0.0.1:" + DefaultPort,
		BlockTime:               Duration(time.Second),
		MaxConnections:          256,
		MaxConnectionsPerClient: 128,
		MaxStreams:              64,
		MaxStreamsPerClient:     16,
		MaxStreamsPerConnection: 256,
		MaxRequestBytes:         8 << 20,
		MaxRequestBytesInFlight: 64 << 20,
		ReadHeaderTimeout:       Duration(2 * time.Second),
		RequestReadTimeout:      Duration(10 * time.Second),
		IdleTimeout:             Duration(60 * time.Second),
		WriteTimeout:            Duration(30 * time.Second),
		MaxReceiptWait:          Duration(30 * time.Second),
		MaxTxGas:                fractal.DefaultMaxTxGas,
		SimulateConcurrency:     2,
		SimulateGasLimit:        10_000_000,
		DeployBytesPerMinute:    4 << 20,
		RefusedReceipts:         10_000,
		WatchBuffer:             256,
		SubmitBatch:             1024,
		MaxQueueBytes:           fractal.DefaultMaxQueueBytes,
	}
}

// LoadConfig returns home's node-config.json over the defaults, or the
// defaults when there is none. Unknown fields are refused.
func LoadConfig(home string) (Config, error) {
	cfg := DefaultConfig()
	raw, err := inputfile.Read(filepath.Join(home, ConfigFile), maxConfigFile)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("node: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("node: %s: %w", ConfigFile, err)
	}
	if err := cfg.Check(); err != nil {
		return cfg, fmt.Errorf("node: %s: %w", ConfigFile, err)
	}
	return cfg, nil
}

// Check refuses values outside their ranges.
func (c Config) Check() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	for _, d := range []struct {
		name     string
		v        Duration
		min, max time.Duration
	}{
		{"block_time", c.BlockTime, time.Millisecond, time.Hour},
		{"read_header_timeout", c.ReadHeaderTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"request_read_timeout", c.RequestReadTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"idle_timeout", c.IdleTimeout, time.Second, time.Hour},
		{"write_timeout", c.WriteTimeout, 100 * time.Millisecond, time.Hour},
		{"max_receipt_wait", c.MaxReceiptWait, 0, 10 * time.Minute},
	} {
		if time.Duration(d.v) < d.min || time.Duration(d.v) > d.max {
			return fmt.Errorf("%s %v outside %v..%v", d.name, time.Duration(d.v), d.min, d.max)
		}
	}
	for _, n := range []struct {
		name     string
		v        int64
		min, max int64
	}{
		{"max_connections", int64(c.MaxConnections), 1, 1 << 20},
		{"max_connections_per_client", int64(c.MaxConnectionsPerClient), 1, 1 << 20},
		{"max_streams", int64(c.MaxStreams), 0, 1 << 20},
		{"max_streams_per_client", int64(c.MaxStreamsPerClient), 1, 1 << 20},
		{"max_streams_per_connection", int64(c.MaxStreamsPerConnection), 1, 1 << 16},
		{"max_request_bytes", c.MaxRequestBytes, 1 << 20, 1 << 30},
		{"max_request_bytes_in_flight", c.MaxRequestBytesInFlight, c.MaxRequestBytes, 1 << 40},
		{"max_tx_gas", int64(min(c.MaxTxGas, 1<<62)), 1, phases.MaxGasLimit},
		{"simulate_concurrency", int64(c.SimulateConcurrency), 0, 1 << 10},
		{"simulate_gas_limit", int64(min(c.SimulateGasLimit, 1<<62)), 1, phases.MaxGasLimit},
		{"deploy_bytes_per_minute", c.DeployBytesPerMinute, 0, 1 << 40},
		{"refused_receipts", int64(c.RefusedReceipts), 0, 1 << 24},
		{"watch_buffer", int64(c.WatchBuffer), 1, 1 << 20},
		{"submit_batch", int64(c.SubmitBatch), 1, 1 << 16},
		{"max_queue_bytes", c.MaxQueueBytes, 1 << 20, 1 << 40},
	} {
		if n.v < n.min || n.v > n.max {
			return fmt.Errorf("%s %d outside %d..%d", n.name, n.v, n.min, n.max)
		}
	}
	return nil
}

// Duration is a time.Duration written as Go writes one ("1s", "250ms").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"1s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
