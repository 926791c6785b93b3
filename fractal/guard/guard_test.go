package guard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chain is a store's blocks: hash by height, heights 0..len-1; it holds
// no encrypted batch records or expiries.
type chain [][32]byte

func (c chain) Last(k Kind) (Block, bool, error) {
	if k != Blocks {
		return Block{}, false, nil
	}
	if len(c) == 0 {
		return Block{}, false, errors.New("empty store")
	}
	return Block{Height: uint64(len(c) - 1), Hash: c[len(c)-1]}, true, nil
}

func (c chain) HashAt(k Kind, h uint64) ([32]byte, bool, error) {
	if k != Blocks || h >= uint64(len(c)) {
		return [32]byte{}, false, nil
	}
	return c[h], true, nil
}

func hashOf(s string) [32]byte {
	var h [32]byte
	copy(h[:], s)
	return h
}

// chainOf makes a chain of blocks named by the letters of names.
func chainOf(names string) chain {
	var c chain
	for _, r := range names {
		c = append(c, hashOf(string(r)))
	}
	return c
}

var instance = hashOf("instance")

// newGuard is a guard file that has signed the blocks of c, one by one.
func newGuard(t *testing.T, c chain) *Guard {
	t.Helper()
	g := New(filepath.Join(t.TempDir(), "guard.json"), instance)
	for h, hash := range c {
		b := Block{Height: uint64(h), Hash: hash}
		if err := g.Begin(Blocks, b); err != nil {
			t.Fatal(err)
		}
		if err := g.Done(Blocks, b); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// reload reads g's file again.
func reload(t *testing.T, g *Guard) *Guard {
	t.Helper()
	l, err := Load(g.path, instance)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSignedBlocksAreRecorded(t *testing.T) {
	g := newGuard(t, chainOf("abc"))
	s, ok := reload(t, g).Signed(Blocks)
	if !ok || s != (Block{2, hashOf("c")}) {
		t.Fatalf("signed %v %v", s, ok)
	}
	if err := reload(t, g).Check(chainOf("abc")); err != nil {
		t.Fatal(err)
	}
}

// TestNoSecondBlockAtASignedHeight: the same block again is allowed (the
// same bytes), another one at a signed height or one past the next height
// is refused, and the file is left as it was.
func TestNoSecondBlockAtASignedHeight(t *testing.T) {
	g := newGuard(t, chainOf("abc"))
	before, _ := os.ReadFile(g.path)
	if err := g.Begin(Blocks, Block{2, hashOf("c")}); err != nil {
		t.Fatalf("same block again: %v", err)
	}
	for _, c := range []struct {
		b    Block
		want string
	}{
		{Block{2, hashOf("x")}, "refusing to sign block 2 (hash 7800000000000000…): this executor already signed up to block 2 (hash 6300000000000000…)"},
		{Block{1, hashOf("b")}, "refusing to sign block 1 (hash 6200000000000000…): this executor already signed up to block 2 (hash 6300000000000000…)"},
		{Block{4, hashOf("e")}, "refusing to sign block 4 (hash 6500000000000000…): the next block to sign is 3"},
	} {
		if err := g.Begin(Blocks, c.b); err == nil || err.Error() != c.want {
			t.Errorf("begin %v: %v, want %q", c.b, err, c.want)
		}
	}
	if after, _ := os.ReadFile(g.path); string(after) != string(before) {
		t.Fatalf("a refusal changed the file:\n%s", after)
	}
	if err := g.Done(Blocks, Block{3, hashOf("d")}); err == nil || !strings.Contains(err.Error(), "was not begun") {
		t.Fatalf("done without begin: %v", err)
	}
}

// TestCheckSettlesTheBlockBeingSigned covers the crash window: the guard
// file records a block as being signed, then the commit fails or the
// process dies. Open finds either the block stored (the commit happened:
// it is signed) or not (the signature never left the process: forgotten,
// and another block may be signed at that height).
func TestCheckSettlesTheBlockBeingSigned(t *testing.T) {
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprint("stored=", stored), func(t *testing.T) {
			g := newGuard(t, chainOf("ab"))
			c := Block{2, hashOf("c")}
			if err := g.Begin(Blocks, c); err != nil {
				t.Fatal(err)
			}
			// The process dies here: only the file remains.
			store := chainOf("ab")
			want := Block{1, hashOf("b")}
			if stored {
				store, want = chainOf("abc"), c
			}
			g = reload(t, g)
			if err := g.Check(store); err != nil {
				t.Fatal(err)
			}
			g = reload(t, g)
			if s, _ := g.Signed(Blocks); s != want || g.tracks[Blocks].signing != nil {
				t.Fatalf("settled to %v (signing %v), want %v", s, g.tracks[Blocks].signing, want)
			}
			if !stored {
				if err := g.Begin(Blocks, Block{2, hashOf("x")}); err != nil {
					t.Fatalf("another block 2 after the first was never stored: %v", err)
				}
			}
		})
	}
}

// TestCheckRefusesAStoreBehind: a store that lost signed blocks, or holds
// another block at the last signed height, is refused; one ahead of the
// guard (an older guard file) raises the guard.
func TestCheckRefusesAStoreBehind(t *testing.T) {
	g := newGuard(t, chainOf("abcd"))
	err := g.Check(chainOf("abc"))
	var behind *BehindError
	want := "the store is at height 2 but this executor signed height 3 (hash 6400000000000000…, " + g.path +
		"): committed blocks are missing; restore a backup taken at height 3 or later (docs/cli/backup.md)"
	if !errors.As(err, &behind) || err.Error() != want {
		t.Fatalf("store behind: %v\nwant %s", err, want)
	}
	err = g.Check(chainOf("abcx"))
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("the store's block 3 is %x but this executor signed block 3 as %x (%s): the store holds another history", hashOf("x"), hashOf("d"), g.path)) {
		t.Fatalf("another block 3: %v", err)
	}
	if err := g.Check(chainOf("abcxef")); err == nil || !strings.Contains(err.Error(), "holds another history") {
		t.Fatalf("a store ahead on another history: %v", err)
	}
	if err := g.Check(chainOf("abcdef")); err != nil {
		t.Fatal(err)
	}
	if s, _ := reload(t, g).Signed(Blocks); s != (Block{5, hashOf("f")}) {
		t.Fatalf("guard not raised to the store's head: %v", s)
	}
}

