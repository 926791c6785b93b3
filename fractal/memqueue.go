package fractal

// The node's mempool in memory (decision 181): while `fractal node` runs, the
// plain queue lives in memory and every admitted group is appended to a
// synced log in the home (package queuelog) instead of four badger writes a
// transaction. Every Open folds a log it finds back into badger's queue, so
// the store seen without a running node is as before.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/fractal/queuelog"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// logDir is the mempool log's folder in the home.
const logDir = "mempool"

// logSegmentBytes is the size of a mempool log segment (about 3,000
// transfers): the unit the log is removed in as blocks take its entries.
var logSegmentBytes int64 = 4 << 20

// maxStaleDeletes bounds how many taken records (takenKey) one block's
// write deletes, so that the cleanup never crowds its transactions out of
// the write bound (decision 167).
const maxStaleDeletes = 64

// DefaultMaxQueueBytes is the memory queue's default bound on the
// encodings it holds (decision 184).
const DefaultMaxQueueBytes = 1 << 30

// memQueue is the plain queue in memory. Writers hold mu, and the
// instance's mu but for a pipelined block's landing (committed); readers
// outside the instance's mu (the API's) hold mu for reading.
type memQueue struct {
	mu sync.RWMutex
	// logMu serializes the log's appends (under the instance's mu) with
	// the removal of its segments (under mu, perhaps as a pipelined
	// block lands).
	logMu sync.Mutex
	log   *queuelog.Log
	gen   uint64
	order []*memEntry // arrival order; entries that left are gone until compacted
	live  int
	// bytes is the size of the live entries' encodings; admission keeps it
	// within maxBytes (decision 184).
	bytes, maxBytes int64
	byID            map[notes.Hash]*memEntry
	byFee           map[string]notes.Hash // fee note's state key text → ID of the queued transaction offering it
	segs            map[uint64]*segment
	// failed is set by an append that failed: the log's tail is unknown,
	// so nothing more is admitted.
	failed error
	// stale are the sequences of taken records whose segment is removed:
	// the next blocks' writes delete them.
	stale []uint64
	// flyingNow are the entries of the block whose write is in flight
	// (decision 186), nil when none is.
	flyingNow []*memEntry
	// staleFlying is how many of the first stale records the block whose
	// write is in flight deletes: the next block deletes those after them
	// (newMemPart). 0 once that write landed (committed) or failed.
	staleFlying int
}

type memEntry struct {
	seq   uint64
	id    notes.Hash
	tx    *phases.Tx // decoded, marked verified
	store bool       // read from badger's queue at the start: its keys are there
	seg   uint64     // its log segment (0 for a store entry)
	size  int64      // its encoding's length
	gone  bool
	// flying marks an entry of a block whose write is in flight: the next
	// block does not take it again (decision 186).
	flying bool
}

// segment counts a log segment's entries still queued, and the sequences
// of its entries that blocks took and refused (their taken records).
type segment struct {
	live  int
	taken []uint64
}

// takenKey is the record a block's write leaves of a logged transaction it
// took and refused (the replay index records the accepted ones), so that a
// fold after a crash does not queue it again.
func takenKey(gen, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(seqKey(prefixLogTaken, gen), seq)
}

