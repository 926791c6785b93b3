// Package relay moves exports between two nodes over their APIs, with no
// folder in common: it lists the source's exports to the destination, asks
// the source for each one's claim, and submits to the destination the
// import transaction, signed with the relayer's own key (an import may be
// signed by anyone: the claim proves the export, the destination's trust
// file decides whom to believe). Follow keeps relaying as the source seals
// blocks (decision 117).
package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/errgroup"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// Relayer relays from one node to another.
type Relayer struct {
	From, To *client.Client
	Signer   keys.PrivateKey
	Log      *slog.Logger

	mu   sync.Mutex
	done map[[32]byte]bool // exports the destination is known to have imported
}

// New returns a relayer from one node to another, signing with signer.
func New(from, to *client.Client, signer keys.PrivateKey, log *slog.Logger) *Relayer {
	return &Relayer{From: from, To: to, Signer: signer, Log: log, done: map[[32]byte]bool{}}
}

// parallel is how many imports a pass submits at once.
const parallel = 16

// Once relays every export of the source addressed to the destination that
// the destination has not imported, and waits for their receipts. It
// refuses a source the destination's trust file does not name with the
// genesis hash the source reports. An import still queued when the
// destination's wait ends counts as pending: the next pass looks again.
func (r *Relayer) Once(ctx context.Context) (*fractal.RelayResult, error) {
	from, to, err := r.check(ctx)
	if err != nil {
		return nil, err
	}
	exports, err := r.From.Exports(ctx, &to)
	if err != nil {
		return nil, err
	}
	res := &fractal.RelayResult{}
	var pending []*chain.ExportRecord
	for _, e := range exports {
		id := e.Record.ID()
		if r.known(id) {
			continue
		}
		done, err := r.To.Imported(ctx, id)
		if err != nil {
			return nil, err
		}
		if done {
			r.mark(id)
			continue
		}
		if e.Record.From != from {
			return nil, fmt.Errorf("relay: the source listed export %x of instance %x", id, e.Record.From)
		}
		pending = append(pending, e.Record)
	}
	res.Pending = len(pending)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, rec := range pending {
		g.Go(func() error {
			rc, err := r.relay(gctx, rec)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case rc == nil: // still queued
			case rc.Status == phases.Accepted:
				r.mark(rec.ID())
				res.Imported = append(res.Imported, rec.ID())
			default:
				res.Refused = append(res.Refused, rc)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return res, nil
}

// check returns the source's and destination's instance IDs after checking
// that the destination trusts the source as it reports itself.
func (r *Relayer) check(ctx context.Context) (from, to [32]byte, err error) {
	src, err := r.From.TrustEntry(ctx)
	if err != nil {
		return from, to, err
	}
	dst, err := r.To.TrustEntry(ctx)
	if err != nil {
		return from, to, err
	}
	peers, err := r.To.Peers(ctx)
	if err != nil {
		return from, to, err
	}
	for _, p := range peers {
		if p.ID != src.ID {
			continue
		}
		if p.Genesis != src.Genesis {
			return from, to, fmt.Errorf("relay: the source's genesis block is %x, the destination's trust file names %x", src.Genesis, p.Genesis)
		}
		return src.ID, dst.ID, nil
	}
	return from, to, fmt.Errorf("relay: instance %x is not in the destination's trust file (fractal peers add)", src.ID)
}

// relay imports one export: its receipt, or nil while it is still queued.
func (r *Relayer) relay(ctx context.Context, rec *chain.ExportRecord) (*phases.Receipt, error) {
	raw, err := r.From.Claim(ctx, rec.ID())
	if err != nil {
		return nil, err
	}
	c, err := chain.DecodeClaim(raw)
	if err != nil {
		return nil, fmt.Errorf("relay: the source's claim of export %x: %w", rec.ID(), err)
	}
	if c.Record.ID() != rec.ID() {
		return nil, fmt.Errorf("relay: the source sent the claim of export %x for %x", c.Record.ID(), rec.ID())
	}
	tx := chain.ImportTx(c, r.Signer.Public())
	if err := tx.Sign(rand.Reader, r.Signer); err != nil {
		return nil, err
	}
	out, err := r.To.Submit(ctx, tx, true)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Code == connect.CodeAlreadyExists {
		return nil, nil // submitted before (by us or another relayer) and not sealed yet
	}
	if err != nil {
		return nil, fmt.Errorf("relay: export %x: %w", rec.ID(), err)
	}
	if out.State == v1.TransactionState_TRANSACTION_STATE_QUEUED {
		return nil, nil
	}
	r.Log.Info("import", "export", wire.Hex(rec.ID()), "tx", wire.Hex(out.ID), "status", out.Receipt.Status.String(), "height", out.Height)
	return out.Receipt, nil
}

func (r *Relayer) known(id [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[id]
}

func (r *Relayer) mark(id [32]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[id] = true
}

// finishPass bounds how long a stopped follower waits for its last pass.
const finishPass = 5 * time.Second

// Follow relays once, then again after every block the source seals, as
// its Watch stream reports them, until ctx ends. Blocks sealed during a
// pass make one more pass, not one each. A stream that breaks (the source
// restarting, a stream too far behind) is opened again after a pause;
// since each pass looks at every pending export, no export is missed.
// report, when not nil, is told each pass's result. When ctx ends, a pass
// in progress still finishes (for at most finishPass), so that an import
// already submitted is waited for and reported rather than dropped.
func (r *Relayer) Follow(ctx context.Context, report func(*fractal.RelayResult)) error {
	kick := make(chan struct{}, 1)
	kick <- struct{}{}
	passes := make(chan struct{})
	passCtx, cancelPass := context.WithCancel(context.WithoutCancel(ctx))
	stopPass := context.AfterFunc(ctx, func() { time.AfterFunc(finishPass, cancelPass) })
	defer func() { stopPass(); cancelPass() }()
	go func() {
		defer close(passes)
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			res, err := r.Once(passCtx)
			switch {
			case err != nil && passCtx.Err() == nil:
				r.Log.Warn("relay pass failed", "err", err)
			case err == nil && report != nil:
				report(res)
			}
		}
	}()
	defer func() { <-passes }()
	for pause := time.Second; ; pause = min(2*pause, 30*time.Second) {
		err := r.From.Watch(ctx, &v1.WatchRequest{}, func(ev *v1.WatchResponse) error {
			if ev.GetBlock() != nil {
				pause = time.Second
				select {
				case kick <- struct{}{}:
				default:
				}
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		r.Log.Warn("the source's event stream ended; opening it again", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		select { // the stream was down: look again
		case kick <- struct{}{}:
		default:
		}
	}
}
