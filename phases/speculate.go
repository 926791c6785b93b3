package phases

import (
	"bytes"
	"errors"
	"slices"
	"sync"

	"github.com/fractalvm/fractal/notes"
)

// A speculative run executes a transaction before the earlier transactions
// it conflicts with are done, against the block's state as it is then,
// through a recorder. A run's outcome, gas included, depends only on the
// transaction and on what its reads of the state returned; so when every
// recorded read returns the same notes once the transaction's turn comes,
// the speculative outcome is the one a run at that turn would give, and is
// used. Otherwise the transaction runs again (decision 153).

// recorder is a State that passes reads to st and records what each one
// returned, in the order they were made.
type recorder struct {
	st     State
	mu     sync.Mutex // host functions may read from goroutines of their own
	reads  []*read
	failed bool // st returned an error: the run is not reused
}

// read is one recorded Get or Scan.
type read struct {
	scan  bool
	key   notes.StateKey // a Get's key
	pat   notes.Pattern  // a Scan's pattern
	got   []*notes.Note  // the Get's note (nil for none), or the notes the Scan passed on
	whole bool           // the Scan reached its end; else it was stopped after got
}

func (r *recorder) add(rd *read) {
	r.mu.Lock()
	r.reads = append(r.reads, rd)
	r.mu.Unlock()
}

func (r *recorder) fail() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}

func (r *recorder) Get(k notes.StateKey) (*notes.Note, error) {
	n, err := r.st.Get(k)
	if err != nil {
		r.fail()
		return nil, err
	}
	k.Key = bytes.Clone(k.Key) // the caller may reuse its buffer
	r.add(&read{key: k, got: []*notes.Note{n}})
	return n, nil
}

func (r *recorder) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	rd := &read{scan: true, pat: p}
	r.add(rd)
	stopped := false
	err := r.st.Scan(p, func(n *notes.Note) error {
		rd.got = append(rd.got, n)
		err := fn(n)
		stopped = err != nil
		return err
	})
	switch {
	case stopped:
	case err != nil:
		r.fail()
	default:
		rd.whole = true
	}
	return err
}

// errDiffers and errSame end a Scan that checks a recorded one.
var (
	errDiffers = errors.New("the scan differs from the recorded one")
	errSame    = errors.New("the scan matches the recorded one up to where it stopped")
)

// still reports whether every recorded read returns the same notes from st.
func (r *recorder) still(st State) bool {
	if r.failed {
		return false
	}
	for _, rd := range r.reads {
		if !rd.scan {
			n, err := st.Get(rd.key)
			if err != nil || !sameNote(n, rd.got[0]) {
				return false
			}
			continue
		}
		k := 0
		err := st.Scan(rd.pat, func(n *notes.Note) error {
			if k == len(rd.got) || !sameNote(n, rd.got[k]) {
				return errDiffers
			}
			if k++; k == len(rd.got) && !rd.whole {
				return errSame
			}
			return nil
		})
		if !(err == nil && rd.whole && k == len(rd.got) || errors.Is(err, errSame)) {
			return false
		}
	}
	return true
}

// sameNote reports whether a and b are both nil or the same note.
func sameNote(a, b *notes.Note) bool {
	if a == nil || b == nil || a == b {
		return a == b
	}
	return a.Application == b.Application && a.Owner == b.Owner &&
		bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) &&
		slices.EqualFunc(a.Provenance, b.Provenance, bytes.Equal)
}
