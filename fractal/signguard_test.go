package fractal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
)

// sealMint mints one note under key k and seals it into a block.
func (f *fixture) sealMint(t testing.TB, k string) *chain.Block {
	t.Helper()
	f.submit(t, f.mint(f.allow, f.allow, f.alice, k, "1"))
	return f.seal(t).Block
}

// copyDB copies the closed store of the instance in home to dst.
func copyDB(t testing.TB, home, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(home, dbDir))); err != nil {
		t.Fatal(err)
	}
}

// TestStoreBehindItsGuardDoesNotOpen is issue 11's equivocation: the store
// loses block 3 (here it is replaced by its own copy from height 2). Before
// the guard it opened at height 2 and the next seal signed a second,
// different block 3. Now it does not open, and says what to do.
func TestStoreBehindItsGuardDoesNotOpen(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	f.sealMint(t, "a")
	f.sealMint(t, "b")
	f.in.Close()
	copyDB(t, f.home, filepath.Join(f.home, "db-at-2"))
	in, err := Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	f.in = in
	b3 := f.sealMint(t, "c")
	f.in.Close()
	os.Rename(filepath.Join(f.home, dbDir), filepath.Join(f.home, "db-at-3"))
	os.Rename(filepath.Join(f.home, "db-at-2"), filepath.Join(f.home, dbDir))

	_, err = Open(f.home)
	h := b3.Hash()
	want := fmt.Sprintf("fractal: open %s: the store is at height 2 but this executor signed height 3 (hash %x…, %s): committed blocks are missing; restore a backup taken at height 3 or later (docs/cli/backup.md)",
		f.home, h[:8], filepath.Join(f.home, guardFile))
	var behind *guard.BehindError
	if !errors.As(err, &behind) || err.Error() != want {
		t.Fatalf("open: %v\nwant %s", err, want)
	}
	// The store that holds block 3 opens again.
	os.Rename(filepath.Join(f.home, dbDir), filepath.Join(f.home, "db-at-2"))
	os.Rename(filepath.Join(f.home, "db-at-3"), filepath.Join(f.home, dbDir))
	in, err = Open(f.home)
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
}

// TestOpenSettlesTheGuardAfterACrash: the guard records a block as being
// signed before the key signs. After a crash the store either holds it
// (recorded as signed at open) or not (forgotten: its signature never left
// the process, and the next seal may sign another block at that height).
// An instance without a guard gets one from its head.
func TestOpenSettlesTheGuardAfterACrash(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	f.sealMint(t, "a")
	b2 := f.sealMint(t, "b")
	f.in.Close()
	path := filepath.Join(f.home, guardFile)
	writeGuard := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b1, h2 := mustBlock(t, f.home, 1).Hash(), b2.Hash()
	record := func(signed [32]byte, h uint64, signing [32]byte) string {
		return fmt.Sprintf(`{"version":1,"instance":"%x","signed":{"height":%d,"hash":"%x"},"signing":{"height":%d,"hash":"%x"}}`,
			f.in.ID(), h-1, signed, h, signing)
	}
	settled := fmt.Sprintf(`"signed": {
    "height": 2,
    "hash": "%x"
  }
}`, h2)
	for name, text := range map[string]string{
		"block 2 stored, not yet recorded as signed": record(b1, 2, h2),
		"a block 3 begun, never stored":              record(h2, 3, [32]byte{7}),
	} {
		writeGuard(text)
		f.reopen(t)
		f.in.Close()
		if got, _ := os.ReadFile(path); !strings.HasSuffix(string(got), settled+"\n") {
			t.Fatalf("%s: guard after open:\n%s", name, got)
		}
	}
	os.Remove(path)
	f.reopen(t)
	if got, _ := os.ReadFile(path); !strings.HasSuffix(string(got), settled+"\n") {
		t.Fatalf("guard created at open:\n%s", got)
	}
	if b := f.sealMint(t, "c"); b.Height != 3 {
		t.Fatalf("sealed %d", b.Height)
	}
}

