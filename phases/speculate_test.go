package phases

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// failingState fails every read.
type failingState struct{}

func (failingState) Get(notes.StateKey) (*notes.Note, error) { return nil, errors.New("disk gone") }
func (failingState) Scan(notes.Pattern, func(*notes.Note) error) error {
	return errors.New("disk gone")
}

func TestRecorderStill(t *testing.T) {
	w := newWorld(t)
	issuer, a, b := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	a1, a2, a3 := w.gold(issuer.Public(), a.Public(), 1, "1"), w.gold(issuer.Public(), a.Public(), 2, "2"), w.gold(issuer.Public(), a.Public(), 3, "3")
	bNote := w.gold(issuer.Public(), b.Public(), 5, "1")
	base := newMemState()
	for _, n := range []notes.Note{a1, a2, a3, bNote} {
		base.put(n)
	}
	missing := keyOf(w.gold(issuer.Public(), b.Public(), 1, "missing"))
	// Each read kind on its own recorder, so that each change below tells
	// exactly which reads it breaks.
	reads := map[string]func(st State) *recorder{
		"get": func(st State) *recorder {
			r := &recorder{st: st}
			_, _ = r.Get(keyOf(bNote))
			return r
		},
		"get missing": func(st State) *recorder {
			r := &recorder{st: st}
			_, _ = r.Get(missing)
			return r
		},
		"whole scan": func(st State) *recorder {
			r := &recorder{st: st}
			_ = r.Scan(w.ownerPrefix(a.Public()), func(*notes.Note) error { return nil })
			return r
		},
		"stopped scan": func(st State) *recorder {
			r := &recorder{st: st}
			_ = r.Scan(w.ownerPrefix(a.Public()), func(*notes.Note) error { return errors.New("enough") })
			return r
		},
	}
	changed := func(f func(s *memState)) *memState {
		s := base.clone()
		f(s)
		return s
	}
	states := []struct {
		name  string
		st    State
		still map[string]bool // by read; the others are not still
	}{
		{"unchanged", base.clone(), map[string]bool{"get": true, "get missing": true, "whole scan": true, "stopped scan": true}},
		{"b's note changed", changed(func(s *memState) { s.put(w.gold(issuer.Public(), b.Public(), 6, "1")) }),
			map[string]bool{"get missing": true, "whole scan": true, "stopped scan": true}},
		{"b's note spent", changed(func(s *memState) { delete(s.m, keyOf(bNote).String()) }),
			map[string]bool{"get missing": true, "whole scan": true, "stopped scan": true}},
		{"a note at the missing key", changed(func(s *memState) { s.put(w.gold(issuer.Public(), b.Public(), 1, "missing")) }),
			map[string]bool{"get": true, "whole scan": true, "stopped scan": true}},
		{"a note after the stopped scan's first", changed(func(s *memState) { s.put(w.gold(issuer.Public(), a.Public(), 4, "4")) }),
			map[string]bool{"get": true, "get missing": true, "stopped scan": true}},
		{"a note before the stopped scan's first", changed(func(s *memState) { s.put(w.gold(issuer.Public(), a.Public(), 4, "0")) }),
			map[string]bool{"get": true, "get missing": true}},
		{"a's last note changed", changed(func(s *memState) { s.put(w.gold(issuer.Public(), a.Public(), 9, "3")) }),
			map[string]bool{"get": true, "get missing": true, "stopped scan": true}},
		{"a failing state", failingState{}, nil},
	}
	for name, read := range reads {
		for _, s := range states {
			if got := read(base).still(s.st); got != s.still[name] {
				t.Errorf("%s after %s: still %v, want %v", name, s.name, got, s.still[name])
			}
		}
		r := read(failingState{})
		if !r.failed || r.still(base) {
			t.Errorf("%s on a failing state: failed %v, still %v", name, r.failed, r.still(base))
		}
	}
}

