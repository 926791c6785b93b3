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
// max_block_gas before what was queued when it began (decision 113). On
// Stop it returns after the seal in progress.
func (n *Node) sealLoop() {
	defer close(n.sealDone)
	tick := time.NewTicker(time.Duration(n.cfg.BlockTime))
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		case <-n.kick:
		}
		for n.queue.Load() > 0 || n.dirty.Load() {
			n.dirty.Store(false)
			full, err := n.sealOnce()
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

// sealOnce seals one block and tells everyone what it did. full reports a
// block that left queued some of what was queued when the seal began.
func (n *Node) sealOnce() (full bool, err error) {
	queued := n.queue.Load()
	var before *fractal.Snapshot
	if n.hub.wantsNotes() {
		before = n.in.Snapshot()
		defer before.Close()
	}
	start := time.Now()
	// The seal in progress finishes even when the node is stopping
	// (decision 113): it gets no context that Stop cancels.
	s, err := n.in.Seal(context.Background())
	took := time.Since(start)
	n.settle(s, err)
	if err != nil {
		n.sealErr.Store(&err)
		n.log.Error("seal failed", "err", err)
		return false, err
	}
	n.sealErr.Store(nil)
	if len(s.Receipts) == 0 && !n.encryptedChanged(s.Encrypted) {
		return false, nil // nothing sealed, and a batch still waits as it did
	}
	n.m.observeSeal(s, took)
	ev := n.Announce(s, before)
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
	return len(s.Receipts) > 0 && int64(len(s.Receipts)) < queued, nil
}

// encryptedChanged reports whether st (an encrypted batch a seal reported,
// or nil) differs from the last one reported, and remembers it: a batch
// waiting for shares is reported by every seal, but is news once.
func (n *Node) encryptedChanged(st *fractal.EncryptedStatus) bool {
	key := ""
	if st != nil {
		key = fmt.Sprintf("%d/%v/%d", st.Batch.Number, st.State, len(st.Shares))
	}
	changed := key != n.lastEncrypted
	n.lastEncrypted = key
	return changed && st != nil
}

// settle brings the queue depth up to date after a seal: the plaintext
// transactions it took leave the count; a seal that failed or touched the
// encrypted mempool (which shares the count) has the depth recounted from
// the store. Submissions admitted meanwhile were counted by admit.
func (n *Node) settle(s *fractal.Sealed, err error) {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	if err == nil && s.Encrypted == nil {
		n.depth -= s.Taken
		n.queue.Store(int64(n.depth))
		return
	}
	d, err := n.in.QueueDepth()
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
