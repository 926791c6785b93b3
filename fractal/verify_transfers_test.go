package fractal

import (
	"context"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
)

// TestVerifyChecksOutboxAndImportIndex: the outbox and the import index
// live in the store beside the notes; a store whose entries differ from the
// replay's is named by verify. A missing import index entry is the one that
// matters most: without it the instance would accept the same export twice.
func TestVerifyChecksOutboxAndImportIndex(t *testing.T) {
	w := newWorld(t, 2)
	a, b := w.ins[0], w.ins[1]
	rec, _ := w.exported(t, 0, b.ID())
	if rc := w.importClaim(t, b, claimOf(t, a, rec)); rc.Err() != nil {
		t.Fatal(rc.Err())
	}
	for _, in := range []*Instance{a, b} {
		if _, err := in.Verify(context.Background(), nil); err != nil {
			t.Fatalf("clean chain: %v", err)
		}
	}
	ixKey := hashKey(prefixImportIx, rec.ID())
	obKey := outboxStoreKey(rec.To, chain.OutboxKey(rec.TxID, rec.Index))
	edit := func(in *Instance, fn func(txn *badger.Txn) error) {
		t.Helper()
		if err := in.db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		in   *Instance
		key  []byte
		want string
	}{
		{"import index entry deleted", b, ixKey, "verify: import index "},
		{"outbox entry deleted", a, obKey, "verify: outbox "},
	} {
		raw := storedValue(t, c.in, c.key)
		edit(c.in, func(txn *badger.Txn) error { return txn.Delete(c.key) })
		_, err := c.in.Verify(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "in the replay but not stored") {
			t.Fatalf("%s: %v", c.name, err)
		}
		// An extra entry beside the true one is named too.
		extra := append(append([]byte(nil), c.key[:len(c.key)-1]...), c.key[len(c.key)-1]^1)
		edit(c.in, func(txn *badger.Txn) error {
			if err := txn.Set(c.key, raw); err != nil {
				return err
			}
			return txn.Set(extra, raw)
		})
		_, err = c.in.Verify(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "stored but not in the replay") {
			t.Fatalf("%s, extra entry: %v", c.name, err)
		}
		// A changed value is named.
		bad := append([]byte(nil), raw...)
		bad[len(bad)-1] ^= 1
		edit(c.in, func(txn *badger.Txn) error {
			if err := txn.Delete(extra); err != nil {
				return err
			}
			return txn.Set(c.key, bad)
		})
		_, err = c.in.Verify(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "differs from the replay") {
			t.Fatalf("%s, changed value: %v", c.name, err)
		}
		edit(c.in, func(txn *badger.Txn) error { return txn.Set(c.key, raw) })
		if _, err := c.in.Verify(context.Background(), nil); err != nil {
			t.Fatalf("%s, restored: %v", c.name, err)
		}
	}
}

func storedValue(t *testing.T, in *Instance, key []byte) []byte {
	t.Helper()
	var raw []byte
	err := in.db.View(func(txn *badger.Txn) (err error) {
		raw, err = getValue(txn, key)
		return err
	})
	if err != nil {
		t.Fatalf("stored %x: %v", key, err)
	}
	return raw
}
