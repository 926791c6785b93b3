package fractal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/queuelog"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// crashMem leaves in as a killed node would: the log's file closed, not
// folded, the store closed (its committed writes were synced already).
func crashMem(t *testing.T, in *Instance) {
	t.Helper()
	if err := in.mem.log.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// queueKeys is the store's queue: its entries, pending and fee-note keys,
// taken records and fold marker, one line each.
func queueKeys(t *testing.T, in *Instance) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(dumpStore(t, in), "\n") {
		if k, _, _ := strings.Cut(line, "="); strings.HasPrefix(k, fmt.Sprintf("%x", prefixQueue)) ||
			strings.HasPrefix(k, fmt.Sprintf("%x", prefixPending)) || strings.HasPrefix(k, fmt.Sprintf("%x", prefixFeeNote)) ||
			strings.HasPrefix(k, fmt.Sprintf("%x", prefixLogTaken)) || k == fmt.Sprintf("%x", metaLogFolded) {
			out = append(out, line)
		}
	}
	return out
}

func isTakenRecord(line string) bool {
	return strings.HasPrefix(line, fmt.Sprintf("%x", []byte{prefixLogTaken}))
}

func logDirOf(home string) string { return filepath.Join(home, logDir) }

// memFixture is a fixture whose queue is in memory.
func memFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, oneKeyConfig())
	if err := f.in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMemQueueSameAsStore runs one script of submissions and seals on two
