package phases

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
)

func sampleReceipt() *Receipt {
	n := notes.Note{Application: notes.Hash{1}, Owner: notes.Hash{2}, Key: []byte("k"), Value: []byte("v")}
	return &Receipt{
		TxID: notes.Hash{9}, Status: Refused, Phase: PhaseValidity,
		Predicate: Predicate{Role: RoleInput, Index: 1, Code: notes.Hash{2}},
		Reason:    "input 1 owner predicate 0200000000000000: returned false",
		Gas:       Gas{Lookup: 10, Calculation: 20, Validity: 30},
		Inputs:    []NoteRef{refOf(&n)}, Log: []string{"lookup: hello"},
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	r := sampleReceipt()
	b := r.Encode()
	back, err := DecodeReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), b) {
		t.Fatal("receipt did not round-trip")
	}
	j, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"tx":"0900000000000000000000000000000000000000000000000000000000000000","status":"refused","phase":"validity",` +
		`"predicate":{"role":"input","index":1,"code":"0200000000000000000000000000000000000000000000000000000000000000"},` +
		`"reason":"input 1 owner predicate 0200000000000000: returned false","gas":{"lookup":10,"calculation":20,"validity":30,"total":60},` +
		`"inputs":[{"id":"3dd9c613940d667f94af0bfbcf28aac1fd98c6ef1d5c4fc0e97337346b83b875","key":"/0100000000000000000000000000000000000000000000000000000000000000/0200000000000000000000000000000000000000000000000000000000000000/6b"}],` +
		`"outputs":[],"log":["lookup: hello"]}`
	if string(j) != want {
		t.Fatalf("JSON:\n%s\nwant\n%s", j, want)
	}
	if err := back.Err(); err == nil || err.Error() != "refused in validity: input 1 owner predicate 0200000000000000: returned false" {
		t.Fatalf("Err: %v", err)
	}
}

func TestDecodeReceiptRefusals(t *testing.T) {
	good := sampleReceipt().Encode()
	set := func(off int, v byte) []byte {
		b := append([]byte{}, good...)
		b[off] = v
		return b
	}
	accepted := &Receipt{Status: Accepted, Reason: "x"}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"version", set(0, 9), "unknown version 9"},
		{"status", set(33, 7), "unknown status 7"},
		{"phase", set(34, 6), "unknown phase 6"},
		{"role", set(35, 5), "unknown role 5"},
		{"accepted with a phase", set(33, 1), `status accepted with phase "validity"`},
		{"accepted with a reason", accepted.Encode(), "accepted receipt with a refusal"},
		{"trailing", append(append([]byte{}, good...), 1), "1 trailing bytes"},
		{"truncated", good[:40], "truncated input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeReceipt(tc.b)
			if err == nil || err.Error() != "phases: decode receipt: "+tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	if got := clip("abc\xffdef", 100); got != "abc\uFFFDdef" {
		t.Fatalf("invalid UTF-8 kept: %q", got)
	}
	got := clip(strings.Repeat("é", 600), MaxReason)
	if len(got) > MaxReason || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("clip gave %d bytes: %q…", len(got), got[:10])
	}
}

func FuzzDecodeReceipt(f *testing.F) {
	f.Add(sampleReceipt().Encode())
	f.Add((&Receipt{Status: Accepted}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReceipt(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatal("decoded receipt re-encodes differently")
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
	})
}
