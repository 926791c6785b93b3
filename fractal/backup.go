package fractal

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
)

// A backup file (docs/formats/instance.md, decision 098): a header naming
// the instance and its head block, with config.json and, only when asked
// for, the executor's private key; then badger's own backup stream of the
// whole store; then the SHA-256 of everything before it.
const (
	backupMagic   = "fractal backup\n"
	backupVersion = 1
	// maxBackupConfig bounds config.json inside a backup.
	maxBackupConfig = 64 << 10
)

// BackupInfo describes a backup: the instance and the head block it holds.
type BackupInfo struct {
	Instance [32]byte
	Head     guard.Block
	WithKey  bool // the backup holds the executor's private key
}

func (b *BackupInfo) header(cfg, key []byte) []byte {
	w := enc.NewWriter(256 + len(cfg))
	w.Fixed([]byte(backupMagic))
	w.U8(backupVersion)
	w.Fixed(b.Instance[:])
	w.U64(b.Head.Height)
	w.Fixed(b.Head.Hash[:])
	w.Var(cfg)
	w.Var(key)
	return w.Bytes()
}

// Backup writes a backup of the instance to w: a consistent copy, taken
// while the instance stays open; submissions, seals and deployments wait
// until it is done, reads do not. The executor's private key is included
// only when withKey is set.
func (in *Instance) Backup(w io.Writer, withKey bool) (*BackupInfo, error) {
	in.lock()
	defer in.mu.Unlock()
	info := &BackupInfo{Instance: in.id, WithKey: withKey}
	err := in.db.View(func(txn *badger.Txn) (err error) {
		info.Head, _, err = txnChain{in, txn}.Last(guard.Blocks)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: backup: %w", err)
	}
	cfg, err := encodeConfig(in.cfg)
	if err != nil {
		return nil, fmt.Errorf("fractal: backup: %w", err)
	}
	var key []byte
	if withKey {
		ks, ok := in.signer.(*keys.KeySigner)
		if !ok {
			return nil, errors.New("fractal: backup: the executor key is not held by this instance (it signs through another signer)")
		}
		k := ks.Key()
		key = k[:]
	}
	sum := sha256.New()
	out := io.MultiWriter(w, sum)
	if _, err := out.Write(info.header(cfg, key)); err != nil {
		return nil, fmt.Errorf("fractal: backup: %w", err)
	}
	if _, err := in.db.Backup(out, 0); err != nil {
		return nil, fmt.Errorf("fractal: backup: %w", err)
	}
	if _, err := w.Write(sum.Sum(nil)); err != nil {
		return nil, fmt.Errorf("fractal: backup: %w", err)
	}
	return info, nil
}

// backupFile is a backup file whose checksum has been verified.
type backupFile struct {
	info   BackupInfo
	cfg    Config
	key    *keys.PrivateKey
	stream *io.SectionReader // badger's backup stream
}

// readBackup checks the file's SHA-256 and parses its header.
func readBackup(f *os.File) (*backupFile, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	size := st.Size()
	if size < int64(len(backupMagic))+32 {
		return nil, errors.New("not a fractal backup (too short)")
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(f, 0, size-32)); err != nil {
		return nil, err
	}
	var want [32]byte
	if _, err := f.ReadAt(want[:], size-32); err != nil {
		return nil, err
	}
	if !bytes.Equal(sum.Sum(nil), want[:]) {
		return nil, errors.New("the file is damaged or incomplete (its SHA-256 does not match)")
	}
	raw := make([]byte, min(int64(maxBackupHeader), size-32))
	if _, err := f.ReadAt(raw, 0); err != nil {
		return nil, err
	}
	b, n, err := decodeBackupHeader(raw)
	if err != nil {
		return nil, err
	}
	b.stream = io.NewSectionReader(f, int64(n), size-32-int64(n))
	return b, nil
}

// maxBackupHeader bounds a backup's header: magic, version, instance,
// head height and hash, config and key with their lengths.
const maxBackupHeader = len(backupMagic) + 1 + 32 + 8 + 32 + 4 + maxBackupConfig + 4 + keys.PrivateKeySize

// decodeBackupHeader parses the header at the start of raw and returns it
// with its length; what follows it is badger's stream.
func decodeBackupHeader(raw []byte) (*backupFile, int, error) {
	r := enc.NewReader(raw)
	if string(r.Fixed(len(backupMagic))) != backupMagic {
		return nil, 0, errors.New("not a fractal backup")
	}
	if v := r.U8(); r.Err() == nil && v != backupVersion {
		return nil, 0, fmt.Errorf("backup version %d, this program reads %d", v, backupVersion)
	}
	b := &backupFile{}
	r.Into(b.info.Instance[:])
	b.info.Head.Height = r.U64()
	r.Into(b.info.Head.Hash[:])
	cfg := r.Var(maxBackupConfig, "config")
	key := r.Var(keys.PrivateKeySize, "key")
	if err := r.Err(); err != nil {
		return nil, 0, err
	}
	if len(key) != 0 && len(key) != keys.PrivateKeySize {
		return nil, 0, fmt.Errorf("key of %d bytes", len(key))
	}
	if len(key) > 0 {
		b.key = new(keys.PrivateKey)
		copy(b.key[:], key)
		b.info.WithKey = true
	}
	var err error
	if b.cfg, err = decodeConfig(cfg); err != nil {
		return nil, 0, fmt.Errorf("config: %w", err)
	}
	return b, len(raw) - r.Remaining(), nil
}

// Restore writes the instance held in the backup file at path into home,
// which must not hold an instance or part of one. The file's checksum is
// verified before anything is written. key is the executor key to install
// when the backup holds none (or to use instead of it). guardPath, when
// not empty, is the guard file of the instance being replaced: it is
// installed with the store, so the restore is refused when it records a
// signed block the backup does not hold (decision 098). Without it a
// guard is created from the backup's head. The restored instance is then
// opened as Open does, and its head checked against the backup's header.
// When Restore fails, home is left as it was.
func Restore(path, home string, key *keys.PrivateKey, guardPath string) (info *BackupInfo, err error) {
	fail := func(err error) (*BackupInfo, error) { return nil, fmt.Errorf("fractal: restore: %w", err) }
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	b, err := readBackup(f)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", path, err))
	}
	if key == nil {
		key = b.key
	}
	if key == nil {
		return fail(errors.New("the backup holds no executor key: give the instance's executor.key"))
	}
	var oldGuard []byte
	if guardPath != "" {
		g, err := guard.Load(guardPath, b.info.Instance)
		if err != nil {
			return fail(err)
		}
		if oldGuard, err = os.ReadFile(g.Path()); err != nil {
			return fail(err)
		}
	}
	for _, name := range []string{configFile, keyFile, guardFile, dbDir} {
		if _, err := os.Lstat(filepath.Join(home, name)); err == nil {
			return fail(fmt.Errorf("%s already holds an instance (%s exists); restore into a new folder", home, name))
		}
	}
	_, statErr := os.Stat(home)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fail(err)
	}
	defer func() {
		if err == nil {
			return
		}
		if statErr != nil { // home did not exist: remove all of it
			os.RemoveAll(home)
			return
		}
		for _, name := range []string{configFile, keyFile, guardFile, dbDir, tmpDir} {
			os.RemoveAll(filepath.Join(home, name))
		}
	}()
	if err := loadStore(filepath.Join(home, dbDir), b.stream); err != nil {
		return fail(err)
	}
	if err := keys.WriteKeyFile(filepath.Join(home, keyFile), *key); err != nil {
		return fail(err)
	}
	if oldGuard != nil {
		if err := writeNewFile(filepath.Join(home, guardFile), oldGuard); err != nil {
			return fail(err)
		}
	}
	if err := writeConfig(home, b.cfg); err != nil {
		return fail(err)
	}
	in, err := Open(home)
	if err != nil {
		return fail(errors.New(strings.TrimPrefix(err.Error(), "fractal: ")))
	}
	defer in.Close()
	head, err := in.Head()
	if err != nil {
		return fail(err)
	}
	if head.Height != b.info.Head.Height || head.Hash() != b.info.Head.Hash {
		return fail(fmt.Errorf("the restored store ends at block %d, the backup's header says %s", head.Height, b.info.Head))
	}
	return &b.info, nil
}

// loadStore creates a store in dir from badger's backup stream.
func loadStore(dir string, stream io.Reader) error {
	db, err := badgerdb.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		return err
	}
	if err := db.Load(stream, 256); err != nil {
		db.Close()
		return fmt.Errorf("load the store: %w", err)
	}
	return db.Close()
}

// writeNewFile writes a file that must not exist, synced.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
