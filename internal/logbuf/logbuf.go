// Package logbuf is a byte buffer safe for concurrent writes and reads: the
// log of a node or process that a test reads while it is written.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
