package fractal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fractalvm/fractal/notes"
)

// flipFullEnv, when set, makes TestDamagedStoreFlips flip every byte of
// every file (make flip-full); by default it flips a spread of positions.
const flipFullEnv = "FRACTAL_FLIP_FULL"

// storedFile is one file of an instance home, read without its holes:
// badger's logs are large sparse files of which only the start is written.
type storedFile struct {
	rel  string // path inside the home
	data []byte // contents up to the last non-zero byte
	size int64  // full size; the bytes past data are zero
}

// snapshotHome reads every file under home.
func snapshotHome(t testing.TB, home string) []storedFile {
	t.Helper()
	var files []storedFile
	err := filepath.WalkDir(home, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(home, path)
		data, size, err := readSparse(path)
		files = append(files, storedFile{rel: rel, data: data, size: size})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files
}

// readSparse reads the data extents of a file (skipping its holes) and
// returns its contents up to the last non-zero byte, and its size.
func readSparse(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	var out []byte
	for off := int64(0); off < st.Size(); {
		start, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		end, err := f.Seek(start, unix.SEEK_HOLE)
		if err != nil {
			return nil, 0, err
		}
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return nil, 0, err
		}
		if n := int64(len(out)); n < start {
			out = append(out, make([]byte, start-n)...)
		}
		out = append(out, buf...)
		off = end
	}
	return bytes.TrimRight(out, "\x00"), st.Size(), nil
}

// materialize writes files into home, which it empties first; at, when
// not negative, is a position in files[which] whose byte is flipped.
func materialize(t testing.TB, home string, files []storedFile, which int, at int64) {
	t.Helper()
	if err := os.RemoveAll(home); err != nil {
		t.Fatal(err)
	}
	for i, sf := range files {
		path := filepath.Join(home, sf.rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, sf.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, sf.size); err != nil {
			t.Fatal(err)
		}
		if i == which {
			flipByte(t, path, sf, at)
		}
	}
}

// flipByte flips one bit of the byte at position at of a file written
// from sf.
func flipByte(t testing.TB, path string, sf storedFile, at int64) {
	t.Helper()
	b := byte(0)
	if at < int64(len(sf.data)) {
		b = sf.data[at]
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{b ^ 0x01}, at); err != nil {
		t.Fatal(err)
	}
}

// crashedThreeBlocks returns the files of an instance home as a kill
// leaves them: blocks 1 and 2 sealed by processes that closed the store
// (so they live in tables), block 3 sealed and the store not closed (so it
// lives only in the memtable's log), with the guard recording block 3.
func crashedThreeBlocks(t testing.TB) []storedFile {
	t.Helper()
	f := newFixture(t, DefaultConfig())
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	for i, kv := range [][]string{{"a", "1"}, {"b", "2"}, {"c", "3"}} {
		in, err := Open(f.home)
		if err != nil {
			t.Fatal(err)
		}
		f.in = in
		if i == 2 {
			f.submit(t, f.move(f.allow, f.allow, f.alice, "a", "d", "4"))
		}
		f.submit(t, f.mint(f.allow, f.allow, f.alice, kv...))
		f.seal(t)
		if i == 2 {
			break // left open: the snapshot below is what a kill leaves
		}
		if err := in.Close(); err != nil {
			t.Fatal(err)
		}
	}
	files := snapshotHome(t, f.home)
	if err := f.in.Close(); err != nil {
		t.Fatal(err)
	}
	return files
}

// userView is what open, verify and notes show of an instance.
type userView struct {
	report string
	notes  string
	dump   string
}

// openVerifyNotes opens the instance in home, verifies it and lists its
// notes, as the CLI verbs open, verify and notes do. A panic is returned
// as an error starting with "PANIC".
func openVerifyNotes(t testing.TB, home string) (v userView, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("PANIC: %v\n%s", r, debug.Stack())
		}
	}()
	in, err := Open(home)
	if err != nil {
		return v, err
	}
	defer in.Close()
	rep, err := in.Verify(context.Background(), nil)
	if err != nil {
		return v, err
	}
	list, err := in.Notes(notes.AnyPattern())
	if err != nil {
		return v, err
	}
	v.report = fmt.Sprintf("%+v", *rep)
	for _, n := range list {
		v.notes += fmt.Sprintf("%x %s\n", n.ID(), n.StateKey())
	}
	v.dump = dumpStore(t, in)
	return v, nil
}

