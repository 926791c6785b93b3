// Package validator runs one validator of a validator-set instance:
// CometBFT v0.38 embedded in this process (its P2P and RPC on loopback
// addresses from the home's config.toml), the instance as its ABCI
// application through a local client (package fractal/abci), CometBFT's
// own stores in goleveldb under data/ and the instance's badger store
// beside them. It also writes devnets (WriteDevnet) and talks to a running
// validator over CometBFT's RPC (Client).
//
// CometBFT traps it works around (docs/decisions/120): a panic of a
// consensus routine after Stop (dbguard.go), stores and the ABCI proxy
// that Stop leaves open, privval's os.Exit on a damaged key file, a
// handshake that panics on an app-hash mismatch, and a consensus failure
// that only a log line reports (it stops the validator with one line
// naming the height and, for a divergence, the first transaction).
package validator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/cli/flags"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/service"
	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/certify"
)

// Options are how a validator runs beside what its home says.
type Options struct {
	// Log receives CometBFT's log lines (os.Stderr when nil).
	Log io.Writer
	// LogLevel filters them, in CometBFT's log_level syntax ("*:error"
	// when empty; "consensus:info,*:error" shows the heights go by).
	LogLevel string
	// OnCommit is called after each block the instance commits.
	OnCommit func(abci.Committed)
	// OnStart is called by Run once the node started.
	OnStart func(*Node)

	// faulty, in this package's tests only, stands between CometBFT and
	// the application: a validator that goes wrong on purpose.
	faulty func(abcitypes.Application) abcitypes.Application
	// badDeal, in this package's tests only, replaces this validator's
	// deal in an epoch's DKG.
	badDeal dealHook
}

// A Node is a running validator (or a full node, when its key is not in
// the set).
type Node struct {
	home     string
	conf     *cfg.Config
	settings *Settings
	in       *fractal.Instance
	app      *abci.App
	node     *node.Node
	dbs      *dbSet
	epochs   *epochKeyholder // this validator's party in the epochs' DKGs; nil without epochs

	failOnce sync.Once
	failed   chan error // receives the first failure, then is closed
	stopOnce sync.Once
	stopErr  error
}

// Open opens the validator home: it checks CometBFT's files and the
// genesis against the instance, opens the instance, and makes the node
// (CometBFT's handshake replays the blocks the instance lacks). Start it,
// then Stop it.
func Open(home string, o Options) (n *Node, err error) {
	if !IsHome(home) {
		return nil, fmt.Errorf("validator: %s is not a validator's home (no %s, config/genesis.json and %s; fractal devnet writes them)", home, instanceConfig, cometConfigFile)
	}
	n = &Node{home: home, dbs: &dbSet{}, failed: make(chan error, 1)}
	if n.settings, err = readSettings(home); err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	if n.conf, err = loadConfig(home); err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	pv, err := loadFilePV(n.conf)
	if err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	nodeKey, err := loadNodeKey(n.conf)
	if err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	if n.in, err = fractal.Open(home); err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	opened := n // n is nil once a failure returns
	defer func() {
		if err != nil {
			opened.dbs.closeAll()
			opened.in.Close()
		}
	}()
	doc, err := readGenesis(n.conf)
	if err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	genesis := func() (*types.GenesisDoc, error) { return doc, nil }
	if err = checkGenesis(doc, n.in); err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	if n.app, err = abci.New(n.in); err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	held, err := loadKeyShares(home, n.in, n.app)
	if err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	n.app.Fatal = func(err error) { n.fail(fmt.Errorf("validator: the instance's store failed: %w", err)) }
	n.app.OnCommit = func(c abci.Committed) {
		if o.OnCommit != nil {
			o.OnCommit(c)
		}
		if n.epochs != nil {
			n.epochs.poke()
		}
	}
	logger, err := n.logger(o)
	if err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	var app abcitypes.Application = n.app
	if o.faulty != nil {
		app = o.faulty(app)
	}
	n.node, err = newNode(n.conf, pv, nodeKey, app, genesis, n.dbs, logger)
	if err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	n.app.SetCertificates(blockCerts{n.node.BlockStore()})
	if err := n.startEpochKeyholder(held, lineLog(o.Log), o.badDeal); err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	return n, nil
}

// lineLog writes one line per call to w (os.Stderr when nil).
func lineLog(w io.Writer) func(string) {
	if w == nil {
		w = os.Stderr
	}
	return func(s string) { fmt.Fprintf(w, "fractal: %s\n", s) }
}

// newNode is node.NewNode, turning the panic CometBFT's handshake raises on
// an app hash that differs from the one it stored into an error.
func newNode(conf *cfg.Config, pv types.PrivValidator, key *p2p.NodeKey, app abcitypes.Application, genesis node.GenesisDocProvider, dbs *dbSet, logger cmtlog.Logger) (n *node.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = nil, fmt.Errorf("the instance does not match CometBFT's stored state: %v", firstLine(fmt.Sprint(r)))
		}
	}()
	return node.NewNode(conf, pv, key, proxy.NewConnSyncLocalClientCreator(app), genesis, dbs.provide,
		node.DefaultMetricsProvider(conf.Instrumentation), logger)
}

