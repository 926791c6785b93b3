package notes

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
)

var (
	appHex   = "ab" + strings.Repeat("00", 30) + "ef"
	ownerHex = "01" + strings.Repeat("00", 30) + "23"
)

func TestStateKeyString(t *testing.T) {
	var app, owner Hash
	app[0], app[31], owner[0], owner[31] = 0xab, 0xef, 0x01, 0x23
	cases := []struct {
		k    StateKey
		want string
	}{
		{StateKey{Application: app, Owner: owner, Key: []byte("key")}, "/" + appHex + "/" + ownerHex + "/6b6579"},
		{StateKey{Application: app, Owner: owner}, "/" + appHex + "/" + ownerHex + "/"},
		{StateKey{Provenance: [][]byte{{0xa}, {0xb, 0xc}}, Application: app, Owner: owner, Key: []byte{0}}, "0a,0b0c/" + appHex + "/" + ownerHex + "/00"},
	}
	for _, c := range cases {
		if got := c.k.String(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
		back, err := ParseStateKey(c.want)
		if err != nil {
			t.Fatalf("parse %s: %v", c.want, err)
		}
		if !back.Equal(c.k) || back.String() != c.want {
			t.Errorf("parse %s gave %+v", c.want, back)
		}
	}
}

func TestParseStateKeyRefusals(t *testing.T) {
	tail := "/" + appHex + "/" + ownerHex + "/6b"
	cases := []struct{ in, want string }{
		{"", "1 parts, want 4 separated by \"/\""},
		{"/" + appHex + "/" + ownerHex, "3 parts, want 4 separated by \"/\""},
		{tail + "/", "5 parts, want 4 separated by \"/\""},
		{"AB" + tail, "provenance entry 0: character 'A' is not lower-case hex"},
		{"abc" + tail, "provenance entry 0: odd number of hex digits (3)"},
		{",ab" + tail, "provenance entry 0 is empty"},
		{"ab," + tail, "provenance entry 1 is empty"},
		{"ab,,cd" + tail, "provenance entry 1 is empty"},
		{"*" + tail, "provenance entry 0: odd number of hex digits (1)"},
		{strings.Repeat("aa,", 16) + "aa" + tail, "provenance: count 17 exceeds limit 16"},
		{strings.Repeat("aa", 65) + tail, "provenance entry 0: length 65 exceeds limit 64"},
		{"/" + appHex[2:] + "/" + ownerHex + "/", "application: 62 hex digits, want 64"},
		{"/" + appHex + "00/" + ownerHex + "/", "application: 66 hex digits, want 64"},
		{"/" + strings.ToUpper(appHex) + "/" + ownerHex + "/", "application: character 'A' is not lower-case hex"},
		{"/" + appHex + "/" + ownerHex[:63] + "g/", "owner: character 'g' is not lower-case hex"},
		{"/" + appHex + "/*/", "owner: 1 hex digits, want 64"},
		{"/" + appHex + "/" + ownerHex + "/6B", "key: character 'B' is not lower-case hex"},
		{"/" + appHex + "/" + ownerHex + "/6b6", "key: odd number of hex digits (3)"},
		{"/" + appHex + "/" + ownerHex + "/6b*", "key: odd number of hex digits (3)"},
		{"/" + appHex + "/" + ownerHex + "/ 6b", "key: odd number of hex digits (3)"},
		{"/" + appHex + "/" + ownerHex + "/" + strings.Repeat("00", MaxKey+1), "key: length 1025 exceeds limit 1024"},
	}
	for _, c := range cases {
		k, err := ParseStateKey(c.in)
		if want := "notes: state key: " + c.want; err == nil || err.Error() != want {
			t.Errorf("ParseStateKey(%.40q...) = %v, want %q", c.in, err, want)
		}
		if !k.Equal(StateKey{}) {
			t.Errorf("refused parse returned %+v", k)
		}
	}
}

func TestStateKeyEqual(t *testing.T) {
	a := StateKey{Provenance: [][]byte{{1}}, Key: []byte{}}
	if !a.Equal(StateKey{Provenance: [][]byte{{1}}}) {
		t.Error("empty and nil key differ")
	}
	if (StateKey{Provenance: [][]byte{}}).Equal(a) || a.Equal(StateKey{Provenance: [][]byte{{1}, {1}}}) {
		t.Error("different provenance compares equal")
	}
	if a.Equal(StateKey{Provenance: [][]byte{{1}}, Owner: Hash{1}}) || a.Equal(StateKey{Provenance: [][]byte{{1}}, Application: Hash{1}}) {
		t.Error("different hashes compare equal")
	}
}

func TestStateKeyJSON(t *testing.T) {
	k := goldenNote().StateKey()
	b, err := json.Marshal(map[string]StateKey{"at": k})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"at":"` + goldenStateKey + `"}`; string(b) != want {
		t.Fatalf("json %s, want %s", b, want)
	}
	var back map[string]StateKey
	if err := json.Unmarshal(b, &back); err != nil || !back["at"].Equal(k) {
		t.Fatalf("unmarshal: %v %+v", err, back)
	}
	if err := json.Unmarshal([]byte(`"AB//"`), new(StateKey)); err == nil || !strings.Contains(err.Error(), "notes: state key: 3 parts") {
		t.Fatalf("bad JSON state key: %v", err)
	}
}

// TestStorageOrder pins the documented scan order, the byte order of
// String(): local state (empty provenance) comes first, and a provenance ID
// sorts after a longer chain that starts with it and before a longer ID.
func TestStorageOrder(t *testing.T) {
	at := func(key string, prov ...string) StateKey {
		k := StateKey{Application: Hash{0xab}, Owner: Hash{0x01}, Key: []byte(key)}
		for _, p := range prov {
			k.Provenance = append(k.Provenance, []byte(p))
		}
		return k
	}
	keys := []StateKey{at("", "\xab"), at("", "\xab", "\xcd"), at("k"), at("", "\xab\xcd"), at(""), at("", "\x0a")}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	want := []StateKey{at(""), at("k"), at("", "\x0a"), at("", "\xab", "\xcd"), at("", "\xab"), at("", "\xab\xcd")}
	for i := range want {
		if !keys[i].Equal(want[i]) {
			t.Fatalf("position %d: %s, want %s", i, keys[i], want[i])
		}
	}
}