// copies of one home, one with the queue in the store, one in memory:
// every refusal reads the same, the blocks hash the same, the receipts
// encode the same, the queue reads the same between seals, and once both
// are closed the stores hold the same queue (the memory one's log folded,
// its directory gone). Some entries were queued before memory mode (they
// stay in the store until a block takes them); the per-key limit and a
// small block cut the selection; a transaction refused in execution, a
// replay, a duplicate, a fee note offered twice and a full mempool are in
// the script.
func TestMemQueueSameAsStore(t *testing.T) {
	cfg := DefaultConfig() // the per-key limit on
	cfg.MaxBlockTxs, cfg.MaxQueue = 3, 8
	f := newFeeFixture(t, cfg, false)
	f.mintFeeNotes(t, f.alice.Public(), 4, 10_000_000)
	mint := func(k string) *phases.Tx { return f.mint(f.allow, f.allow, f.alice, k, "1") }
	bobMint := func(k string) *phases.Tx { return f.mint(f.allow, f.allow, f.bob, k, "1") }
	committed := mint("c")
	f.commit(t, committed)
	early := []*phases.Tx{mint("e1"), f.paying(mint("e2"), f.alice.Public(), "f1", 1, f.alice), bobMint("e3")}
	for _, err := range f.in.SubmitAll(early) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	twin := t.TempDir() + "/twin"
	if err := os.CopyFS(twin, os.DirFS(f.home)); err != nil {
		t.Fatal(err)
	}
	open := func(home string, mem bool) *Instance {
		in, err := Open(home)
		if err != nil {
			t.Fatal(err)
		}
		in.cfg.MinGasPrice = 0
		if mem {
			if err := in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
				t.Fatal(err)
			}
		}
		return in
	}
	store, memory := open(f.home, false), open(twin, true)
	defer store.Close()
	defer memory.Close()

	refusedInExecution := f.mint(f.deny, f.allow, f.alice, "d", "1")
	script := [][]*phases.Tx{
		{mint("a1"), committed, early[0], refusedInExecution, bobMint("b1")},
		{f.paying(mint("a2"), f.alice.Public(), "f1", 1, f.alice), f.paying(mint("a3"), f.alice.Public(), "f2", 1, f.alice), mint("a4")},
		nil, // seal
		{mint("a5"), mint("a5"), bobMint("b2"), refusedInExecution, mint("a6"), bobMint("b3")},
		nil, nil,
		{f.paying(bobMint("b4"), f.alice.Public(), "f3", 1, f.alice), mint("a7")},
		nil, nil, nil, nil,
	}
	all := ""
	for step, txs := range script {
		var got [2]string
		for i, in := range []*Instance{store, memory} {
			var b strings.Builder
			if txs == nil {
				s, err := in.Seal(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if s.Block != nil {
					fmt.Fprintf(&b, "block %d %x\n", s.Block.Height, s.Block.Hash())
				}
				for _, rc := range s.Receipts {
					fmt.Fprintf(&b, "receipt %x\n", rc.Encode())
				}
				fmt.Fprintf(&b, "taken %d\n", s.Taken)
			} else {
				for _, err := range in.SubmitAll(txs) {
					fmt.Fprintf(&b, "submit: %v (refused %v)\n", err, errors.Is(err, ErrRefused))
				}
			}
			ids, err := in.Queued()
			if err != nil {
				t.Fatal(err)
			}
			depth, err := in.QueueDepth()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "depth %d queued %x\n", depth, ids)
			for _, tx := range append(slices.Clone(early), txs...) {
				st, h, err := in.TxState(tx.ID())
				got, st2, _, err2 := in.Transaction(tx.ID())
				if err != nil || err2 != nil || st != st2 || (st != TxUnknown) != (got != nil) {
					t.Fatalf("step %d: TxState %v, %v; Transaction %v, %v", step, st, err, st2, err2)
				}
				fmt.Fprintf(&b, "%x %v %d\n", tx.ID(), st, h)
			}
			got[i] = b.String()
		}
		if got[0] != got[1] {
			t.Fatalf("step %d: the store's queue:\n%s\nthe memory queue:\n%s", step, got[0], got[1])
		}
		all += got[0]
	}
	for _, want := range []string{"mempool full (8 queued, max_queue 8)", "is the fee of queued transaction", "transaction is already queued", "replayed transaction", "receipt", "block 7 "} {
		if !strings.Contains(all, want) {
			t.Fatalf("the script never gives %q:\n%s", want, all)
		}
	}
	if ids, err := store.Queued(); err != nil || len(ids) != 0 {
		t.Fatalf("the script leaves %d transactions queued, %v", len(ids), err)
	}
	// Queued transactions left for Close to fold: two entries, their
	// pending keys, the fee note's.
	left := []*phases.Tx{bobMint("l1"), f.paying(mint("l2"), f.alice.Public(), "f4", 1, f.alice)}
	for _, in := range []*Instance{store, memory} {
		for _, err := range in.SubmitAll(left) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(logDirOf(twin)); err != nil {
		t.Fatalf("memory mode keeps no log: %v", err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := memory.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logDirOf(twin)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the log: %v", err)
	}
	a, b := open(f.home, false), open(twin, false)
	defer a.Close()
	defer b.Close()
	qa, qb := queueKeys(t, a), queueKeys(t, b)
	marker := slices.Index(qb, fmt.Sprintf("%x=%x", metaLogFolded, u64(1)))
	if marker < 0 {
		t.Fatalf("the folded store has no marker: %v", qb)
	}
	if qb = slices.Delete(qb, marker, marker+1); len(qa) != 5 || !slices.Equal(qa, qb) {
		t.Fatalf("queues after Close:\n%s\n%s", strings.Join(qa, "\n"), strings.Join(qb, "\n"))
	}
}

// TestMemQueueCrashAfterCommit: a node killed after a block committed and
// before its log entries were removed. At the next Open the accepted
// transaction is not queued again (the replay index), nor the refused one
// (its taken record, written with the block); one submitted after the block
// is queued; the log is gone and the taken record with it.
func TestMemQueueCrashAfterCommit(t *testing.T) {
	f := memFixture(t)
	ok, refused, later := f.mint(f.allow, f.allow, f.alice, "k", "1"), f.mint(f.deny, f.allow, f.alice, "d", "1"), f.mint(f.allow, f.allow, f.alice, "l", "1")
	for _, err := range f.in.SubmitAll([]*phases.Tx{ok, refused}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := f.in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Receipts) != 2 || s.Receipts[0].Err() != nil || s.Receipts[1].Err() == nil {
		t.Fatalf("receipts: %v", s.Receipts)
	}
	if _, err := f.in.Submit(later); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(queueKeys(t, f.in), "\n"), fmt.Sprintf("%x", takenKey(1, 1))) {
		t.Fatalf("the block wrote no taken record for the refused transaction: %v", queueKeys(t, f.in))
	}
	crashMem(t, f.in)
	_, logged, _, err := queuelog.Read(logDirOf(f.home))
	if err != nil || len(logged) != 3 {
		t.Fatalf("the log holds %d entries, %v; want all 3", len(logged), err)
	}
	in, err := Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ids, err := in.Queued()
	if err != nil || len(ids) != 1 || ids[0] != later.ID() {
		t.Fatalf("queued after the crash: %x, %v; want only %x", ids, err, later.ID())
	}
	for tx, want := range map[*phases.Tx]TxState{ok: TxCommitted, refused: TxUnknown, later: TxQueued} {
		if st, _, err := in.TxState(tx.ID()); err != nil || st != want {
			t.Fatalf("%x: %v, %v; want %v", tx.ID(), st, err, want)
		}
	}
	if _, err := os.Stat(logDirOf(f.home)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open left the log: %v", err)
	}
	if q := queueKeys(t, in); slices.ContainsFunc(q, isTakenRecord) {
		t.Fatalf("taken records outlive the fold: %s", q)
	}
	// The refused transaction may be submitted again.
	if _, err := in.Submit(refused); err != nil {
		t.Fatal(err)
	}
}

