package node

import (
	"sync"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// SealEvent is what one seal, or one change of the encrypted mempool, did:
// what Watch and CompactBlocks streams are told live.
type SealEvent struct {
	// Height is the sealed block's, or the head's when no block was sealed
	// (every transaction refused, an encrypted batch fixed or given shares).
	Height    uint64
	Block     *chain.Block      // nil when no block was sealed
	Receipts  []*phases.Receipt // in queue order, accepted and refused
	Encrypted *fractal.EncryptedStatus
	// Notes holds, by ID, the notes the accepted transactions spent and
	// created, when a subscriber asked for note events when it was sealed.
	Notes map[notes.Hash]*notes.Note
}

// Subscription is one stream's feed of live events. Events come on C, in
// order; a subscriber that falls WatchBuffer events behind is dropped:
// Dropped is closed and no more events come.
type Subscription struct {
	C       <-chan *SealEvent
	Dropped <-chan struct{}
	c       chan *SealEvent
	dropped chan struct{}
	notes   bool
}

// hub hands each event to every subscription without waiting for any.
type hub struct {
	mu    sync.Mutex
	subs  map[*Subscription]struct{}
	notes int // subscriptions that want note contents
}

// Subscribe starts a feed of live events; wantNotes asks for note
// contents. Unsubscribe it when done.
func (n *Node) Subscribe(wantNotes bool) *Subscription {
	s := &Subscription{c: make(chan *SealEvent, n.cfg.WatchBuffer), dropped: make(chan struct{}), notes: wantNotes}
	s.C, s.Dropped = s.c, s.dropped
	n.hub.mu.Lock()
	n.hub.subs[s] = struct{}{}
	if wantNotes {
		n.hub.notes++
	}
	n.hub.mu.Unlock()
	return s
}

// Unsubscribe ends a feed.
func (n *Node) Unsubscribe(s *Subscription) {
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	n.hub.drop(s)
}

// drop removes s; caller holds mu.
func (h *hub) drop(s *Subscription) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	if s.notes {
		h.notes--
	}
	close(s.dropped)
}

func (h *hub) wantsNotes() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notes > 0
}

// publish hands ev to every subscription; one whose buffer is full is
// dropped.
func (h *hub) publish(ev *SealEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			h.drop(s)
		}
	}
}
