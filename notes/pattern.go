package notes

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"unsafe"

	"github.com/fractalvm/fractal/internal/enc"
)

// MaxPatterns is the most patterns one ConstraintSet may hold.
const MaxPatterns = 256

// Pattern constrains state keys. Each of provenance, application and owner is
// either exact or any ("*"); the key is exact or a byte prefix ("*" is the
// empty prefix).
//
// The text form is the state-key form with "*" in place of a wildcard part and
// "*" after a key prefix, for example "*/{application}/*/6b65*". The zero
// Pattern matches only the state key whose every part is zero or empty; start
// from AnyPattern to build a wider one.
type Pattern struct {
	anyProvenance  bool
	provenance     [][]byte
	anyApplication bool
	application    Hash
	anyOwner       bool
	owner          Hash
	keyIsPrefix    bool
	key            []byte // the exact key, or the prefix when keyIsPrefix
}

// AnyPattern matches every state key ("*/*/*/*").
func AnyPattern() Pattern {
	return Pattern{anyProvenance: true, anyApplication: true, anyOwner: true, keyIsPrefix: true}
}

// ExactPattern matches exactly k.
func ExactPattern(k StateKey) Pattern {
	return Pattern{provenance: k.Provenance, application: k.Application, owner: k.Owner, key: k.Key}
}

// PatternFromKeyPrefix matches the state keys with k's provenance, application
// and owner whose key starts with k.Key.
func PatternFromKeyPrefix(k StateKey) Pattern {
	return ExactPattern(k).WithKeyPrefix(k.Key)
}

// WithProvenance returns p with the provenance part fixed to prov.
func (p Pattern) WithProvenance(prov [][]byte) Pattern {
	p.anyProvenance, p.provenance = false, prov
	return p
}

// WithApplication returns p with the application part fixed to h.
func (p Pattern) WithApplication(h Hash) Pattern {
	p.anyApplication, p.application = false, h
	return p
}

// WithOwner returns p with the owner part fixed to h.
func (p Pattern) WithOwner(h Hash) Pattern {
	p.anyOwner, p.owner = false, h
	return p
}

// WithKey returns p with the key part fixed to exactly key.
func (p Pattern) WithKey(key []byte) Pattern {
	p.keyIsPrefix, p.key = false, key
	return p
}

// WithKeyPrefix returns p with the key part matching every key that starts
// with prefix.
func (p Pattern) WithKeyPrefix(prefix []byte) Pattern {
	p.keyIsPrefix, p.key = true, prefix
	return p
}

// Validate checks the limits that ParsePattern and DecodePattern enforce, for
// patterns built with the With methods.
func (p Pattern) Validate() error {
	if !p.anyProvenance {
		if err := validateProvenance(p.provenance); err != nil {
			return err
		}
	}
	return validateKey(p.key)
}

// Match reports whether k lies inside p.
func (p Pattern) Match(k StateKey) bool {
	if !p.anyProvenance && !ProvenanceEqual(p.provenance, k.Provenance) {
		return false
	}
	if !p.anyApplication && p.application != k.Application {
		return false
	}
	if !p.anyOwner && p.owner != k.Owner {
		return false
	}
	if p.keyIsPrefix {
		return bytes.HasPrefix(k.Key, p.key)
	}
	return bytes.Equal(k.Key, p.key)
}

// Intersect returns the pattern matching exactly the state keys that both a
// and b match, and false when there is none. The parts are independent, so
// each part is intersected alone: an exact part with "*" is the exact part,
// two exact parts must be equal; two key prefixes give the longer when one
// extends the other, an exact key and a prefix give the key when it starts
// with the prefix. The result may share a's and b's slices.
func Intersect(a, b Pattern) (Pattern, bool) { return intersect(&a, &b) }

// Overlap reports whether some state key matches both a and b. Two key
// prefixes overlap when one extends the other; the longer one is a witness,
// and it is within MaxKey for valid patterns.
func Overlap(a, b Pattern) bool {
	_, ok := intersect(&a, &b)
	return ok
}

// intersect checks every part before it builds the result, so the
// scheduler's many failing Overlap calls copy nothing.
func intersect(a, b *Pattern) (Pattern, bool) {
	// Each part comes from the pattern that fixes it (a when both do).
	prov, app, owner := a, a, a
	if a.anyProvenance {
		prov = b
	} else if !b.anyProvenance && !ProvenanceEqual(a.provenance, b.provenance) {
		return Pattern{}, false
	}
	if a.anyApplication {
		app = b
	} else if !b.anyApplication && a.application != b.application {
		return Pattern{}, false
	}
	if a.anyOwner {
		owner = b
	} else if !b.anyOwner && a.owner != b.owner {
		return Pattern{}, false
	}
	// Order the keys so that a prefix, when there is one, is in short.
	short, long := a, b
	if !a.keyIsPrefix || (b.keyIsPrefix && len(b.key) < len(a.key)) {
		short, long = b, a
	}
	switch {
	case short.keyIsPrefix && bytes.HasPrefix(long.key, short.key):
	case !short.keyIsPrefix && !long.keyIsPrefix && bytes.Equal(short.key, long.key):
	default:
		return Pattern{}, false
	}
	return Pattern{
		anyProvenance: prov.anyProvenance, provenance: prov.provenance,
		anyApplication: app.anyApplication, application: app.application,
		anyOwner: owner.anyOwner, owner: owner.owner,
		keyIsPrefix: long.keyIsPrefix, key: long.key,
	}, true
}