// TestMemQueueCrashMidAppend: a record torn by a crash in the middle of an
// append (never acknowledged) is dropped at Open and the acknowledged ones
// queued; a damaged record before the end refuses Open, naming the file
// and the offset, and changes nothing.
func TestMemQueueCrashMidAppend(t *testing.T) {
	f := memFixture(t)
	a, b := f.mint(f.allow, f.allow, f.alice, "a", "1"), f.mint(f.allow, f.allow, f.alice, "b", "1")
	for _, tx := range []*phases.Tx{a, b} {
		if _, err := f.in.Submit(tx); err != nil {
			t.Fatal(err)
		}
	}
	crashMem(t, f.in)
	seg := filepath.Join(logDirOf(f.home), fmt.Sprintf("%016x.log", 1))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	torn := queuelog.AppendRecord(nil, 2, f.mint(f.allow, f.allow, f.alice, "c", "1").Encode())
	if err := os.WriteFile(seg, append(slices.Clone(data), torn[:len(torn)/2]...), 0o600); err != nil {
		t.Fatal(err)
	}
	backup := t.TempDir() + "/backup"
	if err := os.CopyFS(backup, os.DirFS(f.home)); err != nil {
		t.Fatal(err)
	}
	in, err := Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := in.Queued(); err != nil || !slices.Equal(ids, []notes.Hash{a.ID(), b.ID()}) {
		t.Fatalf("queued: %x, %v", ids, err)
	}
	in.Close()

	// The same log with its first record damaged.
	bseg := filepath.Join(logDirOf(backup), fmt.Sprintf("%016x.log", 1))
	data[40] ^= 1
	if err := os.WriteFile(bseg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(backup)
	want := fmt.Sprintf("fractal: open %s: mempool log: %s: record payload fails its checksum at offset 28", backup, bseg)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, queuelog.ErrCorrupt) {
		t.Fatalf("open with a corrupt log: %v\nwant %s", err, want)
	}
	if _, err := os.Stat(bseg); err != nil {
		t.Fatalf("a refused Open removed the log: %v", err)
	}
}

// TestMemQueueSegmentsRemoved: with a segment a group, each segment is
// removed once a block took its entries; the taken record of a refused
// transaction is deleted by a later block once its segment is gone, so
// neither the log nor the records grow while the node runs.
func TestMemQueueSegmentsRemoved(t *testing.T) {
	defer func(n int64) { logSegmentBytes = n }(logSegmentBytes)
	logSegmentBytes = 1
	f := memFixture(t)
	segs := func() []string {
		des, err := os.ReadDir(logDirOf(f.home))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, de := range des {
			out = append(out, de.Name())
		}
		return out
	}
	for i := range 3 {
		txs := []*phases.Tx{f.mint(f.allow, f.allow, f.alice, fmt.Sprint("k", i), "1"), f.mint(f.deny, f.allow, f.alice, fmt.Sprint("d", i), "1")}
		for _, tx := range txs { // a group, so a segment, each
			if _, err := f.in.Submit(tx); err != nil {
				t.Fatal(err)
			}
		}
		f.sealAll(t)
		// Left: the refused one's segment, the current one, and its
		// taken record; the earlier rounds' are gone.
		seq := uint64(2*i + 1)
		if got, want := segs(), []string{fmt.Sprintf("%016x.log", seq+1)}; !slices.Equal(got, want) {
			t.Fatalf("round %d: segments %v, want %v", i, got, want)
		}
		if got, want := queueKeys(t, f.in), []string{fmt.Sprintf("%x=", takenKey(1, seq))}; !slices.Equal(got, want) {
			t.Fatalf("round %d: queue keys %v, want %v", i, got, want)
		}
	}
}

