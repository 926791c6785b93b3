package queuelog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func entries(from, n int, size int) []Entry {
	var out []Entry
	for i := from; i < from+n; i++ {
		out = append(out, Entry{Seq: uint64(i), Raw: bytes.Repeat([]byte{byte(i)}, size)})
	}
	return out
}

// same reports whether got holds want's sequences and bytes, in order.
func same(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Raw, want[i].Raw) {
			t.Fatalf("entry %d: seq %d (%d bytes), want seq %d (%d bytes)", i, got[i].Seq, len(got[i].Raw), want[i].Seq, len(want[i].Raw))
		}
	}
}

// write makes a log of generation 7 holding groups, one Append each.
func write(t *testing.T, dir string, limit int64, groups ...[]Entry) *Log {
	t.Helper()
	l, err := Create(dir, 7, limit)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if err := l.Append(g); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestQueueLogRoundTripAndSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mempool")
	a, b, c := entries(0, 4, 100), entries(4, 2, 200), entries(6, 3, 0)
	l := write(t, dir, 400, a, b, c)
	// 400 bytes a segment: a (the header and 4 × 120) fills the first, b
	// the second; c starts the third.
	if got := []uint64{a[0].Segment, b[0].Segment, c[0].Segment}; !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("segments %v, want [1 2 3]", got)
	}
	if err := l.Remove(3); err == nil {
		t.Fatal("Remove took the current segment")
	}
	if err := l.Remove(2); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	gen, got, ok, err := Read(dir)
	if err != nil || !ok || gen != 7 {
		t.Fatalf("Read: gen %d, ok %v, %v", gen, ok, err)
	}
	same(t, got, append(append([]Entry{}, a...), c...))
	if got[0].Segment != 1 || got[4].Segment != 3 {
		t.Fatalf("read segments %d, %d", got[0].Segment, got[4].Segment)
	}
	if _, err := Create(dir, 8, 400); err == nil || !strings.Contains(err.Error(), "already holds a mempool log") {
		t.Fatalf("Create over a log: %v", err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := Read(dir); ok || err != nil {
		t.Fatalf("Read of a removed log: ok %v, %v", ok, err)
	}
}

// A crash in the middle of the last append leaves a torn record: Read
// drops it (nothing in it was acknowledged) and keeps everything before.
func TestQueueLogTornTailDropped(t *testing.T) {
	want := entries(0, 3, 40)
	tail := AppendRecord(nil, 3, bytes.Repeat([]byte{9}, 40))
	for name, damage := range map[string]func([]byte) []byte{
		"short header":      func(b []byte) []byte { return append(b, tail[:7]...) },
		"short payload":     func(b []byte) []byte { return append(b, tail[:len(tail)-1]...) },
		"payload zeroed":    func(b []byte) []byte { return append(append(b, tail[:12]...), make([]byte, len(tail)-12)...) },
		"zeros past header": func(b []byte) []byte { return append(b, make([]byte, len(tail))...) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, 1<<20, want).Close()
			path := filepath.Join(dir, segmentName(1))
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path, damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, got, ok, err := Read(dir)
			if err != nil || !ok {
				t.Fatalf("Read: ok %v, %v", ok, err)
			}
			same(t, got, want)
		})
	}
	// A segment whose header a crash cut short holds no record: dropped.
	dir := t.TempDir()
	write(t, dir, 1<<20, want).Close()
	if err := os.WriteFile(filepath.Join(dir, segmentName(2)), header(7, 2)[:10], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, got, _, err := Read(dir); err != nil {
		t.Fatal(err)
	} else {
		same(t, got, want)
	}
}

// Damage anywhere but a torn tail refuses, naming the file and offset:
// the log holds acknowledged submissions that must not be dropped quietly.
func TestQueueLogCorruptRefused(t *testing.T) {
	want := entries(0, 3, 40)
	rec := int64(recordHead + 8 + 40)
	for _, c := range []struct {
		name   string
		seg    uint64 // the damaged segment
		off    int64  // the damaged byte
		at     int64  // the offset the refusal names
		reason string
	}{
		{"middle payload", 1, int64(headerSize) + rec + 20, int64(headerSize) + rec, "payload fails its checksum"},
		{"middle length", 1, int64(headerSize) + rec + 1, int64(headerSize) + rec, "length fails its checksum"},
		{"header", 1, 3, 0, "segment header is damaged"},
		{"earlier segment's tail", 1, int64(headerSize) + 3*rec - 1, int64(headerSize) + 2*rec, "payload fails its checksum"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l := write(t, dir, 1, want, entries(3, 1, 40)) // one group a segment
			l.Close()
			path := filepath.Join(dir, segmentName(c.seg))
			data, _ := os.ReadFile(path)
			data[c.off] ^= 0x40
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, _, err := Read(dir)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read: %v, want a CorruptError", err)
			}
			if ce.File != path || ce.Offset != c.at || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("refusal %q, want %s at offset %d: %s", err, path, c.at, c.reason)
			}
		})
	}
	// A torn record is a tail only in the last segment.
	dir := t.TempDir()
	write(t, dir, 1, want, entries(3, 1, 40)).Close()
	path := filepath.Join(dir, segmentName(1))
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-5], 0o600)
	if _, _, _, err := Read(dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s: record runs past the end of the file at offset %d", path, int64(headerSize)+2*rec)) {
		t.Fatalf("torn earlier segment: %v", err)
	}
	// Segments of two logs are not one log.
	dir = t.TempDir()
	write(t, dir, 1, want, entries(3, 1, 40)).Close()
	seg2 := filepath.Join(dir, segmentName(2))
	data, _ = os.ReadFile(seg2)
	copy(data, header(8, 2))
	os.WriteFile(seg2, data, 0o600)
	if _, _, _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "segment of generation 8 among generation 7's") {
		t.Fatalf("mixed generations: %v", err)
	}
}

// FuzzDecodeRecord: hostile bytes never panic the decoder, and what it
// accepts encodes back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, 1, []byte("transaction")))
	f.Add(AppendRecord(nil, 0, nil))
	f.Add([]byte{0, 0, 0, 8, 1, 2, 3, 4})
	f.Add(append(AppendRecord(nil, 5, []byte{1}), 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, n, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if n > len(b) || !bytes.Equal(AppendRecord(nil, e.Seq, e.Raw), b[:n]) {
			t.Fatalf("decoded %d bytes as seq %d, %d bytes, which encode otherwise", n, e.Seq, len(e.Raw))
		}
	})
}

// FuzzReadSegment: a hostile segment file is read without a panic, and
// the entries it yields are its records, in order, from the header on.
func FuzzReadSegment(f *testing.F) {
	seg := AppendRecord(AppendRecord(header(3, 1), 7, []byte("a")), 8, []byte("bc"))
	f.Add(seg, true)
	f.Add(seg[:len(seg)-1], true)
	f.Add(seg[:len(seg)-1], false)
	f.Add(header(3, 1)[:9], true)
	f.Fuzz(func(t *testing.T, data []byte, last bool) {
		gen, es, err := readSegment(segmentName(1), data, last)
		if err != nil || gen == 0 {
			return
		}
		b := header(gen, 1)
		for _, e := range es {
			b = AppendRecord(b, e.Seq, e.Raw)
		}
		if !bytes.HasPrefix(data, b) {
			t.Fatalf("%d entries read that are not the file's records", len(es))
		}
	})
}
