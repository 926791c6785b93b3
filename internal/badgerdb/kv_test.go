package badgerdb

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/kv"
)

// dumpKV renders every key and value of r under prefix, in scan order.
func dumpKV(t *testing.T, r kv.Reader, prefix []byte) string {
	t.Helper()
	var out []string
	if err := r.Scan(prefix, func(k, v []byte) error {
		out = append(out, fmt.Sprintf("%x=%x", k, v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// TestKVMatchesMap: a KV over a badger transaction answers every Get and
// Scan as a kv.Map given the same writes does, its own uncommitted writes
// included, and after the commit a new transaction sees the same.
func TestKVMatchesMap(t *testing.T) {
	db, err := Open(storeOptions(filepath.Join(t.TempDir(), "db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte { return []byte{byte('a' + rng.IntN(3)), byte('a' + rng.IntN(3))}[:1+rng.IntN(2)] }
	m := kv.Map{}
	txn := db.NewTransaction(true)
	s := KV{txn}
	for i := range 300 {
		k := key()
		if rng.IntN(3) == 0 {
			if err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			m.Delete(k)
		} else {
			v := []byte(fmt.Sprint(i))
			if err := s.Set(k, v); err != nil {
				t.Fatal(err)
			}
			m.Set(k, v)
		}
		q := key()
		gv, gok, gerr := s.Get(q)
		wv, wok, _ := m.Get(q)
		if gerr != nil || gok != wok || string(gv) != string(wv) {
			t.Fatalf("step %d: get %q = %q %v %v, the map has %q %v", i, q, gv, gok, gerr, wv, wok)
		}
		p := q[:rng.IntN(len(q)+1)]
		if got, want := dumpKV(t, s, p), dumpKV(t, m, p); got != want {
			t.Fatalf("step %d: scan %q = %s, the map gives %s", i, p, got, want)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	view := db.NewTransaction(false)
	defer view.Discard()
	if got, want := dumpKV(t, KV{view}, nil), dumpKV(t, m, nil); got != want {
		t.Fatalf("after commit: %s, the map gives %s", got, want)
	}
	if err := (KV{view}).Set([]byte("a"), nil); err == nil {
		t.Fatal("a read-only transaction took a write")
	}
}