// TestMemQueueRetiredByEncryptedCopy: a plaintext copy of an encrypted
// transaction, queued after it, leaves the queue when the batch's block
// accepts the encrypted one, in the store's queue and in memory alike, and
// is not queued again when the log is folded.
func TestMemQueueRetiredByEncryptedCopy(t *testing.T) {
	for _, mem := range []bool{false, true} {
		t.Run(fmt.Sprint("memory ", mem), func(t *testing.T) {
			f := newEncFixture(t, 3, 2, false)
			if mem {
				if err := f.in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
					t.Fatal(err)
				}
			}
			tx := f.mint(f.allow, f.allow, f.alice, "k", "1")
			f.encrypt(t, tx)
			if _, err := f.in.Submit(tx); err != nil {
				t.Fatal(err)
			}
			wantState(t, f.seal(t), BatchFixed, "[]")
			f.share(t, 1)
			f.share(t, 2)
			s := f.seal(t)
			wantState(t, s, BatchOpened, "[1 2]")
			if s.Block == nil || len(s.Block.TxIDs) != 1 || s.Block.TxIDs[0] != tx.ID() {
				t.Fatalf("opened %+v", s.Block)
			}
			for range 2 {
				if q, err := f.in.Queued(); err != nil || len(q) != 0 {
					t.Fatalf("plaintext queue %x, %v", q, err)
				}
				if d, err := f.in.QueueDepth(); err != nil || d != 0 {
					t.Fatalf("depth %d, %v", d, err)
				}
				if s := f.seal(t); s.Block != nil || len(s.Receipts) != 0 {
					t.Fatalf("a seal after the batch: %+v", s)
				}
				f.reopen(t)
			}
		})
	}
}

// TestMemQueueFailedAppend: an append that fails is not acknowledged, its
// transactions leave the queue again, and nothing more is admitted (the
// log's tail is unknown) until a restart folds what the log holds.
func TestMemQueueFailedAppend(t *testing.T) {
	f := memFixture(t)
	kept := f.mint(f.allow, f.allow, f.alice, "a", "1")
	if _, err := f.in.Submit(kept); err != nil {
		t.Fatal(err)
	}
	f.in.mem.log.Close() // every later write fails
	lost := f.mint(f.allow, f.allow, f.alice, "b", "1")
	for range 2 {
		if _, err := f.in.Submit(lost); err == nil || !strings.HasSuffix(err.Error(), ": mempool log: invalid argument (restart the node)") || errors.Is(err, ErrRefused) {
			t.Fatalf("submit after a failed append: %v", err)
		}
	}
	if ids, err := f.in.Queued(); err != nil || !slices.Equal(ids, []notes.Hash{kept.ID()}) {
		t.Fatalf("queued: %x, %v", ids, err)
	}
	if st, _, err := f.in.TxState(lost.ID()); err != nil || st != TxUnknown {
		t.Fatalf("the failed submission: %v, %v", st, err)
	}
	f.reopen(t)
	if ids, err := f.in.Queued(); err != nil || !slices.Equal(ids, []notes.Hash{kept.ID()}) {
		t.Fatalf("queued after the restart: %x, %v", ids, err)
	}
}