// String renders the canonical text form; ParsePattern(p.String()) gives p
// back.
func (p Pattern) String() string {
	b := make([]byte, 0, textSize(p.provenance, p.key)+1)
	if p.anyProvenance {
		b = append(b, '*')
	} else {
		b = appendProvenanceText(b, p.provenance)
	}
	b = append(b, '/')
	b = appendHashOrAny(b, p.anyApplication, &p.application)
	b = append(b, '/')
	b = appendHashOrAny(b, p.anyOwner, &p.owner)
	b = append(b, '/')
	b = hex.AppendEncode(b, p.key)
	if p.keyIsPrefix {
		b = append(b, '*')
	}
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is not used again: one allocation, not two
}

// Prefix returns the longest literal prefix of p's text form: every state
// key that p matches has a String() starting with it, so a storage scan in
// String() order can seek there and filter with Match.
func (p Pattern) Prefix() string {
	s := p.String()
	if i := strings.IndexByte(s, '*'); i >= 0 {
		return s[:i]
	}
	return s
}

// ParsePattern parses the text form. It is strict like ParseStateKey: for
// every s it accepts, ParsePattern(s).String() == s.
func ParsePattern(s string) (Pattern, error) {
	p, err := parsePattern(s)
	if err != nil {
		return Pattern{}, fmt.Errorf("notes: pattern: %w", err)
	}
	return p, nil
}

func parsePattern(s string) (Pattern, error) {
	parts, err := splitParts(s)
	if err != nil {
		return Pattern{}, err
	}
	var p Pattern
	if parts[0] == "*" {
		p.anyProvenance = true
	} else if p.provenance, err = parseProvenanceText(parts[0]); err != nil {
		return Pattern{}, err
	}
	if p.anyApplication, p.application, err = parseHashOrAny(parts[1], "application"); err != nil {
		return Pattern{}, err
	}
	if p.anyOwner, p.owner, err = parseHashOrAny(parts[2], "owner"); err != nil {
		return Pattern{}, err
	}
	key := parts[3]
	if strings.HasSuffix(key, "*") {
		p.keyIsPrefix = true
		key = key[:len(key)-1]
	}
	if p.key, err = parseKeyText(key); err != nil {
		return Pattern{}, err
	}
	return p, nil
}

// Encode appends the canonical binary form: for provenance, application and
// owner a bool "any" followed, when false, by the exact value; then a bool
// "key is a prefix" and the key bytes.
func (p Pattern) Encode(w *enc.Writer) {
	w.Bool(p.anyProvenance)
	if !p.anyProvenance {
		writeProvenance(w, p.provenance)
	}
	w.Bool(p.anyApplication)
	if !p.anyApplication {
		w.Fixed(p.application[:])
	}
	w.Bool(p.anyOwner)
	if !p.anyOwner {
		w.Fixed(p.owner[:])
	}
	w.Bool(p.keyIsPrefix)
	w.Var(p.key)
}

// DecodePattern reads what Encode writes, with the limits; errors are
// recorded on r.
func DecodePattern(r *enc.Reader) Pattern {
	var p Pattern
	if p.anyProvenance = r.Bool(); !p.anyProvenance {
		p.provenance = readProvenance(r)
	}
	if p.anyApplication = r.Bool(); !p.anyApplication {
		r.Into(p.application[:])
	}
	if p.anyOwner = r.Bool(); !p.anyOwner {
		r.Into(p.owner[:])
	}
	p.keyIsPrefix = r.Bool()
	p.key = r.Var(MaxKey, "key")
	if r.Err() != nil {
		return Pattern{}
	}
	return p
}

// MarshalText renders String(), so patterns read well in JSON.
func (p Pattern) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses with ParsePattern.
func (p *Pattern) UnmarshalText(b []byte) error {
	parsed, err := ParsePattern(string(b))
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// ConstraintSet is a list of patterns; a key is allowed when any pattern
// matches it. The empty set allows nothing.
type ConstraintSet []Pattern

// Match reports whether some pattern in c matches k.
func (c ConstraintSet) Match(k StateKey) bool {
	for _, p := range c {
		if p.Match(k) {
			return true
		}
	}
	return false
}

// Overlaps reports whether some state key is allowed by both c and o.
func (c ConstraintSet) Overlaps(o ConstraintSet) bool {
	for _, a := range c {
		for _, b := range o {
			if Overlap(a, b) {
				return true
			}
		}
	}
	return false
}

// Encode appends list<pattern>.
func (c ConstraintSet) Encode(w *enc.Writer) {
	w.U32(uint32(len(c)))
	for _, p := range c {
		p.Encode(w)
	}
}

// DecodeConstraintSet reads what Encode writes (at most MaxPatterns
// patterns); errors are recorded on r. An empty set decodes as nil.
func DecodeConstraintSet(r *enc.Reader) ConstraintSet {
	n := r.Count(MaxPatterns, "patterns")
	if n == 0 {
		return nil
	}
	c := make(ConstraintSet, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		c = append(c, DecodePattern(r))
	}
	if r.Err() != nil {
		return nil
	}
	return c
}

func appendHashOrAny(b []byte, wild bool, h *Hash) []byte {
	if wild {
		return append(b, '*')
	}
	return hex.AppendEncode(b, h[:])
}

func parseHashOrAny(s, what string) (bool, Hash, error) {
	if s == "*" {
		return true, Hash{}, nil
	}
	h, err := parseHash(s, what)
	return false, h, err
}
