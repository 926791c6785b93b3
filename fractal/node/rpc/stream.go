package rpc

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// Both streams send what is sealed already from the store, then subscribe
// to the node's live events, catch up on what was sealed meanwhile, and go
// on live; a live event for a height already sent is skipped, so nothing
// is sent twice (decision 110 "Events resume by height").

// ErrStopping is the cause the node's server cancels every call's context
// with when the node stops: a stream then ends unavailable with the height
// to resume from, not as if its client had cancelled it.
var ErrStopping = errors.New("the node is stopping")

// ended is the error a stream that would send height next ends with once
// ctx is done: unavailable with the height to resume from when the node
// stops, the context's own error otherwise (the client went away).
func ended(ctx context.Context, next uint64) error {
	if errors.Is(context.Cause(ctx), ErrStopping) {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%w; resume from height %d", ErrStopping, next))
	}
	return ctx.Err()
}

func (s *Service) Watch(ctx context.Context, req *connect.Request[v1.WatchRequest], stream *connect.ServerStream[v1.WatchResponse]) error {
	return s.WatchEvents(ctx, req.Msg, stream.Send)
}

// WatchEvents runs a Watch request, sending each event with send: the
// stream of the API, or another transport of the same events (the node's
// server-sent events). send(nil) comes once, when the stream is subscribed
// to live events: the transport sends its headers then, so a client whose
// call returned misses no event it causes afterwards.
func (s *Service) WatchEvents(ctx context.Context, m *v1.WatchRequest, send func(*v1.WatchResponse) error) error {
	if err := check(m); err != nil {
		return err
	}
	w := &watch{s: s, send: send, receipts: m.Receipts, live: m.LiveOnlyEvents}
	for i, text := range m.NotePatterns {
		p, err := notes.ParsePattern(text)
		if err != nil {
			return invalid("note_patterns[%d]: %v", i, err)
		}
		w.patterns = append(w.patterns, p)
	}
	release, err := s.b.AcquireStream()
	if err != nil {
		return codeOf(err)
	}
	defer release()
	next := s.b.Head().Height + 1
	if m.StartHeight != nil {
		next = *m.StartHeight
	}
	return s.follow(ctx, next, len(w.patterns) > 0, w.stored, func() error { return send(nil) }, w.sealed)
}

// follow sends the stored blocks from next on with stored, calls
// subscribed once it follows the live events, then sends them with sealed,
// until ctx ends or the subscription is dropped.
func (s *Service) follow(ctx context.Context, next uint64, wantNotes bool,
	stored func(ctx context.Context, h uint64) error, subscribed func() error, sealed func(ev *node.SealEvent) error) error {
	catchUp := func() error {
		for ; next <= s.b.Head().Height; next++ {
			if ctx.Err() != nil {
				return ended(ctx, next)
			}
			if err := stored(ctx, next); err != nil {
				return err
			}
		}
		return nil
	}
	if err := catchUp(); err != nil {
		return err
	}
	sub := s.b.Subscribe(wantNotes)
	defer s.b.Unsubscribe(sub)
	if err := catchUp(); err != nil {
		return err
	}
	if err := subscribed(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ended(ctx, next)
		case <-sub.Dropped:
			return connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("the stream fell %d events behind the node; resume from height %d", s.b.Config().WatchBuffer, next))
		case ev := <-sub.C:
			if ev.Block != nil && ev.Block.Height < next {
				continue // sent from the store already
			}
			if ev.Block != nil && ev.Block.Height > next {
				// Not expected (the subscription started before the
				// catch-up read the head), but never skip a block.
				if err := catchUp(); err != nil {
					return err
				}
				continue
			}
			if err := sealed(ev); err != nil {
				return err
			}
			if ev.Block != nil {
				next = ev.Block.Height + 1
			}
		}
	}
}

// watch is one Watch stream.
type watch struct {
	s        *Service
	send     func(*v1.WatchResponse) error
	receipts bool
	live     bool
	patterns []notes.Pattern
}

func (w *watch) matches(k notes.StateKey) bool {
	for _, p := range w.patterns {
		if p.Match(k) {
			return true
		}
	}
	return false
}

// stored sends the events of the stored block at height h: spent notes by
// reference only (their contents are deleted with them), created notes
// with their contents while they still live.
func (w *watch) stored(ctx context.Context, h uint64) error {
	b, err := w.s.in.Block(h)
	if err != nil {
		return internal(err)
	}
	if w.receipts || len(w.patterns) > 0 {
		snap := w.s.in.Snapshot()
		defer snap.Close()
		for i, id := range b.TxIDs {
			rc, err := w.s.in.Receipt(id)
			if err != nil {
				return internal(err)
			}
			err = w.transaction(h, uint32(i), rc, func(r phases.NoteRef, spent bool) *notes.Note {
				if spent {
					return nil
				}
				n, err := snap.Note(r.Key)
				if err != nil || n == nil || n.ID() != r.ID {
					return nil
				}
				return n
			})
			if err != nil {
				return err
			}
		}
	}
	return w.send(&v1.WatchResponse{Height: h, Event: &v1.WatchResponse_Block{Block: wire.Header(b)}})
}