// TestMemQueueFoldDeletesTakenAfterMarker: a fold too large for one badger
// transaction commits in several; a crash between two of them must leave
// either the taken records or the fold marker in the store, or the re-run
// fold queues a refused transaction again. So no taken record of the
// folded generation is deleted before the marker is committed: each
// deletion's commit version is at or after the marker's. 120,000 stale
// taken records (more than one badger transaction holds) make the fold
// span commits.
func TestMemQueueFoldDeletesTakenAfterMarker(t *testing.T) {
	f := memFixture(t)
	refused := f.mint(f.deny, f.allow, f.alice, "d", "1")
	if _, err := f.in.Submit(refused); err != nil {
		t.Fatal(err)
	}
	if s, err := f.in.Seal(context.Background()); err != nil || len(s.Receipts) != 1 || s.Receipts[0].Err() == nil {
		t.Fatalf("seal: %v", err)
	}
	wb := f.in.db.DB.NewWriteBatch()
	for seq := uint64(1000); seq < 121000; seq++ {
		if err := wb.Set(takenKey(1, seq), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	crashMem(t, f.in)
	in, err := Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var marker uint64
	var deleted []uint64
	err = in.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			switch {
			case string(item.Key()) == string(metaLogFolded):
				marker = max(marker, item.Version())
			case item.Key()[0] == prefixLogTaken && item.IsDeletedOrExpired():
				deleted = append(deleted, item.Version())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if marker == 0 || len(deleted) != 120001 {
		t.Fatalf("marker version %d, %d deletions; want a marker and 120001", marker, len(deleted))
	}
	for _, v := range deleted {
		if v < marker {
			t.Fatalf("a taken record deleted at version %d, before the fold marker (version %d): a crash between them re-queues a refused transaction", v, marker)
		}
	}
	if ids, err := in.Queued(); err != nil || len(ids) != 0 {
		t.Fatalf("queued: %x, %v", ids, err)
	}
}

// TestMemQueueFoldEntrySplitByChunk: a fold's entry whose keys do not all
// fit in the badger transaction runs again in the next one; wherever the
// transaction fills (before its queue entry, its ID's or its fee note's
// key), the store ends up with all three, so the fee note offered twice is
// still refused in the store's queue.
func TestMemQueueFoldEntrySplitByChunk(t *testing.T) {
	f := newFixture(t, oneKeyConfig())
	tx := f.mint(f.allow, f.allow, f.alice, "a", "1")
	tx.Fee = &phases.Fee{Note: notes.StateKey{Application: f.allow, Owner: f.allow, Key: []byte("fee")}, Price: 1}
	entries := []queuelog.Entry{{Seq: 7, Raw: tx.Encode()}}
	filler := func(txn *badger.Txn, n int) error {
		for i := range n {
			if err := txn.Set(fmt.Appendf(nil, "zfill%08d", i), nil); err != nil {
				return err
			}
		}
		return nil
	}
	// How many fillers one transaction holds.
	probe := f.in.db.DB.NewTransaction(true)
	capacity := 0
	for probe.Set(fmt.Appendf(nil, "zfill%08d", capacity), nil) == nil {
		capacity++
	}
	probe.Discard()
	for room := 0; room <= 4; room++ {
		w := chunkedWrite{txn: f.in.db.NewTransaction(true), db: f.in.db.DB}
		if err := filler(w.txn, capacity-room); err != nil {
			t.Fatal(err)
		}
		if err := f.in.foldNew(&w, 1, entries); err != nil {
			t.Fatal(err)
		}
		if err := w.txn.Commit(); err != nil {
			t.Fatal(err)
		}
		id := tx.ID()
		err := f.in.db.Update(func(txn *badger.Txn) error {
			for _, k := range [][]byte{seqKey(prefixQueue, 7), hashKey(prefixPending, id), feeNoteKey(tx.Fee.Note), metaLogFolded} {
				if _, err := txn.Get(k); err != nil {
					return fmt.Errorf("key %x: %w", k, err)
				}
			}
			if err := dequeue(badgerdb.KV{Txn: txn}, 7, tx); err != nil {
				return err
			}
			return txn.Delete(metaLogFolded)
		})
		if err != nil {
			t.Fatalf("room for %d keys: %v", room, err)
		}
	}
}

// TestMemQueueByteBound: the memory queue holds at most maxBytes of
// encodings (max_queue times max_tx_bytes is far more than a node's
// memory): a submission that would pass it is refused as mempool full,
// naming the bytes, and changes nothing; the first one into an empty queue
// is admitted whatever its size; once a block takes the queue, it is
// admitted.
func TestMemQueueByteBound(t *testing.T) {
	f := newFixture(t, oneKeyConfig())
	a, b := f.mint(f.allow, f.allow, f.alice, "a", "1"), f.mint(f.allow, f.allow, f.alice, "b", "1")
	na := int64(len(a.Encode()))
	if err := f.in.KeepQueueInMemory(na); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Submit(a); err != nil {
		t.Fatal(err)
	}
	_, err := f.in.Submit(b)
	id := b.ID()
	want := fmt.Sprintf("fractal: submit %x: mempool full (%d bytes queued, max_queue_bytes %d)", id[:8], na, na)
	if err == nil || err.Error() != want || !errors.Is(err, ErrMempoolFull) {
		t.Fatalf("over the byte bound: %v\nwant %s", err, want)
	}
	if ids, err := f.in.Queued(); err != nil || !slices.Equal(ids, []notes.Hash{a.ID()}) {
		t.Fatalf("queued: %x, %v", ids, err)
	}
	if _, err := f.in.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Submit(b); err != nil {
		t.Fatal(err)
	}
}

// TestReceiptOfQueued: the receipt of a queued transaction, in the store's
// queue or in memory, says it is queued rather than unknown.
func TestReceiptOfQueued(t *testing.T) {
	for _, mem := range []bool{false, true} {
		f := newFixture(t, oneKeyConfig())
		if mem {
			if err := f.in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
				t.Fatal(err)
			}
		}
		tx := f.mint(f.allow, f.allow, f.alice, "a", "1")
		id, err := f.in.Submit(tx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.in.Receipt(id)
		if want := fmt.Sprintf("fractal: receipt %x: queued, not sealed yet: a block that takes it stores its receipt", id); err == nil || err.Error() != want {
			t.Fatalf("memory %v: %v\nwant %s", mem, err, want)
		}
	}
}