// chainBlock is n transfers from one sender, each spending the change of
// the one before it: each reads what the one before it writes.
func chainBlock(t testing.TB, w *world, n int) []*Tx {
	issuer, from, to := testKey(t, 120), testKey(t, 121), testKey(t, 122)
	held, bal := w.gold(issuer.Public(), from.Public(), 1000, "genesis"), 1000
	w.st.put(held)
	var txs []*Tx
	for i := range n {
		txs = append(txs, w.transferTx(t, from, []notes.Note{held}, to.Public(), 1, uint64(i+1)))
		bal--
		held = w.gold(issuer.Public(), from.Public(), bal, transferTag(held)+":2")
	}
	return txs
}

// sharingOnePattern adds one write pattern to every transaction of txs, so
// that each conflicts with all the others, and signs them again.
func sharingOnePattern(t testing.TB, w *world, txs []*Tx, signers map[keys.PublicKey]keys.PrivateKey) []*Tx {
	shared := notes.PatternFromKeyPrefix(notes.StateKey{Application: w.token, Owner: w.sig, Key: []byte("shared:")})
	out := make([]*Tx, len(txs))
	for i, tx := range txs {
		c := *tx
		c.Write = append(append(notes.ConstraintSet{}, tx.Write...), shared)
		var privs []keys.PrivateKey
		for _, pub := range tx.Signers {
			privs = append(privs, signers[pub])
		}
		out[i] = signed(t, &c, privs...)
	}
	return out
}

// TestSpeculationEqualsSerial runs blocks whose transactions all wait for
// one another on two workers, so that one runs transactions speculatively:
// independent ones (their speculative runs are kept) and a chain (they are
// wasted, and speculation stops). Every run equals the serial one.
func TestSpeculationEqualsSerial(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	w := newWorld(t)
	signers := map[keys.PublicKey]keys.PrivateKey{}
	for _, seed := range []byte{1, 2, 3, 4, 5, 6, 7, 8, 100} {
		k := testKey(t, seed)
		signers[k.Public()] = k
	}
	mixed := sharingOnePattern(t, w, mixedBlock(t, w), signers)
	chain := chainBlock(t, w, 40)
	for _, c := range []struct {
		name       string
		txs        []*Tx
		kept, lost bool // some speculative runs kept, some wasted
	}{{"mixed block sharing one pattern", mixed, true, false}, {"chain", chain, false, true}} {
		serial, err := ExecuteSerial(w.st, w.code, w.pool, c.txs)
		if err != nil {
			t.Fatal(err)
		}
		want := encodeOutcomes(serial)
		var total speculationCount
		for run := 0; run < 20; run++ {
			outs := make([]*Outcome, len(c.txs))
			count, err := executeBlock(w.st, w.code, w.pool, c.txs, func(i int, out *Outcome) error {
				outs[i] = out
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(encodeOutcomes(outs), want) {
				t.Fatalf("%s, run %d: outcomes differ from serial", c.name, run)
			}
			if count.wasted > count.kept+speculationSlack+2*runtime.GOMAXPROCS(0) {
				t.Fatalf("%s, run %d: %d speculative runs wasted, %d kept: speculation did not stop", c.name, run, count.wasted, count.kept)
			}
			total.kept += count.kept
			total.wasted += count.wasted
		}
		t.Logf("%s: %d speculative runs kept, %d wasted in 20 blocks", c.name, total.kept, total.wasted)
		if c.kept && total.kept == 0 || c.lost && total.wasted == 0 {
			t.Fatalf("%s: %d speculative runs kept, %d wasted in 20 blocks", c.name, total.kept, total.wasted)
		}
	}
	for _, o := range encodeChainStatus(t, w, chain) {
		if o != Accepted {
			t.Fatal("the chain is not all accepted")
		}
	}
}

// encodeChainStatus is the status of each of txs run serially.
func encodeChainStatus(t *testing.T, w *world, txs []*Tx) []Status {
	outs, err := ExecuteSerial(w.st, w.code, w.pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	var s []Status
	for _, o := range outs {
		s = append(s, o.Receipt.Status)
	}
	return s
}