// flipPositions returns the positions of f to flip: every byte when full,
// else a spread of at most about 40 in its written part; and a few in the
// zeros after it (every byte of the first 4 KiB and one per MiB after,
// when full). Badger reads a log only up to the first zero entry, so the
// zeros further on are never read.
func flipPositions(f storedFile, full bool) []int64 {
	var out []int64
	n := int64(len(f.data))
	step := int64(1)
	if !full && n > 40 {
		step = n / 40
	}
	for at := int64(0); at < n; at += step {
		out = append(out, at)
	}
	if n > 0 && out[len(out)-1] != n-1 {
		out = append(out, n-1)
	}
	tail := f.size - n
	switch {
	case tail <= 0:
	case full:
		for at := n; at < f.size && at < n+4096; at++ {
			out = append(out, at)
		}
		for at := n + 4096; at < f.size; at += 1 << 20 {
			out = append(out, at)
		}
	default:
		out = append(out, n, n+tail/2, f.size-1)
	}
	return out
}

// TestDamagedStoreFlips flips one byte at a time in every file of a
// three-block instance home left by a kill (the MANIFEST, every table,
// value log and memtable log, KEYREGISTRY, DISCARD, config.json,
// guard.json, executor.key) and then opens, verifies and lists the notes,
// as the CLI verbs do. No flip may panic. Each must either be refused with
// one line naming the damaged file (or, for a damaged log that loses the
// last block, the guard's "committed blocks are missing"), or change
// nothing the user sees: the same verify report, notes and store contents
// as the undamaged home. A flip that silently rolled the chain back (the
// MANIFEST case of issue 11) fails. FRACTAL_FLIP_FULL=1 (make flip-full)
// flips every byte.
func TestDamagedStoreFlips(t *testing.T) {
	full := os.Getenv(flipFullEnv) != ""
	files := crashedThreeBlocks(t)
	home := filepath.Join(t.TempDir(), "home")
	materialize(t, home, files, -1, -1)
	want, err := openVerifyNotes(t, home)
	if err != nil {
		t.Fatalf("undamaged home: %v", err)
	}
	if !strings.Contains(want.report, "Height:3 ") {
		t.Fatalf("undamaged home: %s", want.report)
	}
	var positions, refused, unchanged int
	kinds := map[string]bool{}
	for i, sf := range files {
		kind := strings.TrimLeft(filepath.Ext(sf.rel), ".")
		if kind == "" || kind == "json" || kind == "key" {
			kind = filepath.Base(sf.rel)
		}
		kinds[kind] = true
		t0 := time.Now()
		ps := flipPositions(sf, full)
		for _, at := range ps {
			positions++
			materialize(t, home, files, i, at)
			got, err := openVerifyNotes(t, home)
			switch {
			case err != nil && strings.HasPrefix(err.Error(), "PANIC"):
				t.Fatalf("%s byte %d: %v", sf.rel, at, err)
			case err != nil:
				msg := err.Error()
				if strings.Contains(msg, "\n") {
					t.Fatalf("%s byte %d: error over several lines: %q", sf.rel, at, msg)
				}
				if !strings.Contains(msg, filepath.Base(sf.rel)) && !strings.Contains(msg, "committed blocks are missing") {
					t.Fatalf("%s byte %d: the error does not name the file: %s", sf.rel, at, msg)
				}
				refused++
			case got != want:
				t.Fatalf("%s byte %d: accepted, but the user sees another instance:\nreport %s\nwant   %s\nnotes %q\nwant  %q",
					sf.rel, at, got.report, want.report, got.notes, want.notes)
			default:
				unchanged++
			}
		}
		t.Logf("%s: %d positions in %v", sf.rel, len(ps), time.Since(t0))
	}
	for _, k := range []string{"MANIFEST", "sst", "vlog", "mem", "KEYREGISTRY", "DISCARD", "config.json", "guard.json", "executor.key"} {
		if !kinds[k] {
			t.Errorf("the home has no %s file to damage", k)
		}
	}
	t.Logf("%d files, %d positions: %d refused naming the damage, %d changed nothing, 0 panics, 0 silent rollbacks (full=%v)",
		len(files), positions, refused, unchanged, full)
}
