package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// sealLoop seals a block every block time while work is queued, and again
// at once while the last block was full: cut by max_block_txs or
// max_block_gas before what was queued when it began (decision 113). Seals
// are pipelined (decision 186): a block's write lands while the next block
// executes, and the announcer tells everyone what each did once it is
// durable. On Stop it returns after the seal in progress has landed and
// been announced.
func (n *Node) sealLoop() {
	defer close(n.sealDone)
	landing := make(chan *landing, 1)
	announced := make(chan struct{})
	go n.announcer(landing, announced)
	defer func() {
		close(landing)
		<-announced
	}()
	tick := time.NewTicker(time.Duration(n.cfg.BlockTime))
	defer tick.Stop()
	var last *fractal.PendingSeal // the last seal handed to the announcer
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		case <-n.kick:
		}
		for n.queue.Load() > n.flying.Load() || n.dirty.Load() {
			// A block is executed while the one before lands only when
			// half a block waits: a smaller one would wait for that
			// landing with the writers' lock held, and the landing's
			// receipts bring the next submissions.
			if last != nil && !last.Landed() && n.queue.Load()-n.flying.Load() < int64(n.in.Config().MaxBlockTxs/2) {
				last.Wait() //nolint:errcheck // the announcer reports it
				continue
			}
			n.dirty.Store(false)
			full, err := n.sealOnce(landing, &last)
			if err != nil || !full {
				break // an error is logged; the next tick tries again
			}
			select {
			case <-n.stop:
				return
			default:
			}
		}
	}
}

// landing is a seal on its way to being announced: what the announcer
// needs once its write is durable.
type landing struct {
	p      *fractal.PendingSeal
	before *fractal.Snapshot // the store before the block, when a stream wants note contents
	start  time.Time
	taken  int64 // transactions it took from the queue
}

// sealOnce seals one block and hands it to the announcer. full reports a
// block that left queued some of what was queued when the seal began.
func (n *Node) sealOnce(out chan<- *landing, last **fractal.PendingSeal) (full bool, err error) {
	queued := n.queue.Load() - n.flying.Load()
	l := &landing{start: time.Now()}
	if n.hub.wantsNotes() {
		// Note contents are read from the store before and after the
		// block: nothing may be in flight on either side.
		n.landed.Wait()
		l.before = n.in.Snapshot()
	}
	// The seal in progress finishes even when the node is stopping
	// (decision 113): it gets no context that Stop cancels.
	// flying counts the block before a recount can miss it (settle).
	n.sealing.Lock()
	p, err := n.in.SealNext(context.Background())
	if err == nil {
		l.p, l.taken = p, int64(p.Unlanded().Taken)
		n.flying.Add(l.taken)
	}
	n.sealing.Unlock()
	if err != nil {
		if l.before != nil {
			l.before.Close()
		}
		n.settle(nil, err, 0)
		n.sealErr.Store(&err)
		n.log.Error("seal failed", "err", err)
		return false, err
	}
	s := p.Unlanded()
	n.landed.Add(1)
	out <- l
	*last = p
	if l.before != nil {
		n.landed.Wait()
	}
	return len(s.Receipts) > 0 && int64(len(s.Receipts)) < queued, nil
}

// announcer waits for each seal handed to it to land, in order, and tells
// everyone what it did; it closes done when in is closed and drained.
func (n *Node) announcer(in <-chan *landing, done chan<- struct{}) {
	defer close(done)
	for l := range in {
		n.announce(l)
		n.landed.Done()
	}
}

func (n *Node) announce(l *landing) {
	if l.before != nil {
		defer l.before.Close()
	}
	s, err := l.p.Wait()
	took := time.Since(l.start)
	if err != nil {
		n.settle(nil, err, l.taken)
		n.sealErr.Store(&err)
		n.log.Error("seal failed", "err", err)
		return
	}
	n.sealErr.Store(nil)
	// The depth after everyone was told: settle may wait for an
	// admission that waits for the next seal.
	defer n.settle(s, nil, l.taken)
	if len(s.Receipts) == 0 && !n.encryptedChanged(s.Encrypted) {
		return // nothing sealed, and a batch still waits as it did
	}
	n.m.observeSeal(s, took)
	ev := n.Announce(s, l.before)
	var refused int
	for _, rc := range s.Receipts {
		if rc.Status != phases.Accepted {
			refused++
		}
	}
	attrs := []any{"height", ev.Height, "accepted", len(s.Receipts) - refused, "refused", refused, "took", took.Round(time.Microsecond)}
	if s.Block == nil {
		attrs = append(attrs, "block", false)
	}
	if s.Encrypted != nil {
		attrs = append(attrs, "encrypted_batch", s.Encrypted.Batch.Number, "encrypted_state", s.Encrypted.State.String())
	}
	n.log.Info("sealed", attrs...)
}