// KeepQueueInMemory moves the instance's plain queue into memory, made
// durable by the mempool log (decision 181): the node calls it once, after
// Open folded any log back into the store. The entries badger holds are
// read into memory and stay in badger until a block takes them; later
// submissions go to memory and the log, while the queue's encodings stay
// within maxBytes (one more is refused as mempool full, unless the queue
// is empty). Close folds the log back. A validator set's queue is
// CometBFT's: it is refused.
func (in *Instance) KeepQueueInMemory(maxBytes int64) error {
	if err := in.errValidatorSet("keep the queue in memory"); err != nil {
		return err
	}
	in.lock()
	defer in.mu.Unlock()
	if in.mem != nil {
		return nil
	}
	var q []queued
	var gen uint64
	err := in.db.View(func(txn *badger.Txn) (err error) {
		if q, err = readQueue(txn, math.MaxInt); err != nil {
			return err
		}
		gen, err = foldedGen(txn)
		return err
	})
	if err != nil {
		return fmt.Errorf("fractal: queue in memory: %w", err)
	}
	log, err := queuelog.Create(filepath.Join(in.home, logDir), gen+1, logSegmentBytes)
	if err != nil {
		return fmt.Errorf("fractal: queue in memory: %w", err)
	}
	m := &memQueue{log: log, gen: gen + 1, maxBytes: maxBytes, byID: map[notes.Hash]*memEntry{}, byFee: map[string]notes.Hash{}, segs: map[uint64]*segment{}}
	for _, e := range q {
		m.add(&memEntry{seq: e.seq, id: e.tx.ID(), tx: e.tx, store: true, size: int64(len(e.tx.Encode()))})
	}
	in.mem = m
	return nil
}

// add puts e at the end of the queue. Caller holds mu for writing, or owns m.
func (m *memQueue) add(e *memEntry) {
	m.order = append(m.order, e)
	m.live++
	m.bytes += e.size
	m.byID[e.id] = e
	if e.tx.Fee != nil {
		m.byFee[e.tx.Fee.Note.String()] = e.id
	}
}

// drop takes e out of the queue; it returns e's segment when that has no
// entry left (none for an entry not yet logged). Caller holds mu for
// writing.
func (m *memQueue) drop(e *memEntry) *segment {
	if e.gone {
		return nil
	}
	e.gone = true
	m.live--
	m.bytes -= e.size
	delete(m.byID, e.id)
	if e.tx.Fee != nil {
		delete(m.byFee, e.tx.Fee.Note.String())
	}
	if e.store || e.seg == 0 {
		return nil
	}
	s := m.segs[e.seg]
	if s.live--; s.live == 0 {
		return s
	}
	return nil
}

// compact forgets the entries that left, once they are most of order.
func (m *memQueue) compact() {
	if len(m.order) < 1024 || m.live > len(m.order)/2 {
		return
	}
	kept := m.order[:0]
	for _, e := range m.order {
		if !e.gone {
			kept = append(kept, e)
		}
	}
	clear(m.order[len(kept):])
	m.order = kept
}

// appendLog makes the entries just added durable, recs their records (the
// canonical encodings admission checked); on a failure they leave the
// queue again and nothing more is admitted.
func (m *memQueue) appendLog(es []*memEntry, recs []queuelog.Entry) error {
	if len(es) == 0 {
		return nil
	}
	m.logMu.Lock()
	before := m.log.Current()
	err := m.log.Append(recs)
	rotated := m.log.Current() != before
	m.logMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failed = fmt.Errorf("mempool log: %w (restart the node)", err)
		for _, e := range es {
			m.drop(e)
		}
		return m.failed
	}
	for i, e := range es {
		e.seg = recs[i].Segment
		s := m.segs[e.seg]
		if s == nil {
			s = &segment{}
			m.segs[e.seg] = s
		}
		s.live++
	}
	if rotated {
		m.removeDone(before) // its entries may all have left while it was current
	}
	return nil
}

// removeDone removes log segment seg if no entry in it is queued and it is
// not the current one; its taken records become stale. A segment that
// cannot be removed stays whole for the next fold, its taken records with
// it. Caller holds mu for writing.
func (m *memQueue) removeDone(seg uint64) {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	s := m.segs[seg]
	if seg == m.log.Current() || (s != nil && s.live > 0) || m.log.Remove(seg) != nil {
		return
	}
	if s != nil {
		m.stale = append(m.stale, s.taken...)
	}
	delete(m.segs, seg)
}

// read returns up to max queued transactions in arrival order, as
// readQueue does from the store, but for those of a block whose write is
// in flight. Caller holds mu, for reading at least.
func (m *memQueue) read(max int) []queued {
	var out []queued
	for _, e := range m.order {
		if len(out) == max {
			break
		}
		if !e.gone && !e.flying {
			out = append(out, queued{seq: e.seq, tx: e.tx, mem: e})
		}
	}
	return out
}

