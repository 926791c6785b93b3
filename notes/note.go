// Package notes defines the Note, Fractal's unit of state: its canonical
// binary encoding and ID, the state key a note lives at, and the constraint
// patterns that bound which state keys a transaction may read or write.
//
// The byte formats are specified in docs/formats/notes.md; the code follows
// that page field by field.
package notes

import (
	"fmt"

	"github.com/fractalvm/fractal/internal/enc"
)

// Hash is a SHA-256 digest.
type Hash = [32]byte

// Version is the first byte of a note's encoding.
const Version = 1

// Limits on a note's fields. Decode and the parsers refuse anything larger, so
// no input can make a host allocate more than these.
const (
	MaxProvenance   = 16    // provenance entries per note
	MaxProvenanceID = 64    // bytes per provenance entry (entries are never empty)
	MaxKey          = 1024  // bytes of key
	MaxValue        = 65536 // bytes of value
)

// Note is one immutable piece of state. Notes are never changed, only spent
// (deleted) and created.
type Note struct {
	Provenance  [][]byte // instance IDs, most recent first; empty for locally created state
	Application Hash     // SHA-256 of the application predicate's Lua code
	Owner       Hash     // SHA-256 of the owner predicate's Lua code
	Key         []byte
	Value       []byte
}

// Encode returns the canonical encoding: the version byte, the provenance
// list, application, owner, key and value. Encoding a note that fails
// Validate is the caller's bug: Decode will refuse the result.
func (n *Note) Encode() []byte {
	size := 1 + 4 + 32 + 32 + 4 + len(n.Key) + 4 + len(n.Value)
	for _, p := range n.Provenance {
		size += 4 + len(p)
	}
	w := enc.NewWriter(size)
	n.encode(w)
	return w.Bytes()
}

func (n *Note) encode(w *enc.Writer) {
	w.U8(Version)
	writeProvenance(w, n.Provenance)
	w.Fixed(n.Application[:])
	w.Fixed(n.Owner[:])
	w.Var(n.Key)
	w.Var(n.Value)
}

// Decode parses a canonical note encoding. It refuses an unknown version,
// truncation, trailing bytes, fields over the limits and empty provenance
// entries, so Decode(b) succeeds only if b == Decode(b).Encode().
func Decode(b []byte) (*Note, error) {
	r := enc.NewReader(b)
	n := new(Note)
	if v := r.U8(); r.Err() == nil && v != Version {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	n.Provenance = readProvenance(r)
	r.Into(n.Application[:])
	r.Into(n.Owner[:])
	n.Key = r.Var(MaxKey, "key")
	n.Value = r.Var(MaxValue, "value")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("notes: decode: %w", err)
	}
	return n, nil
}

// ID is the SHA-256 of the note's canonical encoding.
func (n *Note) ID() Hash { return enc.Sum256(n.encode) }

// StateKey is the key the note lives at. It shares the note's slices.
func (n *Note) StateKey() StateKey {
	return StateKey{Provenance: n.Provenance, Application: n.Application, Owner: n.Owner, Key: n.Key}
}

// Validate checks the limits. Hosts call it on notes made by Lua code before
// encoding them.
func (n *Note) Validate() error {
	if err := n.StateKey().Validate(); err != nil {
		return err
	}
	if len(n.Value) > MaxValue {
		return fmt.Errorf("notes: value: length %d exceeds limit %d", len(n.Value), MaxValue)
	}
	return nil
}

// writeProvenance writes list<var> of provenance entries.
func writeProvenance(w *enc.Writer, prov [][]byte) {
	w.U32(uint32(len(prov)))
	for _, p := range prov {
		w.Var(p)
	}
}

// readProvenance reads what writeProvenance writes, with the limits. An empty
// list decodes as nil.
func readProvenance(r *enc.Reader) [][]byte {
	count := r.Count(MaxProvenance, "provenance")
	if count == 0 {
		return nil
	}
	prov := make([][]byte, 0, count)
	for i := 0; i < count && r.Err() == nil; i++ {
		p := r.Var(MaxProvenanceID, "provenance entry")
		if r.Err() == nil && len(p) == 0 {
			r.Fail(fmt.Errorf("provenance entry %d is empty", i))
		}
		prov = append(prov, p)
	}
	return prov
}

// validateProvenance checks the provenance limits.
func validateProvenance(prov [][]byte) error {
	if len(prov) > MaxProvenance {
		return fmt.Errorf("notes: provenance: count %d exceeds limit %d", len(prov), MaxProvenance)
	}
	for i, p := range prov {
		if len(p) == 0 {
			return fmt.Errorf("notes: provenance entry %d is empty", i)
		}
		if len(p) > MaxProvenanceID {
			return fmt.Errorf("notes: provenance entry %d: length %d exceeds limit %d", i, len(p), MaxProvenanceID)
		}
	}
	return nil
}

// validateKey checks the key limit.
func validateKey(key []byte) error {
	if len(key) > MaxKey {
		return fmt.Errorf("notes: key: length %d exceeds limit %d", len(key), MaxKey)
	}
	return nil
}
