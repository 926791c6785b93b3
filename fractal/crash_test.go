package fractal

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// crashHomeEnv names the instance a re-executed test binary commits blocks
// to (or verifies, when crashVerifyEnv is set) until it is killed.
const (
	crashHomeEnv   = "FRACTAL_CRASH_HOME"
	crashVerifyEnv = "FRACTAL_CRASH_VERIFY"
)

// TestCrashChild is the child side of TestCrashRecovery: it does nothing
// unless started by it.
func TestCrashChild(t *testing.T) {
	home := os.Getenv(crashHomeEnv)
	if home == "" {
		t.Skip("run by TestCrashRecovery")
	}
	in, err := Open(home)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	if os.Getenv(crashVerifyEnv) != "" {
		for {
			fmt.Println("verifying")
			if _, err := in.Verify(context.Background(), nil); err != nil {
				fmt.Println("verify:", err)
				os.Exit(2)
			}
		}
	}
	f := &fixture{in: in, home: home, nonce: rand.Uint64()}
	f.allow = sha256.Sum256([]byte("return true\n"))
	f.alice = genKey(t)
	for round := 0; ; round++ {
		// Each round spends some live notes and creates new ones, so a
		// half-applied block would show as a note both spent and live,
		// or created without its receipt.
		live, err := in.Notes(notes.AnyPattern())
		if err != nil {
			fmt.Println("notes:", err)
			os.Exit(2)
		}
		for i := 0; i < 6; i++ {
			k := fmt.Sprintf("%x-%d", f.nonce, i)
			var tx *phases.Tx
			if i < len(live) && i%2 == 0 {
				tx = f.move(f.allow, f.allow, f.alice, string(live[i].Key), k+"a", "x", k+"b", "y")
			} else {
				tx = f.mint(f.allow, f.allow, f.alice, k, "z")
			}
			if _, err := in.Submit(tx); err != nil {
				fmt.Println("submit:", err)
				os.Exit(2)
			}
		}
		s, err := in.Seal(context.Background())
		if err != nil {
			fmt.Println("seal:", err)
			os.Exit(2)
		}
		if s.Block != nil {
			fmt.Printf("sealed %d\n", s.Block.Height)
		}
	}
}

// TestCrashRecovery kills a process committing blocks (every third round:
// verifying the chain) with SIGKILL at random points, again and again, and
// checks after each kill that the reopened store holds exactly the
// committed transactions, none half-applied, and the guard its last block.
// Each round also leaves what a kill between creating a memtable or value
// log file and sizing it leaves, an empty file, which badger alone refused
// to open ("Create a new file"). The first open after a kill must work, and
// a killed verify must leave nothing in the system's temporary folder.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	f := newFixture(t, DefaultConfig())
	home := f.home
	f.in.Close()
	sysTmp := t.TempDir() // the children's TMPDIR
	rounds := 12
	lastHeight := uint64(0)
	for r := 0; r < rounds; r++ {
		verifying := r%3 == 2
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashHomeEnv+"="+home, "TMPDIR="+sysTmp)
		if verifying {
			cmd.Env = append(cmd.Env, crashVerifyEnv+"=1")
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the first sealed block (or verify), then kill at a
		// random moment.
		lines := bufio.NewScanner(out)
		if !lines.Scan() || !strings.HasPrefix(lines.Text(), "sealed ") && !(verifying && lines.Text() == "verifying") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child said %q", r, lines.Text())
		}
		go func() {
			for lines.Scan() {
			}
		}()
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if left, _ := os.ReadDir(sysTmp); len(left) > 0 {
			t.Fatalf("round %d: the killed child left %s in the temporary folder", r, left[0].Name())
		}
		leaveEmptyLogs(t, filepath.Join(home, dbDir))

		in, err := Open(home)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", r, err)
		}
		if _, err := os.Stat(filepath.Join(home, tmpDir)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d: the scratch folder survived the open: %v", r, err)
		}
		h := checkConsistent(t, in)
		in.Close()
		if h < lastHeight || !verifying && h == lastHeight {
			t.Fatalf("round %d: height %d after %d", r, h, lastHeight)
		}
		lastHeight = h
	}
	t.Logf("%d kills, %d blocks committed", rounds, lastHeight)
}

