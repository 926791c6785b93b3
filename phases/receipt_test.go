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

// paidReceipt is an accepted receipt with a fee and labelled outputs.
func paidReceipt() *Receipt {
	n := notes.Note{Application: notes.Hash{1}, Owner: notes.Hash{2}, Key: []byte("k"), Value: []byte("v")}
	ref := refOf(&n)
	return &Receipt{
		TxID: notes.Hash{9}, Status: Accepted, Gas: Gas{Lookup: 10, Calculation: 20, Validity: 30},
		Outputs: []NoteRef{ref, ref, ref},
		Fee:     &FeePaid{Price: 2, Gas: 60, Amount: 120, Note: ref, Paid: ref, Change: &ref},
		Labels:  []OutputLabel{{1, "change"}, {3, "pay.to:x-1_"}},
	}
}

// TestReceiptFeeAndLabels: a receipt with a fee or labels is version 2 and
// round-trips, in binary and JSON; one with neither keeps version 1.
func TestReceiptFeeAndLabels(t *testing.T) {
	if b := sampleReceipt().Encode(); b[0] != ReceiptVersion {
		t.Fatalf("a receipt without fee or labels is version %d", b[0])
	}
	for _, r := range []*Receipt{paidReceipt(), func() *Receipt { r := paidReceipt(); r.Labels = nil; r.Fee.Change = nil; return r }(),
		func() *Receipt { r := paidReceipt(); r.Fee = nil; return r }()} {
		b := r.Encode()
		back, err := DecodeReceipt(b)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != ReceiptVersionFee || !bytes.Equal(back.Encode(), b) {
			t.Fatalf("version %d, round trip %v", b[0], bytes.Equal(back.Encode(), b))
		}
	}
	j, err := json.Marshal(paidReceipt())
	if err != nil {
		t.Fatal(err)
	}
	key := "/0100000000000000000000000000000000000000000000000000000000000000/0200000000000000000000000000000000000000000000000000000000000000/6b"
	ref := `{"id":"3dd9c613940d667f94af0bfbcf28aac1fd98c6ef1d5c4fc0e97337346b83b875","key":"` + key + `"`
	for _, want := range []string{
		`"outputs":[` + ref + `,"label":"change"},` + ref + `},` + ref + `,"label":"pay.to:x-1_"}]`,
		`"fee":{"gas_price":2,"gas":60,"amount":120,"note":` + ref + `},"paid":` + ref + `},"change":` + ref + `}}`,
	} {
		if !strings.Contains(string(j), want) {
			t.Fatalf("JSON %s\nlacks %s", j, want)
		}
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
		{"version 2 with neither fee nor labels", append(set(0, 2), 0, 0, 0, 0, 0), "version 2 receipt with neither a fee nor labels (version 1 is its encoding)"},
		{"label past the outputs", func() []byte { r := paidReceipt(); r.Labels[1].Output = 4; return r.Encode() }(), "label 2 names output 4 of 3"},
		{"labels out of order", func() []byte { r := paidReceipt(); r.Labels[0].Output = 3; return r.Encode() }(), "label 2 is out of output order"},
		{"label repeats", func() []byte { r := paidReceipt(); r.Labels[1].Label = "change"; return r.Encode() }(), `label "change" repeats`},
		{"bad label", func() []byte { r := paidReceipt(); r.Labels[1].Label = "a b"; return r.Encode() }(), `label "a b" holds a character outside A-Z a-z 0-9 _ . : -`},
		{"fee does not add up", func() []byte { r := paidReceipt(); r.Fee.Amount++; return r.Encode() }(), "fee 60 × 2 = 121 does not add up"},
		{"fee flag", func() []byte {
			r := paidReceipt()
			r.Fee, r.Labels = nil, []OutputLabel{{1, "x"}}
			b := r.Encode()
			b[len(b)-(1+4+4+4+1)] = 2 // the fee flag before the label list
			return b
		}(), "boolean byte 2 is not 0 or 1"},
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
	f.Add(paidReceipt().Encode())
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