func mustBlock(t testing.TB, home string, h uint64) *chain.Block {
	t.Helper()
	in, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	b, err := in.Block(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealRefusesARivalOfAnImportedManifest: another copy of the instance
// signed a block 4; this copy, at height 3, must not sign a different
// block 4. The refused seal changes nothing.
func TestSealRefusesARivalOfAnImportedManifest(t *testing.T) {
	f := chainFixture(t)
	head, _ := f.in.Head()
	theirs := &chain.Block{Instance: f.in.ID(), Height: 4, Prev: head.Hash(), TxsHash: chain.TxsHash(nil), StateRoot: head.StateRoot}
	if err := chain.SignBlock(context.Background(), theirs, f.in.signer); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.ImportManifests(chain.EncodeManifests([]*chain.Block{theirs})); err != nil {
		t.Fatal(err)
	}
	f.submit(t, f.mint(f.allow, f.allow, f.alice, "z", "1"))
	before := dumpStore(t, f.in)
	guardBefore, _ := os.ReadFile(filepath.Join(f.home, guardFile))
	_, err := f.in.Seal(context.Background())
	th := theirs.Hash()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(": a manifest imported from another copy shows this executor signed block 4 as %x…", th[:8])) ||
		!strings.HasPrefix(err.Error(), "fractal: seal: refusing to sign block 4 (hash ") {
		t.Fatalf("seal: %v", err)
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("the refused seal changed the store")
	}
	if after, _ := os.ReadFile(filepath.Join(f.home, guardFile)); string(after) != string(guardBefore) {
		t.Fatalf("the refused seal changed the guard:\n%s", after)
	}
}

// TestVerifyChecksTheChainReachesWhatLeft: verify fails on a chain shorter
// than the last block the guard records as signed, the last block
// exported in a manifest file, or a manifest imported from another copy,
// and on a chain holding another block at such a height.
func TestVerifyChecksTheChainReachesWhatLeft(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	f.sealMint(t, "a")
	f.sealMint(t, "b")
	f.in.Close()
	// A second copy of the instance, taken at height 2.
	copyHome := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyHome, os.DirFS(f.home)); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	b3 := f.sealMint(t, "c")
	h3 := b3.Hash()
	file, n, err := f.in.ExportManifests()
	if err != nil || n != 4 {
		t.Fatalf("export: %d %v", n, err)
	}
	wantVerify(t, f.in, "")

	other, err := Open(copyHome)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	wantVerify(t, other, "")
	if _, err := other.ImportManifests(file); err != nil {
		t.Fatal(err)
	}
	wantVerify(t, other, fmt.Sprintf("verify: manifest %x: another copy's manifest, imported, holds block 3 (hash %x…) but the chain ends at block 2: committed blocks are missing",
		importedKey(3, h3), h3[:8]))
	storeSet(t, other, importedKey(3, h3), nil)
	wantVerify(t, other, "")

	// The record of an export reaching block 3, on the copy at 2.
	storeSet(t, other, metaExported, append(u64(3), h3[:]...))
	wantVerify(t, other, fmt.Sprintf("verify: manifest exported: a manifest file exported block 3 (hash %x…) but the chain ends at block 2: committed blocks are missing", h3[:8]))
	b2 := mustHead(t, other).Hash()
	storeSet(t, other, metaExported, append(u64(2), 9))
	wantVerify(t, other, "verify: store exported: record has 9 bytes")
	storeSet(t, other, metaExported, append(u64(2), make([]byte, 32)...))
	wantVerify(t, other, fmt.Sprintf("verify: manifest exported: a manifest file exported block 2 as %x but the chain's block 2 is %x", [32]byte{}, b2))
	storeSet(t, other, metaExported, nil)

	// A guard recording block 3 (Open would have refused this store; here
	// the guard is swapped in after it).
	g, err := guard.Create(filepath.Join(t.TempDir(), "guard.json"), other.ID(), guard.Block{Height: 3, Hash: h3})
	if err != nil {
		t.Fatal(err)
	}
	other.guard = g
	wantVerify(t, other, fmt.Sprintf("verify: guard %s: this executor signed block 3 (hash %x…) but the chain ends at block 2: committed blocks are missing", g.Path(), h3[:8]))
}

func mustHead(t testing.TB, in *Instance) *chain.Block {
	t.Helper()
	b, err := in.Head()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStoreWithoutItsSignedBatchDoesNotOpen: the guard covers encrypted
// batch records and expiries as it covers blocks (decision 102). A store
// that lost the batch record the executor signed (here it is replaced by
// its own copy from before) does not open, since the executor could
// otherwise fix another order for batch 1 after keyholders saw the first;
// nor does one that lost the batch's expiry.
func TestStoreWithoutItsSignedBatchDoesNotOpen(t *testing.T) {
	f := newEncFixture(t, 3, 2, false)
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "coin", "1"))
	f.encrypt(t, f.move(f.allow, f.allow, f.alice, "coin", "sealed", "1"))
	f.in.Close()
	copyDB(t, f.home, filepath.Join(f.home, "db-queued"))
	f.reopen(t)
	s := f.seal(t)
	wantState(t, s, BatchFixed, "[]")
	batch := s.Encrypted.Batch.Hash()
	f.in.Close()
	copyDB(t, f.home, filepath.Join(f.home, "db-fixed"))
	f.reopen(t)
	if _, err := f.in.ExpireEncrypted(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.in.Close()
	path := filepath.Join(f.home, guardFile)
	for _, c := range []struct{ db, want string }{
		{"db-queued", fmt.Sprintf("the store holds none but this executor signed encrypted batch 1 (hash %x…, %s): committed records are missing", batch[:8], path)},
		{"db-fixed", fmt.Sprintf("the store holds none but this executor signed expiry of encrypted batch 1 (hash %x…, %s): committed records are missing", batch[:8], path)},
	} {
		os.Rename(filepath.Join(f.home, dbDir), filepath.Join(f.home, "db-now"))
		os.Rename(filepath.Join(f.home, c.db), filepath.Join(f.home, dbDir))
		_, err := Open(f.home)
		var behind *guard.BehindError
		if !errors.As(err, &behind) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("open the store %s: %v\nwant %s", c.db, err, c.want)
		}
		os.Rename(filepath.Join(f.home, dbDir), filepath.Join(f.home, c.db))
		os.Rename(filepath.Join(f.home, "db-now"), filepath.Join(f.home, dbDir))
	}
	f.reopen(t)
	wantVerify(t, f.in, "")
}
