package inputfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fractalvm/fractal/internal/inputfile/badfile"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReadUpToTheLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "12345")
	got, err := Read(p, 5)
	if err != nil || string(got) != "12345" {
		t.Fatalf("Read at the limit = %q, %v", got, err)
	}
	_, err = Read(p, 4)
	if !errors.Is(err, ErrTooLarge) || err.Error() != p+": too large: 5 bytes, the limit is 4" {
		t.Fatalf("Read over the limit: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	_, err = Read(missing, 5)
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != missing+": no such file or directory" {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestNamedPipeRefusedAtOnce: opening a FIFO for reading blocks until a
// writer comes. Read must refuse it without waiting.
func TestNamedPipeRefusedAtOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	badfile.Pipe(t, p)
	start := time.Now()
	_, err := Read(p, 1<<20)
	if waited := time.Since(start); waited >= badfile.Release {
		t.Fatalf("Read of a named pipe waited %v for a writer", waited)
	}
	if !errors.Is(err, ErrNotRegular) || err.Error() != p+": not a regular file (a named pipe)" {
		t.Fatalf("Read of a named pipe: %v", err)
	}
}

func TestDeviceAndFolderRefused(t *testing.T) {
	for path, what := range map[string]string{"/dev/zero": "a device", t.TempDir(): "a folder"} {
		_, err := Read(path, 1<<20)
		if !errors.Is(err, ErrNotRegular) || err.Error() != path+": not a regular file ("+what+")" {
			t.Errorf("Read(%s): %v", path, err)
		}
	}
}

// TestOversizeRefusedUnread: a sparse 64 GiB file is refused from its size
// alone; reading even its first limit+1 bytes would allocate them.
func TestOversizeRefusedUnread(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse")
	badfile.Sparse(t, p, 64<<30)
	const limit = 8 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Read(p, limit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read of a 64 GiB file: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > limit/8 {
		t.Fatalf("refusing the file allocated %d bytes: it was read", got)
	}
}

// TestGrownPastItsSize: a file that reports a size under the limit but
// holds more (as /proc files do, reporting 0) is still cut at limit+1.
func TestGrownPastItsSize(t *testing.T) {
	const p = "/proc/self/status"
	if st, err := os.Stat(p); err != nil || st.Size() != 0 {
		t.Skip("no /proc here")
	}
	_, err := Read(p, 10)
	if !errors.Is(err, ErrTooLarge) || err.Error() != p+": too large: more than 10 bytes" {
		t.Fatalf("Read of %s: %v", p, err)
	}
}

func TestReadInStaysInside(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "tx")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(top, "outside.lua"), "return 'outside'")
	write(t, filepath.Join(dir, "sub", "in.lua"), "return 'inside'")
	links := map[string]string{
		"out.lua":    filepath.Join(top, "outside.lua"), // absolute target outside
		"rel.lua":    "../outside.lua",                  // relative target outside
		"inside.lua": "sub/in.lua",                      // target inside: fine
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skipf("no symbolic links here: %v", err)
		}
	}
	for _, name := range []string{"sub/in.lua", "inside.lua", "sub/../sub/in.lua"} {
		if got, err := ReadIn(dir, name, 100); err != nil || string(got) != "return 'inside'" {
			t.Errorf("ReadIn(%q) = %q, %v", name, got, err)
		}
	}
	for _, name := range []string{"../outside.lua", "sub/../../outside.lua", "out.lua", "rel.lua", filepath.Join(top, "outside.lua")} {
		got, err := ReadIn(dir, name, 100)
		if !errors.Is(err, ErrOutside) || err.Error() != name+": resolves outside its folder" {
			t.Errorf("ReadIn(%q) = %q, %v; want a refusal", name, got, err)
		}
	}
}
