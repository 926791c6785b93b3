package release

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
)

// LogFile is the log's name in an epoch's folder.
const LogFile = "released.log"

// maxLog bounds the log: a line is under 160 bytes, so about 400,000
// batches.
const maxLog = 64 << 20

// Log is the file of the batches a keyholder released shares for, one line
// each, "batch N RECORDHASH EXECUTOR" (decimal, hex, base64), appended and
// synced before the shares leave. The executor of the first line is the
// only one this keyholder answers, and a number is answered for one record
// only: an executor that signs two different batches under one number
// could otherwise have both opened, which is reordering after seeing
// contents (docs/formats/keyholder.md).
type Log struct {
	path     string
	byNum    map[uint64][32]byte
	executor *keys.PublicKey
}

// OpenLog reads dir's log; a missing one is empty.
func OpenLog(dir string) (*Log, error) {
	l := &Log{path: filepath.Join(dir, LogFile), byNum: map[uint64][32]byte{}}
	raw, err := inputfile.Read(l.path, maxLog)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		num, h, exec, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("release: %s line %d: %w", l.path, n, err)
		}
		if err := l.check(num, h, exec); err != nil {
			return nil, fmt.Errorf("release: %s line %d: %w", l.path, n, err)
		}
		l.byNum[num], l.executor = h, &exec
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		return nil, fmt.Errorf("release: %s: the last line is cut short", l.path)
	}
	return l, nil
}

func parseLine(line string) (uint64, [32]byte, keys.PublicKey, error) {
	var h [32]byte
	f := strings.Split(line, " ")
	if len(f) != 4 || f[0] != "batch" {
		return 0, h, keys.PublicKey{}, errors.New(`not "batch N HASH EXECUTOR"`)
	}
	num, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || strconv.FormatUint(num, 10) != f[1] {
		return 0, h, keys.PublicKey{}, fmt.Errorf("batch number %q", f[1])
	}
	b, err := hex.DecodeString(f[2])
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != f[2] {
		return 0, h, keys.PublicKey{}, fmt.Errorf("record hash %q", f[2])
	}
	copy(h[:], b)
	exec, err := keys.ParsePublicKey(f[3])
	return num, h, exec, err
}

func (l *Log) check(num uint64, h [32]byte, exec keys.PublicKey) error {
	if l.executor != nil && exec != *l.executor {
		return fmt.Errorf("signed by executor %s, but this keyholder answers executor %s", exec, *l.executor)
	}
	if old, ok := l.byNum[num]; ok && old != h {
		return fmt.Errorf("the executor signed another batch under number %d (record %x), whose shares this keyholder released; it answers one batch per number", num, old[:8])
	}
	return nil
}

// Check refuses a batch the log forbids answering.
func (l *Log) Check(b *chain.EncryptedBatch) error {
	return l.check(b.Number, b.Hash(), keys.PublicKey(b.Executor))
}

// Record appends b and syncs the file; a batch already there is not
// repeated.
func (l *Log) Record(b *chain.EncryptedBatch) error {
	h, exec := b.Hash(), keys.PublicKey(b.Executor)
	if err := l.check(b.Number, h, exec); err != nil {
		return err
	}
	if _, ok := l.byNum[b.Number]; ok {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	_, err = fmt.Fprintf(f, "batch %d %x %s\n", b.Number, h, exec)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release: %s: %w", l.path, err)
	}
	l.byNum[b.Number], l.executor = h, &exec
	return nil
}
