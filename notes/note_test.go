package notes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/internal/enc"
)

// goldenNote is the vector written down in docs/formats/notes.md.
func goldenNote() *Note {
	return &Note{
		Provenance:  [][]byte{[]byte("inst-b"), []byte("inst-a")},
		Application: sha256.Sum256([]byte("return true")),
		Owner:       sha256.Sum256([]byte("return false")),
		Key:         []byte("key"),
		Value:       []byte("value"),
	}
}

const (
	goldenEncoding = "01" + // version
		"00000002" + "00000006696e73742d62" + "00000006696e73742d61" + // provenance
		"7e4fe8351c22e2182278317a8998f400007540eea7aa5b52c3e50f9d4b0bb799" + // application
		"19921ccfad14c1deb04f7bda6247bf6ad4abe774de85b6003dea4e6b7774dd5c" + // owner
		"000000036b6579" + // key
		"0000000576616c7565" // value
	goldenID       = "9d97b1a51140ee2d5135d3569c851f6acde9dc512f41e9f7b066dc23df584dcf"
	goldenStateKey = "696e73742d62,696e73742d61" +
		"/7e4fe8351c22e2182278317a8998f400007540eea7aa5b52c3e50f9d4b0bb799" +
		"/19921ccfad14c1deb04f7bda6247bf6ad4abe774de85b6003dea4e6b7774dd5c" +
		"/6b6579"
)

func TestGoldenNote(t *testing.T) {
	n := goldenNote()
	if got := hex.EncodeToString(n.Encode()); got != goldenEncoding {
		t.Fatalf("encoding\n got %s\nwant %s", got, goldenEncoding)
	}
	id := n.ID()
	if got := hex.EncodeToString(id[:]); got != goldenID {
		t.Fatalf("ID = %s, want %s", got, goldenID)
	}
	if got := n.StateKey().String(); got != goldenStateKey {
		t.Fatalf("state key = %s, want %s", got, goldenStateKey)
	}
}

func TestNoteRoundTrip(t *testing.T) {
	full := make([][]byte, MaxProvenance)
	for i := range full {
		full[i] = bytes.Repeat([]byte{byte(i + 1)}, MaxProvenanceID)
	}
	cases := map[string]*Note{
		"golden":                     goldenNote(),
		"local, empty key and value": {Application: Hash{1}, Owner: Hash{2}},
		"at every limit": {
			Provenance: full, Application: Hash{3}, Owner: Hash{4},
			Key: bytes.Repeat([]byte{'k'}, MaxKey), Value: bytes.Repeat([]byte{'v'}, MaxValue),
		},
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			if err := n.Validate(); err != nil {
				t.Fatal(err)
			}
			b := n.Encode()
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Encode(), b) {
				t.Fatal("re-encoding differs")
			}
			if !got.StateKey().Equal(n.StateKey()) || !bytes.Equal(got.Value, n.Value) || got.ID() != n.ID() {
				t.Fatalf("decoded %+v, want %+v", got, n)
			}
		})
	}
}

func TestDecodeTruncatedAtEveryByte(t *testing.T) {
	b := goldenNote().Encode()
	for i := 0; i < len(b); i++ {
		_, err := Decode(b[:i])
		if !errors.Is(err, enc.ErrTruncated) || err.Error() != "notes: decode: truncated input" {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
}

func TestDecodeRefusals(t *testing.T) {
	golden := goldenNote().Encode()
	withVersion := func(v byte) []byte {
		b := bytes.Clone(golden)
		b[0] = v
		return b
	}
	tooMany := make([][]byte, MaxProvenance+1)
	for i := range tooMany {
		tooMany[i] = []byte{1}
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"trailing byte", append(bytes.Clone(golden), 0), "notes: decode: 1 trailing bytes"},
		{"version 0", withVersion(0), "notes: decode: unknown version 0"},
		{"version 2", withVersion(2), "notes: decode: unknown version 2"},
		{"oversize key", (&Note{Key: make([]byte, MaxKey+1)}).Encode(), "notes: decode: key: length 1025 exceeds limit 1024"},
		{"oversize value", (&Note{Value: make([]byte, MaxValue+1)}).Encode(), "notes: decode: value: length 65537 exceeds limit 65536"},
		{"too many provenance entries", (&Note{Provenance: tooMany}).Encode(), "notes: decode: provenance: count 17 exceeds limit 16"},
		{"oversize provenance entry", (&Note{Provenance: [][]byte{make([]byte, MaxProvenanceID+1)}}).Encode(), "notes: decode: provenance entry: length 65 exceeds limit 64"},
		{"empty provenance entry", (&Note{Provenance: [][]byte{{1}, {}}}).Encode(), "notes: decode: provenance entry 1 is empty"},
		{"length prefix near 2^32", hexBytes(t, "01"+"00000000"+strings.Repeat("00", 64)+"ffffffff"), "notes: decode: key: length 4294967295 exceeds limit 1024"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := Decode(c.in)
			if err == nil || err.Error() != c.want {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if n != nil {
				t.Fatal("refused decode returned a note")
			}
		})
	}
}

func TestValidateRefusals(t *testing.T) {
	tooMany := make([][]byte, MaxProvenance+1)
	for i := range tooMany {
		tooMany[i] = []byte{1}
	}
	cases := []struct {
		name string
		n    Note
		want string
	}{
		{"too many provenance entries", Note{Provenance: tooMany}, "notes: provenance: count 17 exceeds limit 16"},
		{"empty provenance entry", Note{Provenance: [][]byte{nil}}, "notes: provenance entry 0 is empty"},
		{"oversize provenance entry", Note{Provenance: [][]byte{{1}, make([]byte, 65)}}, "notes: provenance entry 1: length 65 exceeds limit 64"},
		{"oversize key", Note{Key: make([]byte, MaxKey+1)}, "notes: key: length 1025 exceeds limit 1024"},
		{"oversize value", Note{Value: make([]byte, MaxValue+1)}, "notes: value: length 65537 exceeds limit 65536"},
	}
	for _, c := range cases {
		if err := c.n.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestIDDependsOnEveryField(t *testing.T) {
	base := goldenNote().ID()
	changes := map[string]func(*Note){
		"provenance order": func(n *Note) { n.Provenance[0], n.Provenance[1] = n.Provenance[1], n.Provenance[0] },
		"provenance split": func(n *Note) { n.Provenance = [][]byte{[]byte("inst-binst-a")} },
		"application":      func(n *Note) { n.Application[31] ^= 1 },
		"owner":            func(n *Note) { n.Owner[0] ^= 1 },
		"key into value":   func(n *Note) { n.Key, n.Value = []byte("ke"), []byte("yvalue") },
		"value":            func(n *Note) { n.Value = nil },
	}
	for name, change := range changes {
		n := goldenNote()
		change(n)
		if n.ID() == base {
			t.Errorf("%s: ID unchanged", name)
		}
	}
}

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
