// Package serve runs a node on a port: it opens the instance, starts the
// node's loops, serves the API (gRPC, gRPC-web and Connect over HTTP/1.1 and
// unencrypted HTTP/2), health and readiness, Prometheus metrics and the
// events feed, within the node's limits, records the address in the home
// folder for the command line, and on a signal stops in order: the API
// stops taking calls, the block in progress is sealed, the store is closed
// (decision 113).
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/explorer"
	"github.com/fractalvm/fractal/fractal/node/nodefile"
	"github.com/fractalvm/fractal/fractal/node/rpc"
	"github.com/fractalvm/fractal/fractal/node/wire"
)

// Options are what Run needs beyond the home folder.
type Options struct {
	Config node.Config
	Log    *slog.Logger
	// Root is served at "/"; nil serves the explorer (package explorer).
	Root http.Handler
	// Started, when not nil, is called once the node serves, with its URL.
	Started func(url string)
	// Other, when not nil, opens a home that is not a solo instance's: a
	// validator's home (package gateway's Opener). It returns nil, nil for
	// a home it does not run, which then runs as a solo node.
	Other Opener
}

// Opener opens a home as a backend other than a solo node.
type Opener func(home string, cfg node.Config, log *slog.Logger, m *node.Metrics) (Backend, error)

// drainTime bounds how long a stop waits for calls in flight.
const drainTime = 5 * time.Second

// Run runs the instance in home as a node until ctx ends, then stops it in
// order and returns nil; an error that keeps the node from starting or
// serving is returned at once. A validator's home (opened by opts.Other)
// runs its validator, CometBFT's P2P, RPC and consensus, with the API beside it
// (package gateway, decision 137); its failure (a divergence, a store
// that fails) stops the node with that error.
func Run(ctx context.Context, home string, opts Options) (err error) {
	cfg, log := opts.Config, opts.Log
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	lock, err := nodefile.Acquire(home)
	if err != nil {
		return err
	}
	defer lock.Release()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b, err := open(home, opts, node.NewMetrics(reg))
	if err != nil {
		return err
	}
	in := b.Instance()
	svc, err := rpc.New(b)
	if err != nil {
		b.Close()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		b.Close()
		return fmt.Errorf("node: %w", err)
	}
	url := "http://" + ln.Addr().String()
	if !isLoopback(ln.Addr()) {
		log.Warn("the node listens on an address that is not loopback: anyone who reaches it may read the chain, submit transactions and deploy code; the API has no authentication",
			"listen", ln.Addr().String())
	}
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(rpc.ErrStopping)
	root := opts.Root
	if root == nil {
		root = explorer.New(svc, log)
	}
	srv := newServer(base, cfg, handler(svc, reg, root), log)
	if err := b.Start(); err != nil {
		ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(limitListener(ln, cfg.MaxConnections, cfg.MaxConnectionsPerClient, reg)) }()
	if err := lock.Publish(nodefile.Info{URL: url, PID: os.Getpid(), Instance: wire.Hex(in.ID()), Started: time.Now().UTC()}); err != nil {
		log.Error("recording the address", "err", err)
	}
	log.Info("node serving", "url", url, "instance", wire.Hex(in.ID()), "head", b.Head().Height,
		"queued", b.QueueDepth(), "block_time", time.Duration(cfg.BlockTime).String())
	if opts.Started != nil {
		opts.Started(url)
	}
	select {
	case <-ctx.Done():
	case err = <-served:
		log.Error("serving stopped", "err", err)
	case err = <-b.Failed():
		log.Error("the validator stopped", "err", err)
	}
	log.Info("stopping")
	cancelBase(rpc.ErrStopping) // streams (unavailable, with the height to resume from) and receipt waits answer now
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sctx, cancel := context.WithTimeout(context.Background(), drainTime)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	b.Stop() // the block in progress is sealed; nothing new is
	<-drained
	if cerr := b.Close(); cerr != nil && err == nil {
		err = cerr
	}
	log.Info("stopped", "head", b.Head().Height, "queued", b.QueueDepth())
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// A Backend is what Run serves: a solo node or a validator (package
// gateway). Start starts it, Stop ends its work once the API took its last
// call, Close closes it (also when it never started).
type Backend interface {
	rpc.Backend
	Start() error
	Stop()
	Close() error
	// Failed receives what stops a validator; nil for a solo node.
	Failed() <-chan error
}

// open opens the instance in home as a backend: what opts.Other opens, or
// a solo node.
func open(home string, opts Options, m *node.Metrics) (Backend, error) {
	if opts.Other != nil {
		if b, err := opts.Other(home, opts.Config, opts.Log, m); b != nil || err != nil {
			return b, err
		}
	}
	in, err := fractal.Open(home)
	if err != nil {
		return nil, err
	}
	n, err := node.New(in, opts.Config, opts.Log, m)
	if err != nil {
		in.Close()
		return nil, err
	}
	return solo{n}, nil
}

// solo is a solo node as a backend.
type solo struct{ *node.Node }

func (s solo) Start() error         { s.Node.Start(); return nil }
func (s solo) Failed() <-chan error { return nil }

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// newServer is the HTTP server: HTTP/1.1 and unencrypted HTTP/2 on one
// port, with the node's timeouts and per-connection stream limit. Every
// call's context ends with base.
func newServer(base context.Context, cfg node.Config, h http.Handler, log *slog.Logger) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: time.Duration(cfg.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(cfg.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: cfg.MaxStreamsPerConnection},
		BaseContext:       func(net.Listener) context.Context { return base },
		// Clients that misbehave at the HTTP level (a bad preface, a
		// connection dropped mid-request) are the server's to handle, not
		// the operator's to read about: debug level.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
