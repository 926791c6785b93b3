package fractal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/keys"
)

// backupTo writes a backup of in to a new file and returns its path.
func backupTo(t testing.TB, in *Instance, withKey bool) (string, *BackupInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := in.Backup(&buf, withKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, info
}

// TestBackupRestoresTheSameInstance: a restored backup holds exactly the
// store it was taken from (whole-store dump), verifies, and its guard
// starts at the backup's head.
func TestBackupRestoresTheSameInstance(t *testing.T) {
	f := chainFixture(t)
	f.submit(t, f.mint(f.allow, f.allow, f.alice, "queued", "1")) // the mempool is part of it
	head, _ := f.in.Head()
	path, info := backupTo(t, f.in, false)
	if info.Head != (guard.Block{Height: 3, Hash: head.Hash()}) || info.Instance != f.in.ID() || info.WithKey {
		t.Fatalf("info %+v", info)
	}
	home := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(path, home, nil, ""); err == nil || !strings.Contains(err.Error(), "the backup holds no executor key") {
		t.Fatalf("restore without a key: %v", err)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %s: %v", home, err)
	}
	got, err := Restore(path, home, executorKey(t, f.in), "")
	if err != nil || *got != *info {
		t.Fatalf("restore: %+v %v", got, err)
	}
	in, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if dumpStore(t, in) != dumpStore(t, f.in) {
		t.Fatal("the restored store differs from the original")
	}
	wantVerify(t, in, "")
	if s, _ := in.guard.Signed(guard.Blocks); s != info.Head {
		t.Fatalf("guard %v", s)
	}
	if _, err := Restore(path, home, executorKey(t, f.in), ""); err == nil || !strings.Contains(err.Error(), "already holds an instance (config.json exists)") {
		t.Fatalf("restore over an instance: %v", err)
	}
}

// TestBackupOfARunningInstance takes backups while another goroutine
// submits and seals: each restores to a consistent instance whose head is
// the one its header names.
func TestBackupOfARunningInstance(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	var wg sync.WaitGroup
	var sealErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 12 && sealErr == nil; i++ {
			if _, sealErr = f.in.Submit(f.mint(f.allow, f.allow, f.alice, fmt.Sprint("k", i), "1")); sealErr == nil {
				_, sealErr = f.in.Seal(context.Background())
			}
		}
	}()
	var paths []string
	for i := 0; i < 4; i++ {
		path, _ := backupTo(t, f.in, true)
		paths = append(paths, path)
	}
	wg.Wait()
	if sealErr != nil {
		t.Fatal(sealErr)
	}
	for i, path := range paths {
		home := filepath.Join(t.TempDir(), "restored")
		info, err := Restore(path, home, nil, "")
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		in, err := Open(home)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := in.Verify(context.Background(), nil)
		in.Close()
		if err != nil || rep.Height != info.Head.Height || rep.Notes != int(info.Head.Height) {
			t.Fatalf("backup %d at %v: %+v %v", i, info.Head, rep, err)
		}
	}
}

// TestRestoreKeepsTheOldGuard: restoring with the guard of the instance
// being replaced refuses a backup older than the last block it signed,
// and accepts one that holds it.
func TestRestoreKeepsTheOldGuard(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	f.sealMint(t, "a")
	old, _ := backupTo(t, f.in, true)
	f.sealMint(t, "b")
	newer, _ := backupTo(t, f.in, true)
	b3 := f.sealMint(t, "c")
	g := filepath.Join(f.home, guardFile)
	home := filepath.Join(t.TempDir(), "restored")
	for _, path := range []string{old, newer} {
		if _, err := Restore(path, home, nil, g); err == nil || !strings.Contains(err.Error(), "but this executor signed height 3") {
			t.Fatalf("an older backup: %v", err)
		}
		if _, err := os.Stat(home); !os.IsNotExist(err) {
			t.Fatalf("a refused restore left %s", home)
		}
	}
	latest, _ := backupTo(t, f.in, true)
	if _, err := Restore(latest, home, nil, g); err != nil {
		t.Fatal(err)
	}
	in, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if s, _ := in.guard.Signed(guard.Blocks); s.Hash != b3.Hash() {
		t.Fatalf("guard %v", s)
	}
}

// TestRestoreRefusesDamagedBackups: a flipped byte anywhere (a spread of
// positions, header and stream) and a cut are caught by the checksum before
// anything is written.
func TestRestoreRefusesDamagedBackups(t *testing.T) {
	f := chainFixture(t)
	path, _ := backupTo(t, f.in, true)
	good, _ := os.ReadFile(path)
	home := filepath.Join(t.TempDir(), "restored")
	for at := 0; at < len(good); at += len(good)/100 + 1 {
		bad := bytes.Clone(good)
		bad[at] ^= 0x01
		os.WriteFile(path, bad, 0o600)
		if _, err := Restore(path, home, nil, ""); err == nil || !strings.Contains(err.Error(), "its SHA-256 does not match") {
			t.Fatalf("byte %d: %v", at, err)
		}
	}
	for _, n := range []int{0, 10, len(good) / 2, len(good) - 1} {
		os.WriteFile(path, good[:n], 0o600)
		if _, err := Restore(path, home, nil, ""); err == nil {
			t.Fatalf("cut at %d: restored", n)
		}
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatal("a refused restore left the home folder")
	}
}

func FuzzDecodeBackupHeader(f *testing.F) {
	cfg, _ := encodeConfig(DefaultConfig())
	f.Add((&BackupInfo{}).header(cfg, nil))
	f.Add((&BackupInfo{}).header(cfg, make([]byte, 32)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, n, err := decodeBackupHeader(raw)
		if err != nil {
			return
		}
		var key []byte
		if b.key != nil {
			key = b.key[:]
		}
		cfg, _ := encodeConfig(b.cfg)
		// The config inside may be any JSON of it (its spacing is not
		// canonical), so the header written again may be longer than
		// raw's; it must decode to the same, to its end.
		header := b.info.header(cfg, key)
		again, m, err := decodeBackupHeader(header)
		if err != nil || m != len(header) || n > len(raw) || again.info != b.info || again.cfg != b.cfg {
			t.Fatalf("header did not round-trip: %v", err)
		}
	})
}

// executorKey is the instance's executor key, read from its key file.
func executorKey(t testing.TB, in *Instance) *keys.PrivateKey {
	t.Helper()
	k, err := keys.LoadKeyFile(filepath.Join(in.home, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	return &k
}
