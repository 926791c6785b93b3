package fractal

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// gateLandings holds every pipelined landing until a settle lets it go
// (landGate), for the rest of the test.
func gateLandings(t *testing.T) {
	t.Helper()
	landGate = make(chan struct{})
	t.Cleanup(func() { landGate = nil })
}

// sealedLine renders what a seal did: its block, its receipts, what it
// took.
func sealedLine(s *Sealed) string {
	var b strings.Builder
	if s.Block != nil {
		fmt.Fprintf(&b, "block %d %x root %x\n", s.Block.Height, s.Block.Hash(), s.Block.StateRoot)
	}
	for _, rc := range s.Receipts {
		fmt.Fprintf(&b, "receipt %x\n", rc.Encode())
	}
	fmt.Fprintf(&b, "taken %d\n", s.Taken)
	return b.String()
}

// storeDiff lists where two stores differ, but for the memory queue's
// taken records (a pipelined block deletes them later than a plain seal)
// and signatures: each executor signature (XEdDSA, randomized) makes a
// value differ in one run of at most 64 bytes.
func storeDiff(t *testing.T, a, b *Instance) string {
	t.Helper()
	read := func(in *Instance) map[string]string {
		m := map[string]string{}
		for _, line := range strings.Split(dumpStore(t, in), "\n") {
			if k, v, _ := strings.Cut(line, "="); !isTakenRecord(line) {
				m[k] = v
			}
		}
		return m
	}
	ma, mb := read(a), read(b)
	var out []string
	for k, va := range ma {
		vb, ok := mb[k]
		if !ok {
			out = append(out, "only in the first: "+k)
			continue
		}
		if va == vb {
			continue
		}
		first, last := -1, -1
		for i := 0; i < min(len(va), len(vb)); i++ {
			if va[i] != vb[i] {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if len(va) != len(vb) || last-first >= 128 { // hex digits
			out = append(out, fmt.Sprintf("%s: %s != %s", k, va, vb))
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, "only in the second: "+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// TestSealNextSameAsSeal runs one script on two copies of one home, both
// with the queue in memory: one seals with Seal, the other with SealNext,
// every next step (submissions, the next block's execution) running while
// the block before is still in flight. Submissions are answered the same,
// the blocks, receipts and state roots are the same, and the stores end
// the same. (A transaction of a block in flight is refused as queued, not
// as executed, until the block is durable: TestSubmitWhileInFlight.)
func TestSealNextSameAsSeal(t *testing.T) {
	cfg := DefaultConfig() // the per-key limit on
	cfg.MaxBlockTxs, cfg.MaxQueue = 3, 8
	f := newFeeFixture(t, cfg, true)
	f.mintFeeNotes(t, f.alice.Public(), 4, 10_000_000)
	mint := func(k string) *phases.Tx { return f.mint(f.allow, f.allow, f.alice, k, "1") }
	bobMint := func(k string) *phases.Tx { return f.mint(f.allow, f.allow, f.bob, k, "1") }
	spend := func(k string) *phases.Tx { // spends the note mint(k) made
		return f.move(f.allow, f.allow, f.alice, k, k+"'", "1")
	}
	committed := mint("c")
	f.commit(t, committed)
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	twin := t.TempDir() + "/twin"
	if err := os.CopyFS(twin, os.DirFS(f.home)); err != nil {
		t.Fatal(err)
	}
	open := func(home string) *Instance {
		in, err := Open(home)
		if err != nil {
			t.Fatal(err)
		}
		in.cfg.MinGasPrice = 0
		if err := in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
			t.Fatal(err)
		}
		return in
	}
	plain, piped := open(f.home), open(twin)
	defer plain.Close()
	defer piped.Close()
	gateLandings(t)

	refused := f.mint(f.deny, f.allow, f.alice, "d", "1")
	a1, a2 := mint("a1"), mint("a2")
	script := [][]*phases.Tx{
		{a1, committed, refused, bobMint("b1"), f.paying(mint("a3"), f.alice.Public(), "f1", 1, f.alice)},
		nil, // seal; the next steps run while its write is in flight
		{spend("a1"), f.paying(mint("a4"), f.alice.Public(), "f1", 1, f.alice), a2, bobMint("b2")},
		nil,
		{spend("a2"), mint("a5"), mint("a6"), bobMint("b3"), mint("a7"), mint("a8"), mint("a9")},
		nil, nil,
		{f.paying(bobMint("b4"), f.alice.Public(), "f2", 1, f.alice), mint("a10")},
		nil, nil, nil, nil, nil,
	}
	var plainSeals, pipedSeals []string
	var pending []*PendingSeal
	for step, txs := range script {
		var got [2]string
		for i, in := range []*Instance{plain, piped} {
			var b strings.Builder
			switch {
			case txs != nil:
				for _, err := range in.SubmitAll(txs) {
					fmt.Fprintf(&b, "submit: %v (refused %v)\n", err, errors.Is(err, ErrRefused))
				}
			case in == plain:
				s, err := in.Seal(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				plainSeals = append(plainSeals, sealedLine(s))
			default:
				p, err := in.SealNext(context.Background())
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				pending = append(pending, p)
			}
			ids, err := in.Queued()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "queued %x\n", ids)
			got[i] = b.String()
		}
		if got[0] != got[1] {
			t.Fatalf("step %d: Seal:\n%s\nSealNext:\n%s", step, got[0], got[1])
		}
	}
	if _, err := piped.QueueDepth(); err != nil { // settles the last write
		t.Fatal(err)
	}
	for _, p := range pending {
		s, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		pipedSeals = append(pipedSeals, sealedLine(s))
	}
	if a, b := strings.Join(plainSeals, "--\n"), strings.Join(pipedSeals, "--\n"); a != b {
		t.Fatalf("Seal sealed:\n%s\nSealNext sealed:\n%s", a, b)
	}
	if !strings.Contains(strings.Join(plainSeals, ""), "block 6 ") {
		t.Fatalf("the script seals too little:\n%s", strings.Join(plainSeals, "--\n"))
	}
	if d := storeDiff(t, plain, piped); d != "" {
		t.Fatalf("the stores differ:\n%s", d)
	}
}

// TestWriteSetReadsAsBadger: a write set over a read of the store reads as
// a badger write over the same store, and one laid over it (the next
// block's view) reads as the store once the first has committed: Get and
// Scan, with deletions, keys written twice, keys only one side holds and
// prefixes that match nothing.
func TestWriteSetReadsAsBadger(t *testing.T) {
	db, err := badgerdb.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := mrand.New(mrand.NewPCG(1, 2))
	key := func() []byte {
		return []byte{byte('a' + rng.IntN(3)), byte('a' + rng.IntN(3)), byte('a' + rng.IntN(2))}[:1+rng.IntN(3)]
	}
	type op struct {
		k, v []byte
		del  bool
	}
	ops := func(n int) []op {
		var out []op
		for range n {
			o := op{k: key(), del: rng.IntN(3) == 0}
			if !o.del {
				o.v = []byte(fmt.Sprint(rng.IntN(1000)))
			}
			out = append(out, o)
		}
		return out
	}
	apply := func(w kv.Writer, os []op) {
		for _, o := range os {
			var err error
			if o.del {
				err = w.Delete(o.k)
			} else {
				err = w.Set(o.k, o.v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func(r kv.Reader) string {
		var b strings.Builder
		for _, pre := range []string{"", "a", "b", "ab", "ca", "z"} {
			fmt.Fprintf(&b, "%q:", pre)
			if err := r.Scan([]byte(pre), func(k, v []byte) error { fmt.Fprintf(&b, " %s=%s", k, v); return nil }); err != nil {
				t.Fatal(err)
			}
			b.WriteString("\n")
		}
		for _, k := range []string{"a", "ab", "abb", "b", "c", "cc", "cba", "z"} {
			v, ok, err := r.Get([]byte(k))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "get %s %v %s\n", k, ok, v)
		}
		return b.String()
	}
	for round := range 200 {
		// The store before, a block's writes, the next block's.
		txn := db.NewTransaction(true)
		apply(badgerdb.KV{Txn: txn}, ops(10))
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		// writeOver writes os into a write set over r and checks that it
		// reads as a badger write of os over the store.
		writeOver := func(r kv.Reader, os []op, what string) *writeSet {
			ws := newWriteSet(r, 0)
			apply(ws, os)
			want := db.NewTransaction(true)
			defer want.Discard()
			apply(badgerdb.KV{Txn: want}, os)
			if a, b := read(badgerdb.KV{Txn: want}), read(ws); a != b {
				t.Fatalf("round %d: badger's write reads\n%s\n%s\n%s", round, a, what, b)
			}
			return ws
		}
		first, second := ops(8), ops(8)
		base := db.NewTransaction(false)
		ws := writeOver(badgerdb.KV{Txn: base}, first, "the write set")
		w := db.NewTransaction(true)
		if err := ws.flush(w); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		ws.freeze() // as send does
		landed := db.NewTransaction(false)
		if a, b := read(badgerdb.KV{Txn: landed}), read(ws.over(badgerdb.KV{Txn: base})); a != b {
			t.Fatalf("round %d: the store after the write reads\n%s\nthe write set over the read before it\n%s", round, a, b)
		}
		landed.Discard()
		writeOver(ws.over(badgerdb.KV{Txn: base}), second, "the next write set over the first")
		base.Discard()
		// Start the next round from an empty store.
		clear := db.NewTransaction(true)
		it := clear.NewIterator(badger.IteratorOptions{})
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
		for _, k := range keys {
			clear.Delete(k)
		}
		if err := clear.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSealNextConcurrent seals one block after another with SealNext, not
// waiting for every write, while one goroutine submits (new transactions,
// some refused in execution, resubmissions of earlier ones) and another
// reads the queue; the log's segments are small, so that landings remove
// segments while submissions append. Every acknowledged transaction is
// executed once, in order of the blocks; none is lost or taken twice.
func TestSealNextConcurrent(t *testing.T) {
	defer func(n int64) { logSegmentBytes = n }(logSegmentBytes)
	logSegmentBytes = 2048
	cfg := oneKeyConfig()
	cfg.MaxBlockTxs = 6
	f := newFixture(t, cfg)
	if err := f.in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
		t.Fatal(err)
	}
	const total = 240
	var txs []*phases.Tx
	for i := range total {
		if i%7 == 3 {
			txs = append(txs, f.mint(f.deny, f.allow, f.alice, fmt.Sprint("d", i), "1"))
		} else {
			txs = append(txs, f.mint(f.allow, f.allow, f.alice, fmt.Sprint("k", i), "1"))
		}
	}
	acked := make([]int, total) // times each was acknowledged
	done := make(chan struct{})
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		rng := mrand.New(mrand.NewPCG(3, 4))
		for i := 0; i < total; {
			n := min(1+rng.IntN(4), total-i)
			batch, idx := slices.Clone(txs[i:i+n]), []int{}
			for j := range n {
				idx = append(idx, i+j)
			}
			if i > 0 { // one resubmitted
				k := rng.IntN(i)
				batch, idx = append(batch, txs[k]), append(idx, k)
			}
			for j, err := range f.in.SubmitAll(batch) {
				if err == nil {
					acked[idx[j]]++
				}
			}
			i += n
		}
	}()
	go func() { // readers outside the writers' lock
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := f.in.Queued(); err != nil {
				t.Error(err)
			}
			for _, tx := range txs[:20] {
				if _, _, err := f.in.TxState(tx.ID()); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	var pending []*PendingSeal
	seen := map[notes.Hash]int{}
	collect := func(p *PendingSeal) {
		s, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range s.Receipts {
			seen[rc.TxID]++
		}
	}
	for round := 0; ; round++ {
		p, err := f.in.SealNext(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
		if round%3 == 2 {
			collect(pending[0])
			pending = pending[1:]
		}
		select {
		case <-submitted:
			if ids, err := f.in.Queued(); err != nil || len(ids) == 0 && p.Unlanded().Taken == 0 {
				for _, p := range pending {
					collect(p)
				}
				close(done)
				goto check
			}
		default:
		}
	}
check:
	if _, err := f.in.QueueDepth(); err != nil {
		t.Fatal(err)
	}
	for i, tx := range txs {
		id := tx.ID()
		accepted := i%7 != 3
		switch {
		case acked[i] == 0:
			t.Fatalf("transaction %d was never acknowledged", i)
		case accepted && (acked[i] != 1 || seen[id] != 1):
			t.Fatalf("transaction %d: acknowledged %d times, executed %d times", i, acked[i], seen[id])
		case !accepted && seen[id] != acked[i]:
			t.Fatalf("refused transaction %d: acknowledged %d times, executed %d times", i, acked[i], seen[id])
		}
		st, _, err := f.in.TxState(id)
		if err != nil || accepted != (st == TxCommitted) || st == TxQueued {
			t.Fatalf("transaction %d: %v, %v", i, st, err)
		}
	}
	if ids, err := f.in.Queued(); err != nil || len(ids) != 0 {
		t.Fatalf("left queued: %d, %v", len(ids), err)
	}
}

// TestSubmitWhileInFlight: while a block's write is in flight, nothing
// tells that its transactions were executed: a resubmission of one is
// refused as queued (it is, until the block is durable); once the write
// landed it is refused as a replay of that block.
func TestSubmitWhileInFlight(t *testing.T) {
	f := memFixture(t)
	gateLandings(t)
	tx := f.mint(f.allow, f.allow, f.alice, "k", "1")
	if _, err := f.in.Submit(tx); err != nil {
		t.Fatal(err)
	}
	p, err := f.in.SealNext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.Landed() || p.Unlanded().Block == nil {
		t.Fatal("the block is not in flight")
	}
	if _, err := f.in.Submit(tx); !errors.Is(err, ErrQueued) {
		t.Fatalf("resubmitted while its block is in flight: %v; want %v", err, ErrQueued)
	}
	if _, err := f.in.QueueDepth(); err != nil { // settles the write
		t.Fatal(err)
	}
	s, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var replay *ReplayError
	if _, err := f.in.Submit(tx); !errors.As(err, &replay) || replay.Height != s.Block.Height {
		t.Fatalf("resubmitted once its block landed: %v", err)
	}
}

// TestSealNextCrashInFlight: a node killed once a pipelined block's write
// is durable and before its landing ran (the guard still records the
// block as being signed, the log still holds its transactions): the next
// Open keeps the block, records it as signed, queues none of its
// transactions again but the one submitted meanwhile, and seals on.
// Close with a write in flight waits for it.
func TestSealNextCrashInFlight(t *testing.T) {
	f := memFixture(t)
	gateLandings(t)
	ok, refused, later := f.mint(f.allow, f.allow, f.alice, "k", "1"), f.mint(f.deny, f.allow, f.alice, "d", "1"), f.mint(f.allow, f.allow, f.alice, "l", "1")
	for _, err := range f.in.SubmitAll([]*phases.Tx{ok, refused}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := f.in.SealNext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := p.Unlanded().Block
	if _, err := f.in.Submit(later); err != nil {
		t.Fatal(err)
	}
	// The write is in: a read waits for it (badger's commit marks).
	if st, h, err := f.in.TxState(ok.ID()); err != nil || st != TxCommitted || h != b.Height {
		t.Fatalf("the block's write is not in: %v %d, %v", st, h, err)
	}
	crashMem(t, f.in) // its landing never runs
	in, err := Open(f.home)
	if err != nil {
		t.Fatalf("open after a crash with a block in flight: %v", err)
	}
	if head, err := in.Head(); err != nil || head.Hash() != b.Hash() {
		t.Fatalf("head after the crash: %v, %v; want block %d", head, err, b.Height)
	}
	if ids, err := in.Queued(); err != nil || !slices.Equal(ids, []notes.Hash{later.ID()}) {
		t.Fatalf("queued after the crash: %x, %v", ids, err)
	}
	landGate = nil // the crashed landing stays held
	if err := in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
		t.Fatal(err)
	}
	p, err = in.SealNext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil { // waits for the write in flight
		t.Fatal(err)
	}
	s, err := p.Wait()
	if err != nil || s.Block == nil || s.Block.Height != b.Height+1 {
		t.Fatalf("the next block: %v, %v", s, err)
	}
	in, err = Open(f.home)
	if err != nil {
		t.Fatalf("open after Close with a block in flight: %v", err)
	}
	defer in.Close()
	if head, err := in.Head(); err != nil || head.Hash() != s.Block.Hash() {
		t.Fatalf("head after Close: %v, %v; want block %d", head, err, s.Block.Height)
	}
}

// TestSealNextHalvesOverTheWriteBound: blocks too large for one write are
// retried with half the transactions while the block before is in flight,
// as Seal retries them: every transaction runs once, none is skipped.
func TestSealNextHalvesOverTheWriteBound(t *testing.T) {
	cfg := oneKeyConfig()
	cfg.MaxBlockTxs = 16
	f := newFixture(t, cfg)
	if err := f.in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
		t.Fatal(err)
	}
	gateLandings(t)
	var txs []*phases.Tx // 1 MB of notes each (megabyteTxs)
	for i := range 20 {
		f.nonce++
		calc := fmt.Sprintf(`local v = string.rep("x", 64000) local out = {} for j = 1, 16 do out[j] = {application=%q, owner=%q, key="t%d-"..j, value=v} end return out`,
			hex.EncodeToString(f.allow[:]), hex.EncodeToString(f.allow[:]), i)
		txs = append(txs, f.sign(&phases.Tx{Nonce: f.nonce, GasLimit: 5_000_000,
			Write: notes.ConstraintSet{appPattern(f.allow, f.allow)}, Calculation: []byte(calc)}, f.alice))
	}
	for _, err := range f.in.SubmitAll(txs) {
		if err != nil {
			t.Fatal(err)
		}
	}
	var pending []*PendingSeal
	for range 3 {
		p, err := f.in.SealNext(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	if _, err := f.in.QueueDepth(); err != nil {
		t.Fatal(err)
	}
	seen := map[notes.Hash]int{}
	var sizes []int
	for _, p := range pending {
		s, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, s.Taken)
		for _, rc := range s.Receipts {
			if rc.Status != phases.Accepted {
				t.Fatalf("refused: %v", rc.Err())
			}
			seen[rc.TxID]++
		}
	}
	if !slices.Equal(sizes, []int{8, 8, 4}) {
		t.Fatalf("blocks took %v; want 8, 8, 4", sizes)
	}
	for i, tx := range txs {
		if seen[tx.ID()] != 1 {
			t.Fatalf("transaction %d ran %d times", i, seen[tx.ID()])
		}
	}
}

// TestSealNextDeletesStaleTakenRecords: a node under load seals every
// block while the one before is in flight; the taken records of refused
// transactions whose log segment is gone must still be deleted by later
// blocks (as TestMemQueueSegmentsRemoved shows for Seal), not pile up in
// the store until the load stops.
func TestSealNextDeletesStaleTakenRecords(t *testing.T) {
	defer func(n int64) { logSegmentBytes = n }(logSegmentBytes)
	logSegmentBytes = 1 // a segment a group
	f := memFixture(t)
	gateLandings(t)
	var pending []*PendingSeal
	for i := range 6 {
		txs := []*phases.Tx{f.mint(f.allow, f.allow, f.alice, fmt.Sprint("k", i), "1")}
		if i < 2 {
			txs = append(txs, f.mint(f.deny, f.allow, f.alice, fmt.Sprint("d", i), "1"))
		}
		for _, err := range f.in.SubmitAll(txs) {
			if err != nil {
				t.Fatal(err)
			}
		}
		p, err := f.in.SealNext(context.Background()) // the block before is in flight
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	if _, err := f.in.QueueDepth(); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, p := range pending {
		s, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range s.Receipts {
			if rc.Status != phases.Accepted {
				refused++
			}
		}
	}
	if refused != 2 {
		t.Fatalf("%d refused; want 2", refused)
	}
	if q := queueKeys(t, f.in); slices.ContainsFunc(q, isTakenRecord) {
		t.Fatalf("taken records whose segments are gone stay in the store: %s", q)
	}
}

// TestSealNextFailedWrite: a pipelined block whose write fails is not
// stored: Wait reports it, the next SealNext (which built its block over
// the failed one) fails too, and the block after takes the failed block's
// transactions again, with what came meanwhile, at the same height, each
// once; the guard forgets the block it began and the store reopens.
func TestSealNextFailedWrite(t *testing.T) {
	defer func() { landFail = nil }()
	f := memFixture(t)
	a, b, c := f.mint(f.allow, f.allow, f.alice, "a", "1"), f.mint(f.deny, f.allow, f.alice, "b", "1"), f.mint(f.allow, f.allow, f.alice, "c", "1")
	for _, err := range f.in.SubmitAll([]*phases.Tx{a, b}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	head, err := f.in.Head()
	if err != nil {
		t.Fatal(err)
	}
	gateLandings(t)
	landFail = errors.New("disk on fire")
	failed, err := f.in.SealNext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	landFail = nil
	if _, err := f.in.Submit(a); !errors.Is(err, ErrQueued) {
		t.Fatalf("resubmitted while its block is in flight: %v", err)
	}
	if _, err := f.in.Submit(c); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.SealNext(context.Background()); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("the seal over the failed write: %v", err)
	}
	if _, err := failed.Wait(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Wait of the failed write: %v", err)
	}
	p, err := f.in.SealNext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.QueueDepth(); err != nil {
		t.Fatal(err)
	}
	s, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var got []notes.Hash
	for _, rc := range s.Receipts {
		got = append(got, rc.TxID)
	}
	if s.Block == nil || s.Block.Height != head.Height+1 || !slices.Equal(got, []notes.Hash{a.ID(), b.ID(), c.ID()}) {
		t.Fatalf("the block after the failed write: %v, receipts of %x", s.Block, got)
	}
	if ids, err := f.in.Queued(); err != nil || len(ids) != 0 {
		t.Fatalf("queued: %x, %v", ids, err)
	}
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := Open(f.home)
	if err != nil {
		t.Fatalf("open after a failed write: %v", err)
	}
	in.Close()
}
