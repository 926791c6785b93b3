package notes

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/internal/enc"
)

// pat builds a pattern's text from its four parts.
func pat(prov, app, owner, key string) string {
	return prov + "/" + app + "/" + owner + "/" + key
}

func mustPattern(t testing.TB, s string) Pattern {
	t.Helper()
	p, err := ParsePattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustKey(t testing.TB, s string) StateKey {
	t.Helper()
	k, err := ParseStateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPatternTextRoundTrip(t *testing.T) {
	for _, s := range []string{
		"*/*/*/*",
		pat("", "*", "*", ""),
		pat("0a,0b0c", appHex, ownerHex, "6b6579"),
		pat("*", appHex, "*", "6b65*"),
		pat("*", "*", ownerHex, "00*"),
		goldenStateKey,
	} {
		p := mustPattern(t, s)
		if got := p.String(); got != s {
			t.Errorf("String(Parse(%s)) = %s", s, got)
		}
	}
}

func TestPatternBuilders(t *testing.T) {
	k := goldenNote().StateKey()
	cases := []struct {
		p    Pattern
		want string
	}{
		{AnyPattern(), "*/*/*/*"},
		{Pattern{}, pat("", strings.Repeat("0", 64), strings.Repeat("0", 64), "")},
		{ExactPattern(k), goldenStateKey},
		{PatternFromKeyPrefix(k), goldenStateKey + "*"},
		{AnyPattern().WithApplication(k.Application).WithKeyPrefix([]byte("k")), pat("*", hex.EncodeToString(k.Application[:]), "*", "6b*")},
		{AnyPattern().WithProvenance(nil).WithOwner(k.Owner).WithKey(nil), pat("", "*", hex.EncodeToString(k.Owner[:]), "")},
	}
	for _, c := range cases {
		if got := c.p.String(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
		if err := c.p.Validate(); err != nil {
			t.Errorf("%s: %v", c.want, err)
		}
	}
	bad := []struct {
		p    Pattern
		want string
	}{
		{AnyPattern().WithProvenance([][]byte{{}}), "notes: provenance entry 0 is empty"},
		{AnyPattern().WithKeyPrefix(make([]byte, MaxKey+1)), "notes: key: length 1025 exceeds limit 1024"},
	}
	for _, c := range bad {
		if err := c.p.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%.40s...) = %v, want %q", c.p, err, c.want)
		}
	}
}

func TestParsePatternRefusals(t *testing.T) {
	cases := []struct{ in, want string }{
		{"*/*/*", "3 parts, want 4 separated by \"/\""},
		{"*/*/*/*/*", "5 parts, want 4 separated by \"/\""},
		{pat("ab,*", "*", "*", "*"), "provenance entry 1: odd number of hex digits (1)"},
		{pat("**", "*", "*", "*"), "provenance entry 0: character '*' is not lower-case hex"},
		{pat("ab,", "*", "*", "*"), "provenance entry 1 is empty"},
		{pat("AB", "*", "*", "*"), "provenance entry 0: character 'A' is not lower-case hex"},
		{pat("*", "ab*", "*", "*"), "application: 3 hex digits, want 64"},
		{pat("*", strings.ToUpper(appHex), "*", "*"), "application: character 'A' is not lower-case hex"},
		{pat("*", "*", "", "*"), "owner: 0 hex digits, want 64"},
		{pat("*", "*", "*", "6b6*"), "key: odd number of hex digits (3)"},
		{pat("*", "*", "*", "*6bb"), "key: character '*' is not lower-case hex"},
		{pat("*", "*", "*", "6b*06b"), "key: character '*' is not lower-case hex"},
		{pat("*", "*", "*", "**"), "key: odd number of hex digits (1)"},
		{pat("*", "*", "*", "6B*"), "key: character 'B' is not lower-case hex"},
		{pat("*", "*", "*", strings.Repeat("00", MaxKey+1)+"*"), "key: length 1025 exceeds limit 1024"},
		{pat(strings.Repeat("aa,", MaxProvenance)+"aa", "*", "*", "*"), "provenance: count 17 exceeds limit 16"},
	}
	for _, c := range cases {
		_, err := ParsePattern(c.in)
		if want := "notes: pattern: " + c.want; err == nil || err.Error() != want {
			t.Errorf("ParsePattern(%.50q) = %v, want %q", c.in, err, want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	key := func(prov, key string) StateKey { return mustKey(t, pat(prov, appHex, ownerHex, key)) }
	otherApp := strings.Repeat("11", 32)
	cases := []struct {
		pattern string
		key     StateKey
		want    bool
	}{
		{"*/*/*/*", key("", ""), true},
		{"*/*/*/*", key("0a,0b", "6b6579"), true},
		{pat("", "*", "*", "*"), key("", "6b"), true},
		{pat("", "*", "*", "*"), key("0a", "6b"), false},
		{pat("0a", "*", "*", "*"), key("0a,0b", "6b"), false},
		{pat("0a,0b", "*", "*", "*"), key("0a,0b", "6b"), true},
		{pat("0b,0a", "*", "*", "*"), key("0a,0b", "6b"), false},
		{pat("0a0b", "*", "*", "*"), key("0a,0b", "6b"), false},
		{pat("*", appHex, "*", "*"), key("", ""), true},
		{pat("*", otherApp, "*", "*"), key("", ""), false},
		{pat("*", "*", ownerHex, "*"), key("", ""), true},
		{pat("*", "*", appHex, "*"), key("", ""), false},
		{pat("*", "*", "*", "6b65*"), key("", "6b6579"), true},
		{pat("*", "*", "*", "6b65*"), key("", "6b65"), true},
		{pat("*", "*", "*", "6b65*"), key("", "6b"), false},
		{pat("*", "*", "*", "6b65*"), key("", "6c6579"), false},
		{pat("*", "*", "*", "6b65"), key("", "6b65"), true},
		{pat("*", "*", "*", "6b65"), key("", "6b6579"), false},
		{pat("*", "*", "*", ""), key("", ""), true},
		{pat("*", "*", "*", ""), key("", "00"), false},
		{goldenStateKey, goldenNote().StateKey(), true},
	}
	for _, c := range cases {
		if got := mustPattern(t, c.pattern).Match(c.key); got != c.want {
			t.Errorf("%s matches %s: got %v", c.pattern, c.key, got)
		}
	}
}

func TestOverlapTable(t *testing.T) {
	otherApp := strings.Repeat("11", 32)
	cases := []struct {
		a, b string
		want bool
	}{
		{"*/*/*/*", "*/*/*/*", true},
		{"*/*/*/*", pat("0a", appHex, ownerHex, "6b"), true},
		// Provenance.
		{pat("", "*", "*", "*"), pat("0a", "*", "*", "*"), false},
		{pat("0a", "*", "*", "*"), pat("0a,0b", "*", "*", "*"), false},
		{pat("0a,0b", "*", "*", "*"), pat("0a,0b", "*", "*", "*"), true},
		{pat("*", "*", "*", "*"), pat("", "*", "*", "*"), true},
		// Hashes.
		{pat("*", appHex, "*", "*"), pat("*", otherApp, "*", "*"), false},
		{pat("*", appHex, "*", "*"), pat("*", "*", appHex, "*"), true},
		{pat("*", "*", ownerHex, "*"), pat("*", "*", otherApp, "*"), false},
		// Prefix against prefix.
		{pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6b65*"), true},
		{pat("*", "*", "*", "6b65*"), pat("*", "*", "*", "6b*"), true},
		{pat("*", "*", "*", "6b65*"), pat("*", "*", "*", "6b66*"), false},
		{pat("*", "*", "*", "6b65*"), pat("*", "*", "*", "6b65*"), true},
		// Prefix against exact.
		{pat("*", "*", "*", "6b65*"), pat("*", "*", "*", "6b65"), true},
		{pat("*", "*", "*", "6b65*"), pat("*", "*", "*", "6b6579"), true},
		{pat("*", "*", "*", "6b65*"), pat("*", "*", "*", "6b"), false},
		{pat("*", "*", "*", "6b"), pat("*", "*", "*", "6b65*"), false},
		{pat("*", "*", "*", ""), pat("*", "*", "*", "*"), true},
		// Exact against exact.
		{pat("*", "*", "*", "6b"), pat("*", "*", "*", "6b"), true},
		{pat("*", "*", "*", "6b"), pat("*", "*", "*", "6b00"), false},
		// Every part must overlap.
		{pat("0a", appHex, "*", "6b*"), pat("0a", otherApp, "*", "6b*"), false},
		{pat("0a", appHex, "*", "6b*"), pat("*", "*", ownerHex, "6b6b"), true},
	}
	for _, c := range cases {
		a, b := mustPattern(t, c.a), mustPattern(t, c.b)
		if got := Overlap(a, b); got != c.want {
			t.Errorf("Overlap(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// smallUniverse is every state key over a small alphabet, every pattern
// over it (5*3*3*14 of them), and for each pattern the set of keys it
// matches as a bitset over the universe.
func smallUniverse(t *testing.T) (universe []StateKey, patterns []Pattern, matches [][]uint64) {
	provs := [][][]byte{nil, {{1}}, {{2}}, {{1}, {2}}, {{2}, {1}}}
	hashes := []Hash{{1}, {2}, {3}}
	var keys [][]byte
	for _, k := range []string{"", "a", "b", "aa", "ab", "ba", "bb"} {
		keys = append(keys, []byte(k))
	}
	for _, a := range []string{"a", "b"} {
		for _, b := range []string{"aa", "ab", "ba", "bb"} {
			keys = append(keys, []byte(a+b))
		}
	}
	for _, p := range provs {
		for _, a := range hashes {
			for _, o := range hashes {
				for _, k := range keys {
					universe = append(universe, StateKey{Provenance: p, Application: a, Owner: o, Key: k})
				}
			}
		}
	}
	for _, p := range append([]Pattern{AnyPattern()}, provPatterns(provs[:4])...) {
		for _, a := range []Pattern{p, p.WithApplication(hashes[0]), p.WithApplication(hashes[1])} {
			for _, o := range []Pattern{a, a.WithOwner(hashes[0]), a.WithOwner(hashes[1])} {
				for _, k := range keys[:7] {
					patterns = append(patterns, o.WithKey(k), o.WithKeyPrefix(k))
				}
			}
		}
	}
	if len(patterns) != 5*3*3*14 {
		t.Fatalf("%d patterns", len(patterns))
	}
	matches = make([][]uint64, len(patterns))
	for i, p := range patterns {
		matches[i] = matchSet(universe, p)
	}
	return universe, patterns, matches
}

func matchSet(universe []StateKey, p Pattern) []uint64 {
	set := make([]uint64, (len(universe)+63)/64)
	for j, k := range universe {
		if p.Match(k) {
			set[j/64] |= 1 << (j % 64)
		}
	}
	return set
}

// TestOverlapAgreesWithWitnessSearch checks Overlap on every pair from the
// small universe against a search for a state key that both match, and
// checks that Prefix is a prefix of every matched key's String().
func TestOverlapAgreesWithWitnessSearch(t *testing.T) {
	universe, patterns, matches := smallUniverse(t)
	for i, p := range patterns {
		prefix := p.Prefix()
		for j, k := range universe {
			if matches[i][j/64]&(1<<(j%64)) != 0 && !strings.HasPrefix(k.String(), prefix) {
				t.Fatalf("%s matches %s but Prefix is %s", p, k, prefix)
			}
		}
	}
	for i := range patterns {
		for j := range patterns {
			witness := false
			for w := range matches[i] {
				if matches[i][w]&matches[j][w] != 0 {
					witness = true
					break
				}
			}
			if got := Overlap(patterns[i], patterns[j]); got != witness {
				t.Fatalf("Overlap(%s, %s) = %v, witness search says %v", patterns[i], patterns[j], got, witness)
			}
		}
	}
}

// TestIntersectAgreesWithBruteForce checks Intersect on every pair from the
// small universe: the intersection matches exactly the keys both match, and
// it exists exactly when the patterns overlap.
func TestIntersectAgreesWithBruteForce(t *testing.T) {
	universe, patterns, matches := smallUniverse(t)
	for i, a := range patterns {
		for j, b := range patterns {
			both := make([]uint64, len(matches[i]))
			empty := true
			for w := range both {
				both[w] = matches[i][w] & matches[j][w]
				empty = empty && both[w] == 0
			}
			p, ok := Intersect(a, b)
			if ok != !empty || ok != Overlap(a, b) {
				t.Fatalf("Intersect(%s, %s) ok = %v; a key both match exists: %v", a, b, ok, !empty)
			}
			if !ok {
				if p.String() != (Pattern{}).String() {
					t.Fatalf("Intersect(%s, %s) = %s with false, want the zero pattern", a, b, p)
				}
				continue
			}
			if got := matchSet(universe, p); !slices.Equal(got, both) {
				t.Fatalf("Intersect(%s, %s) = %s matches other keys than both do", a, b, p)
			}
			if q, _ := Intersect(b, a); q.String() != p.String() {
				t.Fatalf("Intersect(%s, %s) = %s but swapped gives %s", a, b, p, q)
			}
		}
	}
}

func TestIntersectTable(t *testing.T) {
	const app, owner = "0101010101010101010101010101010101010101010101010101010101010101", "0202020202020202020202020202020202020202020202020202020202020202"
	cases := []struct{ a, b, want string }{
		{"*/*/*/*", "*/*/*/*", "*/*/*/*"},
		{"*/*/*/*", pat("0a", app, owner, "6b"), pat("0a", app, owner, "6b")},
		{pat("0a", "*", "*", "*"), pat("*", app, "*", "6b*"), pat("0a", app, "*", "6b*")},
		{pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6b6c*"), pat("*", "*", "*", "6b6c*")},
		{pat("*", "*", "*", "6b6c*"), pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6b6c*")},
		{pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6b6c"), pat("*", "*", "*", "6b6c")},
		{pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6b"), pat("*", "*", "*", "6b")},
		{pat("*", "*", "*", "6b*"), pat("*", "*", "*", "6c*"), ""},
		{pat("*", "*", "*", "6b6c*"), pat("*", "*", "*", "6b"), ""},
		{pat("*", "*", "*", "6b"), pat("*", "*", "*", "6b6c"), ""},
		{pat("0a", "*", "*", "*"), pat("0b", "*", "*", "*"), ""},
		{pat("0a", "*", "*", "*"), pat("0a,0b", "*", "*", "*"), ""},
		{pat("", "*", "*", "*"), pat("0a", "*", "*", "*"), ""},
		{pat("*", app, "*", "*"), pat("*", owner, "*", "*"), ""},
		{pat("*", "*", app, "*"), pat("*", "*", owner, "*"), ""},
	}
	for _, c := range cases {
		p, ok := Intersect(mustPattern(t, c.a), mustPattern(t, c.b))
		got := ""
		if ok {
			got = p.String()
		}
		if got != c.want {
			t.Errorf("Intersect(%s, %s) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func provPatterns(provs [][][]byte) []Pattern {
	var out []Pattern
	for _, p := range provs {
		out = append(out, AnyPattern().WithProvenance(p))
	}
	return out
}

func TestPatternPrefix(t *testing.T) {
	cases := []struct{ pattern, want string }{
		{"*/*/*/*", ""},
		{pat("", "*", "*", "*"), "/"},
		{pat("0a,0b", appHex, "*", "6b*"), "0a,0b/" + appHex + "/"},
		{pat("0a", appHex, ownerHex, "*"), "0a/" + appHex + "/" + ownerHex + "/"},
		{pat("0a", appHex, ownerHex, "6b65*"), "0a/" + appHex + "/" + ownerHex + "/6b65"},
		{pat("0a", appHex, ownerHex, "6b65"), "0a/" + appHex + "/" + ownerHex + "/6b65"},
		{pat("*", appHex, ownerHex, "6b65"), ""},
	}
	for _, c := range cases {
		if got := mustPattern(t, c.pattern).Prefix(); got != c.want {
			t.Errorf("Prefix(%s) = %q, want %q", c.pattern, got, c.want)
		}
	}
}

// goldenPatternHex is the binary form of goldenPattern, written down in
// docs/formats/notes.md.
const (
	goldenPattern    = "696e73742d62,696e73742d61/*/19921ccfad14c1deb04f7bda6247bf6ad4abe774de85b6003dea4e6b7774dd5c/6b65*"
	goldenPatternHex = "00" + "00000002" + "00000006696e73742d62" + "00000006696e73742d61" +
		"01" +
		"00" + "19921ccfad14c1deb04f7bda6247bf6ad4abe774de85b6003dea4e6b7774dd5c" +
		"01" + "000000026b65"
)

func TestPatternBinary(t *testing.T) {
	w := enc.NewWriter(0)
	mustPattern(t, goldenPattern).Encode(w)
	if got := hex.EncodeToString(w.Bytes()); got != goldenPatternHex {
		t.Fatalf("encoding\n got %s\nwant %s", got, goldenPatternHex)
	}
	for _, s := range []string{"*/*/*/*", pat("", appHex, ownerHex, ""), goldenPattern, goldenStateKey} {
		w := enc.NewWriter(0)
		mustPattern(t, s).Encode(w)
		r := enc.NewReader(w.Bytes())
		p := DecodePattern(r)
		if err := r.Finish(); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if p.String() != s {
			t.Fatalf("decoded %s, want %s", p, s)
		}
	}
}

func TestDecodePatternRefusals(t *testing.T) {
	golden := hexBytes(t, goldenPatternHex)
	for i := 0; i < len(golden); i++ {
		r := enc.NewReader(golden[:i])
		if p := DecodePattern(r); r.Err() == nil || r.Err().Error() != "truncated input" || p.String() != (Pattern{}).String() {
			t.Fatalf("prefix of %d bytes: %v, %s", i, r.Err(), p)
		}
	}
	cases := []struct{ name, hex, want string }{
		{"flag 2", "02", "boolean byte 2 is not 0 or 1"},
		{"empty provenance entry", "00" + "00000001" + "00000000", "provenance entry 0 is empty"},
		{"oversize provenance entry", "00" + "00000001" + "00000041", "provenance entry: length 65 exceeds limit 64"},
		{"too many provenance entries", "00" + "00000011", "provenance: count 17 exceeds limit 16"},
		{"oversize key", "01" + "01" + "01" + "01" + "00000401", "key: length 1025 exceeds limit 1024"},
		{"trailing byte", "01" + "01" + "01" + "01" + "00000000" + "00", "1 trailing bytes"},
	}
	for _, c := range cases {
		r := enc.NewReader(hexBytes(t, c.hex))
		DecodePattern(r)
		if err := r.Finish(); err == nil || err.Error() != c.want {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestConstraintSet(t *testing.T) {
	mine := ConstraintSet{mustPattern(t, pat("*", appHex, "*", "6b*")), mustPattern(t, pat("", "*", "*", "00"))}
	cases := []struct {
		key  string
		want bool
	}{
		{pat("0a", appHex, ownerHex, "6b65"), true},
		{pat("", ownerHex, ownerHex, "00"), true},
		{pat("0a", ownerHex, ownerHex, "00"), false},
		{pat("", ownerHex, ownerHex, "6b"), false},
	}
	for _, c := range cases {
		if got := mine.Match(mustKey(t, c.key)); got != c.want {
			t.Errorf("Match(%s) = %v", c.key, got)
		}
	}
	if (ConstraintSet{}).Match(goldenNote().StateKey()) || (ConstraintSet{}).Overlaps(ConstraintSet{AnyPattern()}) {
		t.Error("empty set allows something")
	}
	if !mine.Overlaps(ConstraintSet{mustPattern(t, pat("*", "*", "*", "0000")), mustPattern(t, pat("0a", "*", ownerHex, "*"))}) {
		t.Error("second pattern overlaps the first of mine")
	}
	if mine.Overlaps(ConstraintSet{mustPattern(t, pat("0a", "*", "*", "00")), mustPattern(t, pat("*", ownerHex, "*", "6b*"))}) {
		t.Error("disjoint sets overlap")
	}

	w := enc.NewWriter(0)
	mine.Encode(w)
	r := enc.NewReader(w.Bytes())
	back := DecodeConstraintSet(r)
	if err := r.Finish(); err != nil || len(back) != 2 || back[0].String() != mine[0].String() || back[1].String() != mine[1].String() {
		t.Fatalf("round trip: %v %v", err, back)
	}

	w = enc.NewWriter(0)
	w.U32(MaxPatterns + 1)
	r = enc.NewReader(w.Bytes())
	if DecodeConstraintSet(r) != nil || r.Finish() == nil || r.Finish().Error() != "patterns: count 257 exceeds limit 256" {
		t.Fatalf("oversize set: %v", r.Finish())
	}
	r = enc.NewReader(hexBytes(t, "00000002"+"01010101"+"00000000"+"02"))
	if DecodeConstraintSet(r) != nil || r.Finish() == nil || r.Finish().Error() != "boolean byte 2 is not 0 or 1" {
		t.Fatalf("bad second pattern: %v", r.Finish())
	}

	b, err := json.Marshal(mine)
	if want := `["*/` + appHex + `/*/6b*","/*/*/00"]`; err != nil || string(b) != want {
		t.Fatalf("json %s %v, want %s", b, err, want)
	}
	var fromJSON ConstraintSet
	if err := json.Unmarshal(b, &fromJSON); err != nil || len(fromJSON) != 2 || fromJSON[1].String() != mine[1].String() {
		t.Fatalf("json back: %v %v", err, fromJSON)
	}
	if err := json.Unmarshal([]byte(`["*/*/*"]`), &fromJSON); err == nil || err.Error() != `notes: pattern: 3 parts, want 4 separated by "/"` {
		t.Fatalf("bad JSON pattern: %v", err)
	}
}