// fly marks es, the entries of a block whose write is now in flight and
// deletes the first stale of the stale taken records, so that the next
// block takes neither (on), or clears the marks after that write failed:
// the entries are queued again, the records left to delete.
func (m *memQueue) fly(es []*memEntry, stale int, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range es {
		e.flying = on
	}
	m.flyingNow, m.staleFlying = nil, 0
	if on {
		m.flyingNow, m.staleFlying = es, stale
	}
}

// lookup returns the queued entry of id, or nil (also for a nil m). Safe
// without the instance's mu.
func (m *memQueue) lookup(id notes.Hash) *memEntry {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byID[id]
}

// committed takes the entries a committed block took out of the queue: it
// keeps the taken records of the refused ones with their segment, removes
// the segments left empty (their taken records then become stale, deleted
// by later blocks) and forgets the stale records the block deleted.
func (m *memQueue) committed(taken []*memEntry, refused map[notes.Hash]bool, staleDeleted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stale = m.stale[staleDeleted:]
	m.staleFlying = 0
	for _, e := range taken {
		if e.gone {
			continue
		}
		if !e.store && refused[e.id] {
			m.segs[e.seg].taken = append(m.segs[e.seg].taken, e.seq)
		}
		if m.drop(e) != nil {
			m.removeDone(e.seg)
		}
	}
	m.compact()
}

// full refuses an encoding of n bytes that would take the queue past
// maxBytes; an empty queue takes any.
func (m *memQueue) full(n int) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.live > 0 && m.bytes+int64(n) > m.maxBytes {
		return fmt.Errorf("%w (%d bytes queued, max_queue_bytes %d)", ErrMempoolFull, m.bytes, m.maxBytes)
	}
	return nil
}

// checkQueued refuses id when the memory queue holds it.
func (in *Instance) checkQueued(id notes.Hash) error {
	if in.mem.lookup(id) != nil {
		return ErrQueued
	}
	return nil
}

// memLive is the number of transactions in the memory queue waiting for
// a block: those of a block whose write is in flight are not counted.
func (in *Instance) memLive() int {
	in.mem.mu.RLock()
	defer in.mem.mu.RUnlock()
	n := in.mem.live
	for _, e := range in.mem.flyingNow {
		if !e.gone {
			n--
		}
	}
	return n
}

// foldedGen returns the generation of the last mempool log folded into the
// store, 0 when none was.
func foldedGen(txn *badger.Txn) (uint64, error) {
	return storedU64(txn, metaLogFolded, 0)
}