// records is a store holding blocks and, by batch number, encrypted batch
// records and expiries.
type records struct {
	chain
	batches, expiries map[uint64][32]byte
}

func (r records) of(k Kind) map[uint64][32]byte {
	return map[Kind]map[uint64][32]byte{Batches: r.batches, Expiries: r.expiries}[k]
}

func (r records) Last(k Kind) (Block, bool, error) {
	if k == Blocks {
		return r.chain.Last(k)
	}
	var last Block
	ok := false
	for n, h := range r.of(k) {
		if !ok || n > last.Height {
			last, ok = Block{n, h}, true
		}
	}
	return last, ok, nil
}

func (r records) HashAt(k Kind, n uint64) ([32]byte, bool, error) {
	if k == Blocks {
		return r.chain.HashAt(k, n)
	}
	h, ok := r.of(k)[n]
	return h, ok, nil
}

// TestBatchesAndExpiriesAreGuarded: encrypted batch records are signed one
// number after the other and expiries for ever later batches, never two
// different ones under one number; a store that lost one the executor
// signed does not pass the check.
func TestBatchesAndExpiriesAreGuarded(t *testing.T) {
	g := newGuard(t, chainOf("ab"))
	sign := func(k Kind, n uint64, name string) error {
		b := Block{n, hashOf(name)}
		if err := g.Begin(k, b); err != nil {
			return err
		}
		return g.Done(k, b)
	}
	for _, c := range []struct {
		k    Kind
		n    uint64
		name string
	}{{Batches, 1, "p"}, {Batches, 2, "q"}, {Expiries, 2, "q"}} {
		if err := sign(c.k, c.n, c.name); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		k    Kind
		b    Block
		want string
	}{
		{Batches, Block{2, hashOf("x")}, "refusing to sign encrypted batch 2 (hash 7800000000000000…): this executor already signed up to encrypted batch 2 (hash 7100000000000000…)"},
		{Batches, Block{4, hashOf("s")}, "refusing to sign encrypted batch 4 (hash 7300000000000000…): the next encrypted batch to sign is 3"},
		{Expiries, Block{1, hashOf("p")}, "refusing to sign expiry of encrypted batch 1 (hash 7000000000000000…): this executor already signed up to expiry of encrypted batch 2 (hash 7100000000000000…)"},
		{Expiries, Block{2, hashOf("x")}, "refusing to sign expiry of encrypted batch 2 (hash 7800000000000000…): this executor already signed up to expiry of encrypted batch 2 (hash 7100000000000000…)"},
	} {
		if err := g.Begin(c.k, c.b); err == nil || err.Error() != c.want {
			t.Errorf("begin %s %v: %v, want %q", c.k.noun(), c.b, err, c.want)
		}
	}
	if err := g.Begin(Expiries, Block{2, hashOf("q")}); err != nil {
		t.Fatalf("the same expiry again: %v", err)
	}
	if err := sign(Expiries, 5, "s"); err != nil {
		t.Fatalf("the expiry of a later batch: %v", err)
	}

	full := records{chainOf("ab"), map[uint64][32]byte{1: hashOf("p"), 2: hashOf("q")}, map[uint64][32]byte{2: hashOf("q"), 5: hashOf("s")}}
	if err := reload(t, g).Check(full); err != nil {
		t.Fatal(err)
	}
	lostBatch := records{full.chain, map[uint64][32]byte{1: hashOf("p")}, full.expiries}
	want := "the store ends at encrypted batch 1 but this executor signed encrypted batch 2 (hash 7100000000000000…, " + g.path + "): committed records are missing; restore a backup taken after it (docs/cli/backup.md)"
	var behind *BehindError
	if err := reload(t, g).Check(lostBatch); !errors.As(err, &behind) || err.Error() != want {
		t.Fatalf("store without batch 2: %v\nwant %s", err, want)
	}
	noExpiry := records{full.chain, full.batches, nil}
	want = "the store holds none but this executor signed expiry of encrypted batch 5 (hash 7300000000000000…, " + g.path + "): committed records are missing; restore a backup taken after it (docs/cli/backup.md)"
	if err := reload(t, g).Check(noExpiry); err == nil || err.Error() != want {
		t.Fatalf("store without the expiries: %v\nwant %s", err, want)
	}
	other := records{full.chain, map[uint64][32]byte{1: hashOf("p"), 2: hashOf("x")}, full.expiries}
	if err := reload(t, g).Check(other); err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("the store's encrypted batch 2 is %x but this executor signed encrypted batch 2 as %x", hashOf("x"), hashOf("q"))) {
		t.Fatalf("another batch 2: %v", err)
	}
	// A guard that has signed no batch (made before guards covered them)
	// is raised to the store's.
	fresh := newGuard(t, chainOf("ab"))
	if err := fresh.Check(full); err != nil {
		t.Fatal(err)
	}
	if s, ok := reload(t, fresh).Signed(Batches); !ok || s != (Block{2, hashOf("q")}) {
		t.Fatalf("batches raised to %v %v", s, ok)
	}
}

func TestCreateAndLoadRefusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "guard.json")
	if _, err := Create(path, instance, Block{3, hashOf("d")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(path, instance, Block{3, hashOf("d")}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: %v", err)
	}
	if _, err := Load(path, hashOf("other")); err == nil || !strings.Contains(err.Error(), "is about instance") {
		t.Fatalf("load for another instance: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.json"), instance); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	good, _ := os.ReadFile(path)
	h := strings.Repeat("ab", 32)
	id := fmt.Sprintf("%x", instance)
	for _, c := range []struct{ name, text, want string }{
		{"unknown field", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"` + h + `"},"x":1}`, `unknown field "x"`},
		{"trailing data", string(good) + "{}", "data after the JSON object"},
		{"version", `{"version":2,"instance":"` + id + `","signed":{"height":1,"hash":"` + h + `"}}`, "version 2, this program reads 1"},
		{"upper-case hash", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"` + strings.ToUpper(h) + `"}}`, "is not lower-case hex"},
		{"short hash", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"ab"}}`, "is not 64 hex digits"},
		{"nothing", `{"version":1,"instance":"` + id + `"}`, "records no block"},
		{"signing a gap", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"` + h + `"},"signing":{"height":3,"hash":"` + h + `"}}`, "signing block 3 after block 1"},
		{"signing first", `{"version":1,"instance":"` + id + `","signing":{"height":2,"hash":"` + h + `"}}`, "signing block 2 with nothing signed before"},
		{"batch signing a gap", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"` + h + `"},"batches":{"signed":{"height":1,"hash":"` + h + `"},"signing":{"height":3,"hash":"` + h + `"}}}`, "signing encrypted batch 3 after encrypted batch 1"},
		{"batch signing first", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"` + h + `"},"batches":{"signing":{"height":0,"hash":"` + h + `"}}}`, "signing encrypted batch 0 with nothing signed before"},
		{"expiry signing back", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"` + h + `"},"expiries":{"signed":{"height":4,"hash":"` + h + `"},"signing":{"height":4,"hash":"` + h + `"}}}`, "signing expiry of encrypted batch 4 after expiry of encrypted batch 4"},
		{"empty track", `{"version":1,"instance":"` + id + `","signed":{"height":1,"hash":"` + h + `"},"expiries":{}}`, "expiries track records nothing"},
		{"negative height", `{"version":1,"instance":"` + id + `","signed":{"height":-1,"hash":"` + h + `"}}`, "cannot unmarshal number -1"},
		{"too large", strings.Repeat(" ", maxFileBytes+1), "is larger than 4096 bytes"},
	} {
		if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path, instance); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	os.Remove(path)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, instance); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Fatalf("a folder: %v", err)
	}
}

// FuzzDecode: any accepted guard file encodes back to a file that decodes
// to the same record.
func FuzzDecode(f *testing.F) {
	h := strings.Repeat("0a", 32)
	f.Add([]byte(`{"version":1,"instance":"` + h + `","signed":{"height":4,"hash":"` + h + `"},"signing":{"height":5,"hash":"` + h + `"}}`))
	f.Add([]byte(`{"version":1,"instance":"` + h + `","signing":{"height":0,"hash":"` + h + `"}}`))
	f.Add([]byte(`{"version":1,"instance":"` + h + `","signed":{"height":4,"hash":"` + h + `"},"batches":{"signed":{"height":2,"hash":"` + h + `"},"signing":{"height":3,"hash":"` + h + `"}},"expiries":{"signed":{"height":1,"hash":"` + h + `"}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		g, err := decode(raw)
		if err != nil {
			return
		}
		g.path = filepath.Join(t.TempDir(), "guard.json")
		if err := g.write(); err != nil {
			t.Fatal(err)
		}
		back, err := Load(g.path, g.instance)
		if err != nil {
			t.Fatal(err)
		}
		if tracksText(back) != tracksText(g) {
			t.Fatalf("%s became %s", tracksText(g), tracksText(back))
		}
	})
}

// BenchmarkBeginDone is what the guard adds to a seal: two synced writes
// of the guard file.
func BenchmarkBeginDone(b *testing.B) {
	g := New(filepath.Join(b.TempDir(), "guard.json"), instance)
	for i := 0; i < b.N; i++ {
		blk := Block{Height: uint64(i), Hash: hashOf(fmt.Sprint(i))}
		if err := g.Begin(Blocks, blk); err != nil {
			b.Fatal(err)
		}
		if err := g.Done(Blocks, blk); err != nil {
			b.Fatal(err)
		}
	}
}

// tracksText shows what g records, kind by kind.
func tracksText(g *Guard) string {
	show := func(b *Block) string {
		if b == nil {
			return "-"
		}
		return b.String()
	}
	var out []string
	for k, t := range g.tracks {
		out = append(out, fmt.Sprintf("%s: signed %s signing %s", Kind(k).noun(), show(t.signed), show(t.signing)))
	}
	return strings.Join(out, "; ")
}
