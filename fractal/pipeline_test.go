package fractal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/phases"
)

// heldWrites holds back pipelined block writes (commitWrite) until
// released, so that a test submits and seals while one is in flight.
type heldWrites struct {
	mu   sync.Mutex
	held []func()
}

func holdWrites(t *testing.T) *heldWrites {
	h := &heldWrites{}
	orig := commitWrite
	commitWrite = func(txn *badger.Txn, done func(error)) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.held = append(h.held, func() { txn.CommitWith(done) })
	}
	t.Cleanup(func() { commitWrite = orig })
	return h
}

// release lets the writes held so far go.
func (h *heldWrites) release() {
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	for _, f := range held {
		f()
	}
}

// TestSealNextSameAsSeal runs one script on two copies of one home, both
// with the queue in memory: one seals with Seal, the other with SealNext,
// each block's write held in flight while the next submissions are
// admitted and, most times, while the next block executes over it. Every
// submission's answer, every block hash and receipt, the queue and the
// transaction states after each landing, and at the end the whole store,
// are the same. Nothing of a block in flight is visible outside the
// instance: its receipt reads as queued until it lands.
func TestSealNextSameAsSeal(t *testing.T) {
	h := holdWrites(t)
	cfg := oneKeyConfig()
	cfg.MaxBlockTxs = 3
	f := newFixture(t, cfg)
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "seed", "1"))
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
		if err := in.KeepQueueInMemory(DefaultMaxQueueBytes); err != nil {
			t.Fatal(err)
		}
		return in
	}
	plain, piped := open(f.home), open(twin)
	defer func() { h.release(); plain.Close(); piped.Close() }() // a held write would keep Close waiting

	mint := func(k string) *phases.Tx { return f.mint(f.allow, f.allow, f.alice, k, "1") }
	spend := f.move(f.allow, f.allow, f.alice, "seed", "seed2", "2")
	refused := f.mint(f.deny, f.allow, f.alice, "d", "1")
	a1, a2 := mint("a1"), mint("a2")
	script := [][]*phases.Tx{
		{a1, spend, refused, a2, mint("a3")},
		{a1, spend, mint("a4"), f.move(f.allow, f.allow, f.alice, "seed", "seed3", "3"), mint("a3")}, // replays, a spent input, a duplicate key
		{mint("a5"), mint("a6"), f.move(f.allow, f.allow, f.alice, "seed2", "seed4", "4")},
		{},
		{},
		{},
	}
	var last *PendingSeal
	report := func(s *Sealed) string {
		var b strings.Builder
		if s.Block != nil {
			fmt.Fprintf(&b, "block %d %x\n", s.Block.Height, s.Block.Hash())
		}
		for _, rc := range s.Receipts {
			fmt.Fprintf(&b, "receipt %x\n", rc.Encode())
		}
		fmt.Fprintf(&b, "taken %d\n", s.Taken)
		return b.String()
	}
	state := func(in *Instance, txs []*phases.Tx) string {
		ids, err := in.Queued()
		if err != nil {
			t.Fatal(err)
		}
		depth, err := in.QueueDepth()
		if err != nil {
			t.Fatal(err)
		}
		out := fmt.Sprintf("depth %d queued %x\n", depth, ids)
		for _, tx := range txs {
			st, height, err := in.TxState(tx.ID())
			if err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf("%x %v %d\n", tx.ID(), st, height)
		}
		return out
	}
	var all []*phases.Tx
	inFlight := 0
	for step, txs := range script {
		all = append(all, txs...)
		// Submissions: on the piped copy while the last block's write is
		// held in flight.
		var got [2]string
		for i, in := range []*Instance{plain, piped} {
			for _, err := range in.SubmitAll(txs) {
				got[i] += fmt.Sprintf("submit: %v (refused %v)\n", err, errors.Is(err, ErrRefused))
			}
		}
		if got[0] != got[1] {
			t.Fatalf("step %d: submissions\nSeal:\n%s\nSealNext:\n%s", step, got[0], got[1])
		}
		s, err := plain.Seal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// The held write goes once this seal has begun: most times the
		// block executes over it, and it waits for it before signing.
		go h.release()
		p, err := piped.SealNext(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && piped.inflight == p && !last.Landed() {
			t.Fatalf("step %d: SealNext handed on a write before the one before landed", step)
		}
		if p.Unlanded().Block != nil {
			inFlight++
			for _, rc := range p.Unlanded().Receipts {
				if st, _, err := piped.TxState(rc.TxID); err != nil || st == TxCommitted {
					t.Fatalf("step %d: a transaction of a block in flight reads as %v, %v", step, st, err)
				}
			}
		}
		if a, b := report(s), report(p.Unlanded()); a != b {
			t.Fatalf("step %d: Seal:\n%s\nSealNext:\n%s", step, a, b)
		}
		last = p
		if step%2 == 1 { // now and then, the state once it landed
			h.release()
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			if a, b := state(plain, all), state(piped, all); a != b {
				t.Fatalf("step %d: after the landing\nSeal:\n%s\nSealNext:\n%s", step, a, b)
			}
		}
	}
	if inFlight < 3 {
		t.Fatalf("only %d blocks were sealed in flight", inFlight)
	}
	h.release()
	if _, err := last.Wait(); err != nil {
		t.Fatal(err)
	}
	if a, b := state(plain, all), state(piped, all); a != b {
		t.Fatalf("at the end\nSeal:\n%s\nSealNext:\n%s", a, b)
	}
	if err := plain.Close(); err != nil {
		t.Fatal(err)
	}
	if err := piped.Close(); err != nil {
		t.Fatal(err)
	}
	a, b := reopen(t, f.home), reopen(t, twin)
	defer func() { a.Close(); b.Close() }()
	// Block signatures are randomized: the blocks' hashes were compared
	// at each step, and Verify checks every signature.
	if da, db := unsigned(dumpStore(t, a)), unsigned(dumpStore(t, b)); da != db {
		t.Fatalf("the stores differ:\n%s\n\n%s", da, db)
	}
	for _, in := range []*Instance{a, b} {
		if _, err := in.Verify(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func reopen(t *testing.T, home string) *Instance {
	t.Helper()
	in, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// unsigned is a store dump without its block records.
func unsigned(dump string) string {
	var kept []string
	for _, line := range strings.Split(dump, "\n") {
		if !strings.HasPrefix(line, fmt.Sprintf("%x", []byte{prefixBlock})) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
