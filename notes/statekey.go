package notes

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"unsafe"
)

// StateKey is where a note lives: {provenance}/{application}/{owner}/{key}.
// At most one live note exists per state key. Storage keeps notes in the byte
// order of String(), and that is the order scans return them in.
type StateKey struct {
	Provenance  [][]byte
	Application Hash
	Owner       Hash
	Key         []byte
}

// String renders the text form: provenance IDs in lower-case hex joined by
// ",", then application, owner and key in lower-case hex, separated by "/".
// Empty provenance and an empty key render as empty parts.
func (k StateKey) String() string {
	b := k.AppendText(make([]byte, 0, textSize(k.Provenance, k.Key)))
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is not used again: one allocation, not two
}

// AppendText appends String() to b: a caller that only compares or looks
// up the text can keep it in a buffer of its own.
func (k *StateKey) AppendText(b []byte) []byte {
	b = appendProvenanceText(b, k.Provenance)
	b = append(b, '/')
	b = hex.AppendEncode(b, k.Application[:])
	b = append(b, '/')
	b = hex.AppendEncode(b, k.Owner[:])
	b = append(b, '/')
	return hex.AppendEncode(b, k.Key)
}

// ParseStateKey is the strict inverse of String: for every s it accepts,
// ParseStateKey(s).String() == s. It refuses upper-case or odd-length hex, a
// wrong number of parts, hashes that are not 32 bytes, empty provenance
// entries and parts over the limits.
func ParseStateKey(s string) (StateKey, error) {
	parts, err := splitParts(s)
	if err != nil {
		return StateKey{}, fmt.Errorf("notes: state key: %w", err)
	}
	var k StateKey
	if k.Provenance, err = parseProvenanceText(parts[0]); err != nil {
		return StateKey{}, fmt.Errorf("notes: state key: %w", err)
	}
	if k.Application, err = parseHash(parts[1], "application"); err != nil {
		return StateKey{}, fmt.Errorf("notes: state key: %w", err)
	}
	if k.Owner, err = parseHash(parts[2], "owner"); err != nil {
		return StateKey{}, fmt.Errorf("notes: state key: %w", err)
	}
	if k.Key, err = parseKeyText(parts[3]); err != nil {
		return StateKey{}, fmt.Errorf("notes: state key: %w", err)
	}
	return k, nil
}

// Equal reports whether k and o name the same state key (nil and empty
// slices are equal).
func (k StateKey) Equal(o StateKey) bool {
	return ProvenanceEqual(k.Provenance, o.Provenance) &&
		k.Application == o.Application && k.Owner == o.Owner &&
		bytes.Equal(k.Key, o.Key)
}

// Validate checks the provenance and key limits.
func (k StateKey) Validate() error {
	if err := validateProvenance(k.Provenance); err != nil {
		return err
	}
	return validateKey(k.Key)
}

// MarshalText renders String(), so state keys read well in JSON.
func (k StateKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses with ParseStateKey.
func (k *StateKey) UnmarshalText(b []byte) error {
	parsed, err := ParseStateKey(string(b))
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}

// ProvenanceEqual reports whether two provenance chains name the same
// instances in the same order (nil and empty are equal).
func ProvenanceEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func appendProvenanceText(b []byte, prov [][]byte) []byte {
	for i, p := range prov {
		if i > 0 {
			b = append(b, ',')
		}
		b = hex.AppendEncode(b, p)
	}
	return b
}

// TextCap is room enough for String(): a buffer of that capacity takes
// AppendText without growing.
func (k *StateKey) TextCap() int { return textSize(k.Provenance, k.Key) }

// textSize is the length of a state key's text form (a pattern's is at most
// one byte longer).
func textSize(prov [][]byte, key []byte) int {
	n := 3 + 2*64 + 2*len(key)
	for _, p := range prov {
		n += 1 + 2*len(p)
	}
	return n
}

// splitParts splits the text form into its four "/"-separated parts.
func splitParts(s string) ([]string, error) {
	if n := strings.Count(s, "/") + 1; n != 4 {
		return nil, fmt.Errorf("%d parts, want 4 separated by \"/\"", n)
	}
	return strings.Split(s, "/"), nil
}

// parseProvenanceText parses a non-wildcard provenance part; "" is the
// empty provenance.
func parseProvenanceText(s string) ([][]byte, error) {
	if s == "" {
		return nil, nil
	}
	// Count before splitting so a hostile string cannot make a huge slice.
	if n := strings.Count(s, ",") + 1; n > MaxProvenance {
		return nil, fmt.Errorf("provenance: count %d exceeds limit %d", n, MaxProvenance)
	}
	var prov [][]byte
	for i, e := range strings.Split(s, ",") {
		if e == "" {
			return nil, fmt.Errorf("provenance entry %d is empty", i)
		}
		if len(e) > 2*MaxProvenanceID {
			return nil, fmt.Errorf("provenance entry %d: length %d exceeds limit %d", i, (len(e)+1)/2, MaxProvenanceID)
		}
		b, err := parseHex(e)
		if err != nil {
			return nil, fmt.Errorf("provenance entry %d: %w", i, err)
		}
		prov = append(prov, b)
	}
	return prov, nil
}

// parseHash parses exactly 64 lower-case hex digits.
func parseHash(s, what string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%s: %d hex digits, want %d", what, len(s), 2*len(h))
	}
	b, err := parseHex(s)
	if err != nil {
		return h, fmt.Errorf("%s: %w", what, err)
	}
	copy(h[:], b)
	return h, nil
}

// parseKeyText parses an exact key part ("" is the empty key, decoded as nil).
func parseKeyText(s string) ([]byte, error) {
	if len(s) > 2*MaxKey {
		return nil, fmt.Errorf("key: length %d exceeds limit %d", (len(s)+1)/2, MaxKey)
	}
	if s == "" {
		return nil, nil
	}
	b, err := parseHex(s)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return b, nil
}

// parseHex accepts only even-length lower-case hex, the one form String
// writes.
func parseHex(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, fmt.Errorf("character %q is not lower-case hex", c)
		}
	}
	return hex.DecodeString(s)
}
