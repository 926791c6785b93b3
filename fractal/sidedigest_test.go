package fractal

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// cloneInstance closes in and returns it and a copy of its home, both
// opened again: two validators with the same store.
func cloneInstance(t *testing.T, in *Instance, home string) (*Instance, *Instance) {
	t.Helper()
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "copy")
	copyTree(t, home, other)
	var out []*Instance
	for _, h := range []string{home, other} {
		o, err := Open(h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close() })
		out = append(out, o)
	}
	return out[0], out[1]
}

// decideBoth hands the same block to a and b and returns their app hashes.
func decideBoth(t *testing.T, a, b *Instance, h uint64, raws ...[]byte) ([32]byte, [32]byte) {
	t.Helper()
	return decide(t, a, h, nil, raws...).AppHash, decide(t, b, h, nil, raws...).AppHash
}

// TestSideRecordsUnderTheAppHash (decision 174): a validator set's app
// hash is its head manifest's hash until the chain writes an encrypted
// mempool or epoch record; from the first, it also covers the running
// digest of those writes, so a block that accepts no transaction but
// records DKG envelopes or fixes a batch changes it, two copies executing
// the same blocks agree, and a copy whose records differ answers another
// app hash at the block where its writes differ: one that fixed another
// batch at once, one whose recorded deal was tampered with at the block
// that decides the DKG. Info's app hash (Decided) is the decision's.
func TestSideRecordsUnderTheAppHash(t *testing.T) {
	f := newEpochFixture(t)
	for h := uint64(2); h <= 6; h++ {
		decide(t, f.in, h, nil)
	}
	a, b := cloneInstance(t, f.in, f.home)
	head, err := a.Head()
	if err != nil {
		t.Fatal(err)
	}
	if _, hash, err := a.Decided(); err != nil || hash != head.Hash() {
		t.Fatalf("before any side record the app hash is the head's: %x %v", hash, err)
	}
	st, err := a.Epochs()
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]*dkg.Party, 4)
	var deals [][]byte
	for i := range ps {
		if ps[i], err = dkg.NewParty(st.Session, f.ks[i]); err != nil {
			t.Fatal(err)
		}
		d, err := ps[i].Start()
		if err != nil {
			t.Fatal(err)
		}
		deals = append(deals, DKGTx(d.Encode()))
	}
	ha, hb := decideBoth(t, a, b, 7, deals...)
	if ha != hb || ha == head.Hash() {
		t.Fatalf("block 7 records four deals and accepts nothing: app hashes %x and %x, head %x", ha, hb, head.Hash())
	}
	if _, hash, err := a.Decided(); err != nil || hash != ha {
		t.Fatalf("Info's app hash %x %v, the decision's %x", hash, err, ha)
	}
	if ha, hb = decideBoth(t, a, b, 8); ha != hb {
		t.Fatal("an empty block: the copies differ")
	}
	if h, _, _ := a.Decided(); h != 8 {
		t.Fatalf("decided %d", h)
	}
	if _, hash, _ := a.Decided(); hash != ha {
		t.Fatal("a block without side writes changed the app hash")
	}

	// A batch fixed in a block that accepts nothing: b fixes another payload.
	move := f.mint(f.allow, f.allow, f.alice, "a", "1")
	other := f.mint(f.allow, f.allow, f.alice, "b", "1")
	pa, pb := encryptTo(t, f.pk, a.ID(), move), encryptTo(t, f.pk, a.ID(), other)
	da := decide(t, a, 9, nil, EncryptedTx(pa))
	db := decide(t, b, 9, nil, EncryptedTx(pb))
	if da.Sealed.Block != nil || db.Sealed.Block != nil || da.Results[0].Encrypted == nil || db.Results[0].Encrypted == nil {
		t.Fatalf("block 9: %+v %+v", da.Results[0], db.Results[0])
	}
	if da.AppHash == db.AppHash || da.AppHash == ha {
		t.Fatalf("another batch record, same app hash %x (before %x)", da.AppHash, ha)
	}

	// A tampered deal: c, a copy of a, loses keyholder 2's recorded deal.
	a2, c := cloneInstance(t, a, a.home)
	var cut []byte
	sid := st.Session.ID()
	err = c.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: decidedKey(decidedDKG, sid[:], []byte{byte(dkg.KindDeal)}, u32(2))})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			cut = it.Item().KeyCopy(nil)
		}
		if cut == nil {
			return badger.ErrKeyNotFound
		}
		return txn.Delete(cut)
	})
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(10); h <= 11; h++ {
		if x, y := decideBoth(t, a2, c, h); x != y {
			t.Fatalf("height %d: the tampered copy differs before it writes anything", h)
		}
	}
	x, y := decide(t, a2, 12, nil), decide(t, c, 12, nil)
	if x.Epoch == nil || y.Epoch == nil || bytes.Equal(x.Epoch.Encode(), y.Epoch.Encode()) {
		t.Fatalf("the records of height 12: %+v %+v", x.Epoch, y.Epoch)
	}
	if x.AppHash == y.AppHash {
		t.Fatal("a copy that decided another epoch record answers the same app hash")
	}
	if x.AppHash != certify.AppHashOver(headOf(t, a2), sideOf(t, a2)) {
		t.Fatal("the app hash is not certify.AppHashOver of the head and the side digest")
	}
}

func headOf(t *testing.T, in *Instance) [32]byte {
	t.Helper()
	b, err := in.Head()
	if err != nil {
		t.Fatal(err)
	}
	return b.Hash()
}

func sideOf(t *testing.T, in *Instance) [32]byte {
	t.Helper()
	var d [32]byte
	err := in.db.View(func(txn *badger.Txn) (err error) { d, err = sideDigest(txn); return err })
	if err != nil {
		t.Fatal(err)
	}
	return d
}