// leaveEmptyLogs adds, to the store in dir, the empty memtable and value
// log files that a kill between creating such a file and sizing it leaves:
// numbered one past the last of each.
func leaveEmptyLogs(t *testing.T, dir string) {
	t.Helper()
	for _, ext := range []string{".mem", ".vlog"} {
		names, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
		last := 0
		for _, n := range names {
			if id, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(n), ext)); err == nil && id > last {
				last = id
			}
		}
		width := 6 // badger names value logs %06d, memtables %05d
		if ext == ".mem" {
			width = 5
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%0*d%s", width, last+1, ext)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkConsistent replays the receipts of every block from genesis and
// checks that the live notes, the transaction index, the receipts, the queue
// and the state tree agree with them exactly. It returns the head height.
func checkConsistent(t *testing.T, in *Instance) uint64 {
	t.Helper()
	head, err := in.Head()
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.Load(filepath.Join(in.home, guardFile), in.ID())
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := g.Signed(guard.Blocks); s != (guard.Block{Height: head.Height, Hash: head.Hash()}) {
		t.Fatalf("guard records block %v, the head is %d", s, head.Height)
	}
	live := map[string]notes.Hash{} // state key → note ID, from the receipts
	committed := map[notes.Hash]bool{}
	var prev *chain.Block
	for h := uint64(0); h <= head.Height; h++ {
		b, err := in.Block(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := chain.VerifyBlock(b); err != nil {
			t.Fatal(err)
		}
		if prev != nil && (b.Prev != prev.Hash() || len(b.TxIDs) == 0) {
			t.Fatalf("block %d does not chain or is empty", h)
		}
		for _, id := range b.TxIDs {
			rc, err := in.Receipt(id)
			if err != nil {
				t.Fatalf("block %d: %v", h, err)
			}
			if rc.Status != phases.Accepted {
				t.Fatalf("block %d holds refused %x", h, id[:8])
			}
			for _, ref := range rc.Inputs {
				sk := ref.Key.String()
				if live[sk] != ref.ID {
					t.Fatalf("block %d spends %s, which was not live", h, sk)
				}
				delete(live, sk)
			}
			for _, ref := range rc.Outputs {
				live[ref.Key.String()] = ref.ID
			}
			committed[id] = true
		}
		prev = b
	}
	stored, err := in.Notes(notes.AnyPattern())
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(live) {
		t.Fatalf("%d live notes stored, receipts give %d", len(stored), len(live))
	}
	err = in.db.View(func(txn *badger.Txn) error {
		for _, n := range stored {
			sk := n.StateKey().String()
			if live[sk] != n.ID() {
				return fmt.Errorf("note at %s is not what the receipts left", sk)
			}
			v, ok, err := tree.Get(badgerdb.KV{Txn: txn}, head.StateRoot, sha256.Sum256([]byte(sk)))
			if err != nil || !ok || v != n.ID() {
				return fmt.Errorf("state tree at %s: %x %v %v", sk, v, ok, err)
			}
		}
		root, err := getValue(txn, metaRoot)
		if err != nil || statetree.Hash(root) != head.StateRoot {
			return fmt.Errorf("stored root %x, head block %x", root, head.StateRoot)
		}
		// Every index entry and receipt belongs to a committed block.
		for _, p := range []byte{prefixTx, prefixReceipt} {
			n := 0
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}})
			for it.Rewind(); it.Valid(); it.Next() {
				var id notes.Hash
				copy(id[:], it.Item().Key()[1:])
				if !committed[id] {
					it.Close()
					return fmt.Errorf("%c entry %s without a block", p, hex.EncodeToString(id[:]))
				}
				n++
			}
			it.Close()
			if n != len(committed) {
				return fmt.Errorf("%d %c entries for %d committed transactions", n, p, len(committed))
			}
		}
		// The queue and its index agree.
		q, err := readQueue(txn, MaxQueueRead)
		if err != nil {
			return err
		}
		pending := 0
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixPending}})
		for it.Rewind(); it.Valid(); it.Next() {
			pending++
		}
		it.Close()
		if pending != len(q) {
			return fmt.Errorf("%d queue index entries for %d queued transactions", pending, len(q))
		}
		for _, e := range q {
			if committed[e.tx.ID()] {
				return fmt.Errorf("queued transaction %x was committed", e.tx.ID())
			}
			if _, err := txn.Get(hashKey(prefixPending, e.tx.ID())); err != nil {
				return fmt.Errorf("queued %x has no index entry", e.tx.ID())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return head.Height
}
