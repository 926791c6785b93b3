package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/nodefile"
	"github.com/fractalvm/fractal/fractal/node/serve"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/fractal/validator/gateway"
)

// The node: an instance run as a service (docs/cli/node.md).

func init() {
	f := nodeCmd.Flags()
	f.String("listen", "", "address to serve the API on, host:port (default 127.0.0.1:"+node.DefaultPort+", or node-config.json's)")
	f.Duration("block-time", 0, "seal a block this often while transactions are queued (default 1s, or node-config.json's)")
	f.String("log-format", "text", "log lines as text or json (on stderr)")
	f.String("profile", "", "write a CPU profile of the run (DIR/cpu.pprof) and an allocation profile at the stop (DIR/allocs.pprof) into DIR, for go tool pprof")
	nodeStatusCmd.Flags().String("node", "", "the node's URL (default: the node running on --home)")
	nodeCmd.AddCommand(nodeStatusCmd)
	rootCmd.AddCommand(nodeCmd)
}

var nodeCmd = &cobra.Command{
	Use:   "node [--listen HOST:PORT] [--block-time DURATION] [--log-format text|json] [--profile DIR]",
	Short: "Run the instance in --home as a node: an API on one port, sealing blocks as work comes",
	Long: `node runs the instance in --home as a long-running service. One port (loopback,
127.0.0.1:` + node.DefaultPort + `, by default; a warning is logged when it is not a loopback
address) serves the fractal.v1 API as gRPC, gRPC-web and Connect (JSON or binary
over HTTP/1.1 or unencrypted HTTP/2, docs/API.md), /healthz, /readyz, Prometheus
/metrics, /events (the Watch stream as server-sent events) and, at /, the explorer:
web pages of the chain, kept live (docs/explorer.md).

It seals a block every --block-time while transactions are queued, and at once
when a block's worth (max_block_txs) is queued. It writes its address to
HOME/node.json, so that verbs run with the same --home talk to it instead of
opening the store. Limits (connections, streams, request sizes, timeouts,
deploy and simulation budgets) come from HOME/node-config.json when present
(docs/cli/node.md lists them and their defaults).

SIGINT or SIGTERM stops it: the API stops taking calls, the block in progress
is sealed, the store is closed, node.json is removed, and it exits 0. Logs are
structured lines on stderr (--log-format text or json).

A validator's home (written by "fractal devnet") runs its validator as
"fractal validator run" does, CometBFT's P2P and RPC with the instance as its
application, and serves the same API beside it on the address devnet wrote
in node-config.json: submissions go to the validator's mempool, blocks come
from the validators' consensus, proofs and claims carry the certificate of
their commit. The encrypted mempool's writes answer unimplemented there
(docs/API.md "On a validator set").`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		cfg, err := node.LoadConfig(flagHome)
		if err != nil {
			return err
		}
		if s, _ := cmd.Flags().GetString("listen"); s != "" {
			cfg.Listen = s
		}
		if cmd.Flags().Changed("block-time") { // 0s too: refused below, not read as "not given"
			d, _ := cmd.Flags().GetDuration("block-time")
			cfg.BlockTime = node.Duration(d)
		}
		var h slog.Handler
		switch format, _ := cmd.Flags().GetString("log-format"); format {
		case "text":
			h = slog.NewTextHandler(os.Stderr, nil)
		case "json":
			h = slog.NewJSONHandler(os.Stderr, nil)
		default:
			return fmt.Errorf("--log-format %q: text or json", format)
		}
		tuneGC()
		if dir, _ := cmd.Flags().GetString("profile"); dir != "" {
			stopProfile, err := startProfile(dir)
			if err != nil {
				return err
			}
			defer func() {
				if err := stopProfile(); err != nil {
					fmt.Fprintln(os.Stderr, "fractal: node:", err)
				}
			}()
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		done := make(chan error, 1)
		go func() {
			done <- serve.Run(ctx, flagHome, serve.Options{Config: cfg, Log: slog.New(h).With("home", flagHome),
				Other: gateway.Opener(validator.Options{Log: cmd.ErrOrStderr()})})
		}()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
		}
		// A stop seals the block in progress and closes the store within
		// seconds; one that does not (a store whose folder was removed
		// under it retries its writes forever) ends the process anyway.
		select {
		case err := <-done:
			return err
		case <-time.After(stopTimeout):
			return fmt.Errorf("node: not stopped %v after the signal: the store does not close (is %s still there?)", stopTimeout, flagHome)
		}
	}),
}

// stopTimeout bounds how long the node may take to stop after a signal.
const stopTimeout = 15 * time.Second

// startProfile starts a CPU profile into dir/cpu.pprof; the returned
// function ends it and writes the allocations so far to dir/allocs.pprof.
// Profiles go to files, never to the API's port.
func startProfile(dir string) (stop func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, fmt.Errorf("--profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		err := cpu.Close()
		allocs, cerr := os.Create(filepath.Join(dir, "allocs.pprof"))
		if cerr != nil {
			return errors.Join(err, cerr)
		}
		return errors.Join(err, pprof.Lookup("allocs").WriteTo(allocs, 0), allocs.Close())
	}, nil
}

// tuneGC trades memory for CPU in a long-running node: the collector runs
// when the heap has grown by 200% rather than 100%, within a soft limit of
// 2 GiB. GOGC and GOMEMLIMIT in the environment take precedence (decision
// 113; 200 rather than 400 since the pipelined seal, decision 186: a larger
// heap cost more in fresh memory cleared than it saved in collections).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(2 << 30)
	}
}

var nodeStatusCmd = &cobra.Command{
	Use:   "status [--node URL]",
	Short: "Print the running node's address, instance, head and mempool",
	Long: `status asks the node running on --home (or the one at --node URL) for its
status and prints its URL, process, instance, head block and mempool depth.
It waits up to --wait for a node that is starting, and fails when none
answers.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		deadline := time.Now().Add(flagWait)
		for delay := 20 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
			err := nodeStatus(cmd)
			var ce *client.Error
			if err == nil || !errors.Is(err, errNoNode) && !(errors.As(err, &ce) && ce.Unreachable()) || time.Now().Add(delay).After(deadline) {
				return err
			}
			time.Sleep(delay)
		}
	}),
}

// errNoNode reports a home folder no node runs on.
var errNoNode = errors.New("no node runs on this home folder")

func nodeStatus(cmd *cobra.Command) error {
	url, _ := cmd.Flags().GetString("node")
	pid := 0
	if url == "" {
		info, err := nodefile.Find(flagHome)
		if err != nil {
			return err
		}
		if info == nil {
			return fmt.Errorf("%w (%s): start one with fractal --home %s node", errNoNode, flagHome, flagHome)
		}
		url, pid = info.URL, info.PID
	}
	c, err := client.New(url)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	out := map[string]any{"url": c.URL, "instance": st.InstanceId, "head": st.Head.Height, "head_hash": st.Head.Hash,
		"mempool_depth": st.MempoolDepth, "encrypted_mempool": st.EncryptedMempool}
	if pid != 0 {
		out["pid"] = pid
	}
	return emit(cmd, out, func(w io.Writer) {
		fmt.Fprintf(w, "node %s", c.URL)
		if pid != 0 {
			fmt.Fprintf(w, " (pid %d)", pid)
		}
		fmt.Fprintf(w, "\ninstance %s\nhead %d %s\n%d queued\n", st.InstanceId, st.Head.Height, st.Head.Hash, st.MempoolDepth)
	})
}