// foldLog puts what a mempool log in the home holds back into the store's
// queue, then removes the log: Open runs it (after a crash, the log of the
// node that ran), and Close in memory mode. An entry a committed block took
// is skipped (accepted: the replay index has it; refused: its taken
// record), as is one already queued (a fold that a crash cut short). The
// entries, then the generation folded (so that a crash before the files
// are removed cannot fold them twice), then the taken records' deletion go
// in synced writes, perhaps several (foldEntries). A corrupt log refuses:
// it holds acknowledged submissions.
func (in *Instance) foldLog() error {
	dir := filepath.Join(in.home, logDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	gen, entries, ok, err := queuelog.Read(dir)
	if err != nil {
		return fmt.Errorf("mempool log: %w", err)
	}
	if ok {
		if err := in.foldEntries(gen, entries); err != nil {
			return fmt.Errorf("mempool log %s: %w", dir, err)
		}
	}
	if err := queuelog.RemoveAll(dir); err != nil {
		return fmt.Errorf("mempool log: %w", err)
	}
	return nil
}

func (in *Instance) foldEntries(gen uint64, entries []queuelog.Entry) error {
	var done uint64
	if err := in.db.View(func(txn *badger.Txn) (err error) { done, err = foldedGen(txn); return err }); err != nil {
		return err
	}
	w := chunkedWrite{txn: in.db.NewTransaction(true), db: in.db.DB}
	defer func() { w.txn.Discard() }()
	if done != gen {
		if err := in.foldNew(&w, gen, entries); err != nil {
			return err
		}
	}
	// The taken records go after the marker, which may commit in an
	// earlier write: a crash between the two leaves the marker (the
	// re-run queues nothing and deletes the rest), never an entry
	// without its taken record and no marker (it would be queued again).
	var stale [][]byte
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLogTaken}})
	for it.Rewind(); it.Valid(); it.Next() {
		stale = append(stale, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range stale {
		if err := w.do(func(txn *badger.Txn) error { return txn.Delete(k) }); err != nil {
			return err
		}
	}
	return w.txn.Commit()
}

// foldNew queues the entries of a log of generation gen not folded yet and
// sets the fold marker.
func (in *Instance) foldNew(w *chunkedWrite, gen uint64, entries []queuelog.Entry) error {
	for _, e := range entries {
		tx, err := phases.DecodeTx(e.Raw)
		if err != nil {
			return fmt.Errorf("segment %d, entry %d: %w", e.Segment, e.Seq, err)
		}
		id := tx.ID()
		err = w.do(func(txn *badger.Txn) error {
			for _, k := range [][]byte{hashKey(prefixTx, id), takenKey(gen, e.Seq), hashKey(prefixPending, id)} {
				if _, err := txn.Get(k); err == nil {
					return nil
				} else if !errors.Is(err, badger.ErrKeyNotFound) {
					return err
				}
			}
			return enqueue(txn, e.Seq, id, e.Raw, tx)
		})
		if err != nil {
			return err
		}
	}
	return w.do(func(txn *badger.Txn) error { return txn.Set(metaLogFolded, u64(gen)) })
}

// chunkedWrite is a run of writes too large, perhaps, for one badger
// transaction: a write that does not fit commits what is in and runs again
// in a new transaction. Each write must be one that may run twice.
type chunkedWrite struct {
	db  *badger.DB
	txn *badger.Txn
}

func (w *chunkedWrite) do(f func(*badger.Txn) error) error {
	err := f(w.txn)
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	if err := w.txn.Commit(); err != nil {
		return err
	}
	w.txn = w.db.NewTransaction(true)
	return f(w.txn)
}

// closeMem closes the log and folds it into the store (Close).
func (in *Instance) closeMem() error {
	in.lock()
	defer in.mu.Unlock()
	if in.mem == nil {
		return nil
	}
	// in.mem stays: readers test it without the lock, and a closed
	// instance serves none.
	if err := in.mem.log.Close(); err != nil {
		return err
	}
	return in.foldLog()
}

// memPart is what the memory queue adds to queuePart: the entries of the
// block's transactions, the refused ones (apply) and the stale taken
// records the block's write deletes.
type memPart struct {
	mem     *memQueue
	refused map[notes.Hash]bool
	stale   []uint64
}

func (in *Instance) newMemPart() *memPart {
	if in.mem == nil {
		return nil
	}
	m := in.mem
	// While a block's write is in flight, it deletes the first stale
	// records, which its landing forgets (committed, perhaps at any
	// moment): this block deletes the next ones (decision 186).
	m.mu.RLock()
	defer m.mu.RUnlock()
	from := m.staleFlying
	return &memPart{mem: m, refused: map[notes.Hash]bool{}, stale: m.stale[from:min(len(m.stale), from+maxStaleDeletes)]}
}

// write writes the memory queue's part of a block: a taken record for each
// logged transaction the block refused, the stale records' deletion.
func (p *memPart) write(w kv.Store, taken []queued) error {
	for _, e := range taken {
		if p.refused[e.mem.id] && !e.mem.store {
			if err := w.Set(takenKey(p.mem.gen, e.seq), nil); err != nil {
				return err
			}
		}
	}
	for _, seq := range p.stale {
		if err := w.Delete(takenKey(p.mem.gen, seq)); err != nil {
			return err
		}
	}
	return nil
}
