// Package enc is the one canonical binary encoding that every hashed or signed
// Fractal structure uses: fixed-width big-endian integers and uint32
// length-prefixed byte strings. There are no varints, so every value has
// exactly one encoding, and the reader refuses truncation, oversize fields and
// trailing bytes.
package enc

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// ErrTruncated reports input that ended inside a field.
var ErrTruncated = errors.New("truncated input")

// Writer appends canonical fields to a byte slice.
type Writer struct{ buf []byte }

// NewWriter returns a Writer whose buffer starts with capacity n.
func NewWriter(n int) *Writer { return &Writer{buf: make([]byte, 0, n)} }

// Bytes returns the encoded bytes (not a copy).
func (w *Writer) Bytes() []byte { return w.buf }

// scratch holds Writers whose buffers Sum256 and Copy reuse.
var scratch = sync.Pool{New: func() any { return &Writer{} }}

// maxScratch bounds the buffer a reused Writer keeps: a rare large
// encoding is not held for ever.
const maxScratch = 64 << 10

// withScratch runs write on a reused, empty Writer.
func withScratch(write func(w *Writer), use func(b []byte)) {
	w := scratch.Get().(*Writer)
	w.buf = w.buf[:0]
	write(w)
	use(w.buf)
	if cap(w.buf) <= maxScratch {
		scratch.Put(w)
	}
}

// Sum256 returns the SHA-256 of what write appends. The encoding is built
// in a reused buffer, so hashing an encoding allocates nothing.
func Sum256(write func(w *Writer)) (h [32]byte) {
	withScratch(write, func(b []byte) { h = sha256.Sum256(b) })
	return h
}

// Copy returns what write appends, in a slice of exactly its length: one
// allocation however the encoding grows while it is written.
func Copy(write func(w *Writer)) (out []byte) {
	withScratch(write, func(b []byte) { out = append(make([]byte, 0, len(b)), b...) })
	return out
}

// U8 appends one byte.
func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

// Bool appends 1 for true and 0 for false.
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// U32 appends a big-endian uint32.
func (w *Writer) U32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

// U64 appends a big-endian uint64.
func (w *Writer) U64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

// Fixed appends b as is; the reader must know its length.
func (w *Writer) Fixed(b []byte) { w.buf = append(w.buf, b...) }

// Var appends a uint32 length and then b.
func (w *Writer) Var(b []byte) {
	w.U32(uint32(len(b)))
	w.buf = append(w.buf, b...)
}

// String appends s as a length-prefixed byte string.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.buf = append(w.buf, s...)
}

// Reader consumes canonical fields from a byte slice. The first error sticks:
// every later call returns zero values, and Err or Finish reports it.
type Reader struct {
	buf []byte
	off int
	err error
}

// NewReader reads from b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Err returns the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Fail records err (if none is recorded yet), so a caller's own check on a
// decoded value stops the decode like a malformed field would.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Remaining is the number of bytes not yet read.
func (r *Reader) Remaining() int { return len(r.buf) - r.off }

// Finish reports the first error, or an error if bytes are left over.
func (r *Reader) Finish() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.buf) {
		return fmt.Errorf("%d trailing bytes", len(r.buf)-r.off)
	}
	return nil
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf)-r.off {
		r.err = ErrTruncated
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.Fail(fmt.Errorf("boolean byte %d is not 0 or 1", v))
	}
	return v == 1
}

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Fixed reads exactly n bytes and returns a copy.
func (r *Reader) Fixed(n int) []byte {
	b := r.take(n)
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Into fills dst exactly.
func (r *Reader) Into(dst []byte) {
	if b := r.take(len(dst)); b != nil {
		copy(dst, b)
	}
}

// Var reads a length-prefixed byte string of at most max bytes and returns a
// copy (nil for an empty string). what names the field in the error.
func (r *Reader) Var(max int, what string) []byte {
	n := r.U32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		r.Fail(fmt.Errorf("%s: length %d exceeds limit %d", what, n, max))
		return nil
	}
	if n == 0 {
		return nil
	}
	return r.Fixed(int(n))
}

// String reads a length-prefixed string of at most max bytes.
func (r *Reader) String(max int, what string) string { return string(r.Var(max, what)) }

// Count reads a uint32 element count of at most max.
func (r *Reader) Count(max int, what string) int {
	n := r.U32()
	if r.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		r.Fail(fmt.Errorf("%s: count %d exceeds limit %d", what, n, max))
		return 0
	}
	return int(n)
}
