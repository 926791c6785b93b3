// Package queuelog is the append-only log that makes a node's in-memory
// mempool durable (decision 181, docs/formats/instance.md): every admitted
// group of transactions is appended and synced before any of them is
// acknowledged, in segment files that are removed once every entry in them
// left the queue. It knows records, segments and crashes; what an entry
// means is the instance's.
//
// A segment file is a header (magic, the log's generation, the segment's
// number, a CRC-32C of those) and records: u32 payload length, u32 CRC-32C
// of that length, u32 CRC-32C of the payload, then the payload (u64
// sequence, then the entry's bytes), all big-endian.
package queuelog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fractalvm/fractal/internal/atomicfile"
)

// Entry is one logged entry: its queue sequence and its bytes.
type Entry struct {
	Seq uint64
	Raw []byte
	// Segment is the number of the segment file that holds it (Read and
	// Append set it).
	Segment uint64
}

const (
	magic      = "FRQLOG01"
	headerSize = len(magic) + 8 + 8 + 4
	recordHead = 12
	// MaxPayload bounds a record's payload: a sequence and an encoding of
	// the largest max_tx_bytes allows; a length above it is corrupt.
	MaxPayload = 8 + 64<<20
	suffix     = ".log"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is what errors.Is finds in a log that cannot be read back
// without losing entries that may have been acknowledged.
var ErrCorrupt = errors.New("corrupt mempool log")

// CorruptError names the file and offset of a damaged record.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s: %s at offset %d (the log holds acknowledged submissions: restore the file or move it aside knowing they are lost)", e.File, e.Reason, e.Offset)
}

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Log is a log open for appending. It is not safe for concurrent use.
type Log struct {
	dir   string
	gen   uint64
	limit int64  // the size past which Append starts a new segment
	seg   uint64 // the current segment's number
	f     *os.File
	size  int64
	buf   []byte
}

// Create makes dir and the first segment of a new log of generation gen
// (not 0). Append starts a new segment once the current one holds
// segmentBytes, so that a segment whose entries all left the queue can be
// removed. It refuses a dir that holds segments already.
func Create(dir string, gen uint64, segmentBytes int64) (*Log, error) {
	if gen == 0 {
		return nil, errors.New("a mempool log's generation is not 0")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The folder's own entry, or a power loss may take the whole log
	// with it (rotate syncs only the folder's contents).
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, err
	}
	names, err := segments(dir)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		return nil, fmt.Errorf("%s already holds a mempool log", dir)
	}
	l := &Log{dir: dir, gen: gen, limit: segmentBytes}
	if err := l.rotate(); err != nil {
		return nil, err
	}
	return l, nil
}

// Current returns the number of the segment appends go to now; Remove
// refuses it.
func (l *Log) Current() uint64 { return l.seg }

// Append writes entries as records of the current segment (a new one first
// when the current one is full) and syncs them: once it returns nil they
// survive a crash or a power loss. It sets each entry's Segment. After an
// error the log's tail is unknown: the caller must stop appending.
func (l *Log) Append(entries []Entry) error {
	if l.size > int64(headerSize) && l.size >= l.limit {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	l.buf = l.buf[:0]
	for i := range entries {
		l.buf = AppendRecord(l.buf, entries[i].Seq, entries[i].Raw)
		entries[i].Segment = l.seg
	}
	if _, err := l.f.Write(l.buf); err != nil {
		return err
	}
	l.size += int64(len(l.buf))
	return l.f.Sync()
}

// rotate closes the current segment and starts the next, synced with its
// folder before any record goes into it.
func (l *Log) rotate() error {
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			return err
		}
		l.f = nil
	}
	l.seg++
	f, err := os.OpenFile(filepath.Join(l.dir, segmentName(l.seg)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := header(l.gen, l.seg)
	if _, err := f.Write(h); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, int64(len(h))
	return atomicfile.SyncDir(l.dir)
}

// Remove deletes segment seg, whose entries all left the queue; it refuses
// the current segment.
func (l *Log) Remove(seg uint64) error {
	if seg == l.seg {
		return fmt.Errorf("segment %d is the one appends go to", seg)
	}
	if err := os.Remove(filepath.Join(l.dir, segmentName(seg))); err != nil {
		return err
	}
	return atomicfile.SyncDir(l.dir)
}

// Close closes the current segment; the files stay.
func (l *Log) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func segmentName(n uint64) string { return fmt.Sprintf("%016x%s", n, suffix) }

func header(gen, seg uint64) []byte {
	h := append([]byte(magic), make([]byte, 16)...)
	binary.BigEndian.PutUint64(h[len(magic):], gen)
	binary.BigEndian.PutUint64(h[len(magic)+8:], seg)
	return binary.BigEndian.AppendUint32(h, crc32.Checksum(h, castagnoli))
}

// AppendRecord appends the record of entry (seq, raw) to b.
func AppendRecord(b []byte, seq uint64, raw []byte) []byte {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(8+len(raw)))
	b = append(b, n[:]...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(n[:], castagnoli))
	crc := crc32.Update(crc32.Checksum(binary.BigEndian.AppendUint64(nil, seq), castagnoli), castagnoli, raw)
	b = binary.BigEndian.AppendUint32(b, crc)
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, raw...)
}