// encryptedChanged reports whether st (an encrypted batch a seal reported,
// or nil) differs from the last one reported, and remembers it: a batch
// waiting for shares is reported by every seal, but is news once. The
// announcer calls it.
func (n *Node) encryptedChanged(st *fractal.EncryptedStatus) bool {
	key := ""
	if st != nil {
		key = fmt.Sprintf("%d/%v/%d", st.Batch.Number, st.State, len(st.Shares))
	}
	changed := key != n.lastEncrypted
	n.lastEncrypted = key
	return changed && st != nil
}

// settle brings the queue depth up to date after a seal, announced or
// failed, whose write took flew transactions in flight: the plaintext
// transactions it took leave the count; a seal that failed or touched the
// encrypted mempool (which shares the count) has the depth recounted from
// the store. Submissions admitted meanwhile were counted by admit.
func (n *Node) settle(s *fractal.Sealed, err error, flew int64) {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	n.flying.Add(-flew)
	if err == nil && s.Encrypted == nil {
		n.depth -= s.Taken
		n.queue.Store(int64(n.depth))
		return
	}
	// The count settles the write in flight, whose transactions then
	// leave the queue: they must be in flying by then, so no seal may be
	// between SealNext and its flying.Add (sealing).
	n.sealing.Lock()
	d, err := n.in.QueueDepth()
	d += int(n.flying.Load()) // in blocks not announced yet: announce takes them off
	n.sealing.Unlock()
	if err != nil {
		n.log.Error("queue depth", "err", err)
		return
	}
	n.depth = d
	n.queue.Store(int64(d))
}

// noteContents returns the notes the accepted transactions of a seal spent
// (read from before, the snapshot taken before the seal) and created (read
// now), by ID: what live note events carry.
func (n *Node) noteContents(before *fractal.Snapshot, receipts []*phases.Receipt) map[notes.Hash]*notes.Note {
	after := n.in.Snapshot()
	defer after.Close()
	out := map[notes.Hash]*notes.Note{}
	for _, rc := range receipts {
		if rc.Status != phases.Accepted {
			continue
		}
		for _, list := range []struct {
			refs []phases.NoteRef
			snap *fractal.Snapshot
		}{{rc.Inputs, before}, {rc.Outputs, after}} {
			for _, r := range list.refs {
				if nt, err := list.snap.Note(r.Key); err == nil && nt != nil && nt.ID() == r.ID {
					out[r.ID] = nt
				}
			}
		}
	}
	return out
}

// refusals remembers the receipts of the last refused transactions, in
// memory only: refused transactions leave no trace in the store
// (decision 080). When full, the oldest is forgotten.
type refusals struct {
	mu   sync.Mutex
	max  int
	ring []notes.Hash // the remembered IDs, each once, oldest at next when full
	next int
	byID map[notes.Hash]*refusal
}

// refusal is one remembered refusal and, for one refused in lookup, what
// its lookup said when a resend last ran it again (decision 176).
type refusal struct {
	rc      *phases.Receipt
	checked bool   // the lookup ran again after commit number at
	at      uint64 // the node's commit count (Node.commits) then
	reason  string // its refusal then, "" when it found its inputs
}

func newRefusals(max int) *refusals {
	return &refusals{max: max, ring: make([]notes.Hash, max), byID: map[notes.Hash]*refusal{}}
}

func (r *refusals) add(rc *phases.Receipt) {
	if r.max == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byID[rc.TxID]; ok {
		r.byID[rc.TxID] = &refusal{rc: rc}
		return
	}
	if len(r.byID) == r.max {
		delete(r.byID, r.ring[r.next])
	}
	r.ring[r.next] = rc.TxID
	r.next = (r.next + 1) % r.max
	r.byID[rc.TxID] = &refusal{rc: rc}
}

func (r *refusals) get(id notes.Hash) (*phases.Receipt, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byID[id]; ok {
		return e.rc, true
	}
	return nil, false
}

// lookedUp returns what the lookup of id said when a resend ran it again
// after commit number at, if one did.
func (r *refusals) lookedUp(id notes.Hash, at uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[id]
	if !ok || !e.checked || e.at != at {
		return "", false
	}
	return e.reason, true
}

// setLookedUp records what the lookup of id said after commit number at.
func (r *refusals) setLookedUp(id notes.Hash, at uint64, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byID[id]; ok {
		e.checked, e.at, e.reason = true, at, reason
	}
}
