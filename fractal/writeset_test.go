package fractal

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
)

// TestWriteSetReadsAsOneStore: a write set over a base reads as the base
// with the set's writes applied would, Get and Scan alike (a key written
// then deleted, deleted then written, a base key deleted, keys before,
// between and after the base's), and reading the set over again (over,
// as the next block does) reads the same. Values handed out are copies.
func TestWriteSetReadsAsOneStore(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		base, want := kv.Map{}, kv.Map{}
		key := func() []byte { return fmt.Appendf(nil, "%c%d", 'a'+rune(r.IntN(3)), r.IntN(20)) }
		for range r.IntN(30) {
			k, v := key(), fmt.Appendf(nil, "base%d", r.IntN(100))
			base.Set(k, v)
			want.Set(k, bytes.Clone(v))
		}
		ws := newWriteSet(base, 0)
		for i := range r.IntN(40) {
			k := key()
			if r.IntN(3) == 0 {
				ws.Delete(k)
				want.Delete(k)
			} else {
				v := fmt.Appendf(nil, "set%d", i)
				ws.Set(k, v)
				want.Set(k, bytes.Clone(v))
			}
		}
		for _, view := range []kv.Reader{ws, ws.over(base)} {
			for _, p := range []string{"", "a", "b1", "c", "z"} {
				if got, exp := scanned(t, view, p), scanned(t, want, p); got != exp {
					t.Fatalf("round %d: Scan(%q)\n got %s\nwant %s", round, p, got, exp)
				}
			}
			for i := range 20 {
				k := fmt.Appendf(nil, "b%d", i)
				got, ok, err := view.Get(k)
				exp, eok, _ := want.Get(k)
				if err != nil || ok != eok || !bytes.Equal(got, exp) {
					t.Fatalf("round %d: Get(%s) = %q %v %v, want %q %v", round, k, got, ok, err, exp, eok)
				}
				if ok {
					got[0] ^= 0xff // the caller's copy
					if again, _, _ := view.Get(k); !bytes.Equal(again, exp) {
						t.Fatalf("round %d: changing what Get returned changed the set", round)
					}
				}
			}
		}
	}
}

// scanned is what a Scan of r under prefix hands on, as text.
func scanned(t *testing.T, r kv.Reader, prefix string) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Scan([]byte(prefix), func(k, v []byte) error {
		fmt.Fprintf(&b, "%s=%s ", k, v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestWriteSetFlush: flushed into a badger write, the set leaves the store
// holding what it reads as, each key written once.
func TestWriteSetFlush(t *testing.T) {
	db, err := badgerdb.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(txn *badger.Txn) error {
		for _, k := range []string{"a", "b", "c"} {
			if err := txn.Set([]byte(k), []byte("old "+k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	view := db.NewTransaction(false)
	defer view.Discard()
	ws := newWriteSet(badgerdb.KV{Txn: view}, 4)
	ws.Set([]byte("b"), []byte("first"))
	ws.Set([]byte("b"), []byte("new b"))
	ws.Delete([]byte("a"))
	ws.Set([]byte("d"), []byte("new d"))
	ws.Delete([]byte("d"))
	ws.Set([]byte("e"), nil)
	if len(ws.order) != 4 {
		t.Fatalf("keys in the order first written: %q", ws.order)
	}
	txn := db.NewTransaction(true)
	if err := ws.flush(txn); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	after := db.NewTransaction(false)
	defer after.Discard()
	if got, want := scanned(t, badgerdb.KV{Txn: after}, ""), scanned(t, ws, ""); got != want || got != "b=new b c=old c e= " {
		t.Fatalf("the store after the flush: %s; the set read: %s", got, want)
	}
}