// errTorn is DecodeRecord's refusal of a record that runs past the end of
// b: a crash in the middle of its append, if b is the end of the last
// segment.
var errTorn = errors.New("record runs past the end of the file")

// DecodeRecord decodes the record at the start of b: the entry and the
// record's length. The entry's Raw aliases b.
func DecodeRecord(b []byte) (Entry, int, error) {
	if len(b) < recordHead {
		return Entry{}, 0, errTorn
	}
	if crc32.Checksum(b[:4], castagnoli) != binary.BigEndian.Uint32(b[4:8]) {
		return Entry{}, 0, errors.New("record length fails its checksum")
	}
	n := binary.BigEndian.Uint32(b[:4])
	if n < 8 || n > MaxPayload {
		return Entry{}, 0, fmt.Errorf("record length %d is out of range", n)
	}
	if uint64(len(b)-recordHead) < uint64(n) {
		return Entry{}, 0, errTorn
	}
	p := b[recordHead : recordHead+int(n)]
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(b[8:12]) {
		return Entry{}, 0, errPayload
	}
	return Entry{Seq: binary.BigEndian.Uint64(p), Raw: p[8:]}, recordHead + int(n), nil
}

var errPayload = errors.New("record payload fails its checksum")

// Read reads every segment in dir, in order, and returns the log's
// generation and its entries (ok false when dir holds no segment). A crash
// in the middle of an append leaves the last segment's last record torn:
// shorter than its length says, its payload failing its checksum with
// nothing after it, or a tail of zeros; Append had not returned, so nothing
// in it was acknowledged, and Read drops it. Any other damage, a torn
// record in an earlier segment, or segments of two generations, is a
// *CorruptError naming the file and offset.
func Read(dir string) (gen uint64, entries []Entry, ok bool, err error) {
	names, err := segments(dir)
	if err != nil || len(names) == 0 {
		return 0, nil, false, err
	}
	for i, name := range names {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, nil, false, err
		}
		last := i == len(names)-1
		g, es, err := readSegment(path, data, last)
		if err != nil {
			return 0, nil, false, err
		}
		if g == 0 && last { // a segment torn at its creation: no record was in it
			continue
		}
		if i > 0 && g != gen {
			return 0, nil, false, &CorruptError{File: path, Offset: 0, Reason: fmt.Sprintf("segment of generation %d among generation %d's", g, gen)}
		}
		gen = g
		entries = append(entries, es...)
	}
	return gen, entries, gen != 0, nil
}

// readSegment decodes one segment file; gen 0 means an incomplete header
// in a last segment (a crash while it was created).
func readSegment(path string, data []byte, last bool) (uint64, []Entry, error) {
	corrupt := func(off int, reason string) error {
		return &CorruptError{File: path, Offset: int64(off), Reason: reason}
	}
	seg, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), suffix), 16, 64)
	if err != nil {
		return 0, nil, corrupt(0, "segment file name is not a number")
	}
	if len(data) < headerSize || crc32.Checksum(data[:headerSize-4], castagnoli) != binary.BigEndian.Uint32(data[headerSize-4:headerSize]) {
		if last && (len(data) < headerSize || allZero(data)) {
			return 0, nil, nil
		}
		return 0, nil, corrupt(0, "segment header is damaged")
	}
	if string(data[:len(magic)]) != magic {
		return 0, nil, corrupt(0, "not a mempool log segment")
	}
	gen := binary.BigEndian.Uint64(data[len(magic):])
	if gen == 0 || binary.BigEndian.Uint64(data[len(magic)+8:]) != seg {
		return 0, nil, corrupt(0, "segment header names another segment")
	}
	var out []Entry
	for off := headerSize; off < len(data); {
		e, n, err := DecodeRecord(data[off:])
		if err != nil {
			if last && torn(err, data[off:]) {
				break
			}
			return 0, nil, corrupt(off, err.Error())
		}
		e.Segment = seg
		out = append(out, e)
		off += n
	}
	return gen, out, nil
}

// torn reports whether the undecodable rest of the last segment is what a
// crash during an append leaves.
func torn(err error, rest []byte) bool {
	switch {
	case errors.Is(err, errTorn), allZero(rest):
		return true
	case errors.Is(err, errPayload):
		n := binary.BigEndian.Uint32(rest[:4])
		return len(rest) == recordHead+int(n) // the last record, nothing after it
	}
	return false
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// segments lists dir's segment files in order; a missing dir holds none.
func segments(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), suffix) {
			names = append(names, de.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// RemoveAll deletes the log in dir, once its entries are safely elsewhere.
func RemoveAll(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dir))
}