// checkGenesis checks that CometBFT's genesis is the instance's: its chain
// ID, its validator set and its app_state (the instance's trust entry and
// threshold key).
func checkGenesis(doc *types.GenesisDoc, in *fractal.Instance) error {
	if want := certify.ChainID(in.ID()); doc.ChainID != want {
		return fmt.Errorf("genesis: chain ID %q, the instance's is %q", doc.ChainID, want)
	}
	vals := make([]*types.Validator, len(doc.Validators))
	for i, v := range doc.Validators {
		vals[i] = types.NewValidator(v.PubKey, v.Power)
	}
	if got, want := types.NewValidatorSet(vals).Hash(), in.Validators().Hash(); !bytes.Equal(got, want[:]) {
		return fmt.Errorf("genesis: its validators hash to %X, the instance's set to %X", got, want)
	}
	_, err := abci.CheckAppState(doc.AppState, in)
	return err
}

// Start starts the node: P2P, RPC, consensus.
func (n *Node) Start() error {
	if err := n.node.Start(); err != nil {
		n.Stop()
		return fmt.Errorf("validator: start: %w", err)
	}
	return nil
}

// Stop stops the node and closes its stores and the instance. It may be
// called more than once.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		if n.epochs != nil {
			n.epochs.stop()
		}
		var errs []error
		if n.node.IsRunning() {
			errs = append(errs, n.node.Stop())
			n.node.Wait()
		}
		// Node.OnStop does not stop the ABCI proxy nor close every store.
		errs = append(errs, n.node.ProxyApp().Stop(), n.dbs.closeAll(), n.in.Close())
		for _, err := range errs {
			if err != nil && !errors.Is(err, service.ErrAlreadyStopped) && !errors.Is(err, service.ErrNotStarted) && n.stopErr == nil {
				n.stopErr = err
			}
		}
	})
	return n.stopErr
}

// Failed receives the error that stopped this validator's part in
// consensus: its store failed, or its execution differs from the
// network's (the message names the height and the first transaction), or
// consensus failed otherwise.
func (n *Node) Failed() <-chan error { return n.failed }

func (n *Node) fail(err error) {
	n.failOnce.Do(func() { n.failed <- err })
}

// Instance is the validator's instance (read it; its blocks come from
// consensus).
func (n *Node) Instance() *fractal.Instance { return n.in }

// App is the ABCI application.
func (n *Node) App() *abci.App { return n.app }

// Comet is the embedded CometBFT node.
func (n *Node) Comet() *node.Node { return n.node }

// Home is the validator's home folder.
func (n *Node) Home() string { return n.home }

// Submit hands raw (a transaction's encoding, or fractal.DeployTx) to the
// validator's mempool, as CometBFT's broadcast_tx_sync does, and returns
// the admission's answer (code 0: admitted, gossiped, proposed in turn).
func (n *Node) Submit(ctx context.Context, raw []byte) (*abcitypes.ResponseCheckTx, error) {
	done := make(chan *abcitypes.ResponseCheckTx, 1)
	err := n.node.Mempool().CheckTx(raw, func(r *abcitypes.ResponseCheckTx) { done <- r }, mempool.TxInfo{})
	if err != nil {
		return nil, fmt.Errorf("validator: submit: %w", err)
	}
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run opens the validator in home, runs it until ctx is done or it fails,
// and stops it. The error is the failure, one line.
func Run(ctx context.Context, home string, o Options) error {
	n, err := Open(home, o)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		return err
	}
	if o.OnStart != nil {
		o.OnStart(n)
	}
	select {
	case <-ctx.Done():
		return n.Stop()
	case err := <-n.Failed():
		n.Stop()
		return err
	}
}

// logger is CometBFT's logger for the node: lines at o.LogLevel to o.Log,
// and a hook that sees the consensus failure CometBFT reports only there.
func (n *Node) logger(o Options) (cmtlog.Logger, error) {
	w := o.Log
	if w == nil {
		w = os.Stderr
	}
	level := o.LogLevel
	if level == "" {
		level = "*:error"
	}
	l, err := flags.ParseLogLevel(level, cmtlog.NewTMLogger(cmtlog.NewSyncWriter(w)), "info")
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return failureHook{Logger: l, failed: n.consensusFailed}, nil
}

// failureHook passes every line on and reports CometBFT's "CONSENSUS
// FAILURE!!!": the consensus routine recovered a panic (an invalid block
// the others committed, an application error) and stopped; the process
// and its RPC stay up, following nothing.
type failureHook struct {
	cmtlog.Logger
	failed func(msg string)
}

func (f failureHook) Error(msg string, kv ...any) {
	if msg == "CONSENSUS FAILURE!!!" {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == "err" {
				go f.failed(fmt.Sprint(kv[i+1]))
			}
		}
	}
	f.Logger.Error(msg, kv...)
}

func (f failureHook) With(kv ...any) cmtlog.Logger {
	return failureHook{Logger: f.Logger.With(kv...), failed: f.failed}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