// sealed sends the events of one live seal.
func (w *watch) sealed(ev *node.SealEvent) error {
	index := uint32(0)
	for _, rc := range ev.Receipts {
		if rc.Status != phases.Accepted {
			if w.live {
				if err := w.send(&v1.WatchResponse{Height: ev.Height, Event: &v1.WatchResponse_Refused{Refused: wire.Receipt(rc)}}); err != nil {
					return err
				}
			}
			continue
		}
		err := w.transaction(ev.Height, index, rc, func(r phases.NoteRef, _ bool) *notes.Note { return ev.Notes[r.ID] })
		if err != nil {
			return err
		}
		index++
	}
	if ev.Encrypted != nil && w.live {
		if err := w.send(&v1.WatchResponse{Height: ev.Height, Event: &v1.WatchResponse_EncryptedBatch{EncryptedBatch: wire.EncryptedBatch(ev.Encrypted)}}); err != nil {
			return err
		}
	}
	if ev.Block == nil {
		return nil
	}
	return w.send(&v1.WatchResponse{Height: ev.Height, Event: &v1.WatchResponse_Block{Block: wire.Header(ev.Block)}})
}

// transaction sends a committed transaction's receipt and note events;
// content gives a note's contents when the node has them.
func (w *watch) transaction(h uint64, index uint32, rc *phases.Receipt, content func(r phases.NoteRef, spent bool) *notes.Note) error {
	if w.receipts {
		if err := w.send(&v1.WatchResponse{Height: h, TxIndex: index, Event: &v1.WatchResponse_Receipt{Receipt: wire.Receipt(rc)}}); err != nil {
			return err
		}
	}
	for _, list := range []struct {
		refs  []phases.NoteRef
		spent bool
	}{{rc.Inputs, true}, {rc.Outputs, false}} {
		for _, r := range list.refs {
			if !w.matches(r.Key) {
				continue
			}
			ne := &v1.NoteEvent{TxId: wire.Hex(rc.TxID), Ref: wire.NoteRef(r)}
			if n := content(r, list.spent); n != nil {
				ne.Note = wire.Note(n)
			}
			resp := &v1.WatchResponse{Height: h, TxIndex: index, Event: &v1.WatchResponse_NoteCreated{NoteCreated: ne}}
			if list.spent {
				resp.Event = &v1.WatchResponse_NoteSpent{NoteSpent: ne}
			}
			if err := w.send(resp); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) CompactBlocks(ctx context.Context, req *connect.Request[v1.CompactBlocksRequest], stream *connect.ServerStream[v1.CompactBlocksResponse]) error {
	m, err := checked(req)
	if err != nil {
		return err
	}
	if m.Follow && m.EndHeight != nil {
		return invalid("follow keeps the stream open past the end: give end_height or follow, not both")
	}
	release, err := s.b.AcquireStream()
	if err != nil {
		return codeOf(err)
	}
	defer release()
	send := func(ctx context.Context, h uint64) error {
		cb, err := s.compact(h)
		if err != nil {
			return err
		}
		return stream.Send(&v1.CompactBlocksResponse{CompactBlock: cb})
	}
	if !m.Follow {
		// The store's head, as GetBlock reports it: the node's own view
		// of it moves just after a seal commits.
		hb, err := s.head()
		if err != nil {
			return err
		}
		last := hb.Height
		if m.EndHeight != nil {
			last = min(last, *m.EndHeight)
		}
		for h := m.StartHeight; h <= last; h++ {
			if ctx.Err() != nil {
				return ended(ctx, h)
			}
			if err := send(ctx, h); err != nil {
				return err
			}
		}
		return nil
	}
	flush := func() error { return stream.Send(nil) }
	return s.follow(ctx, m.StartHeight, false, send, flush, func(ev *node.SealEvent) error {
		if ev.Block == nil {
			return nil
		}
		return send(ctx, ev.Block.Height)
	})
}

// compact reads the compact form of the block at h.
func (s *Service) compact(h uint64) (*v1.CompactBlock, error) {
	b, err := s.in.Block(h)
	if err != nil {
		return nil, internal(err)
	}
	txs, err := s.in.Transactions(b)
	if err != nil {
		return nil, internal(err)
	}
	cb, err := wallet.Compact(b, txs)
	if err != nil {
		return nil, internal(err)
	}
	return wire.CompactBlock(cb), nil
}
