package fractal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

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
// the same.
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
		{a1, spend("a1"), f.paying(mint("a4"), f.alice.Public(), "f1", 1, f.alice), a2, bobMint("b2")},
		nil,
		{a2, spend("a2"), mint("a5"), mint("a6"), bobMint("b3"), mint("a7"), mint("a8"), mint("a9")},
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
