package fractal

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
)

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
