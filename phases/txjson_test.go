package phases

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/internal/inputfile/badfile"
)

func TestJSONRoundTrip(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	tx := signed(t, sampleTx(t, a, b), b) // signer 1 not signed yet
	j, err := tx.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseJSON(bytes.NewReader(j), "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), tx.Encode()) {
		t.Fatalf("JSON round trip changed the transaction:\n%s", j)
	}
	if !strings.Contains(string(j), `"signatures":["",`) {
		t.Fatalf("missing signature not shown as empty: %s", j)
	}
}

func TestJSONCodeFilesAndText(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "calc.lua"), []byte("return {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := testKey(t, 1)
	src := `{"nonce": 3, "gas_limit": 1000, "read": [], "write": ["*/*/*/*"],
	  "lookup": "return {}", "calculation_file": "calc.lua", "extradata_text": "hi there",
	  "signers": ["` + a.Public().String() + `"]}`
	tx, err := ParseJSON(strings.NewReader(src), dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(tx.Calculation) != "return {}\n" || string(tx.Extradata) != "hi there" || tx.Nonce != 3 ||
		len(tx.Write) != 1 || tx.Write[0].String() != "*/*/*/*" || tx.Signers[0] != a.Public() {
		t.Fatalf("parsed %+v", tx)
	}
	if _, err := ParseJSON(strings.NewReader(src), ""); err == nil ||
		err.Error() != "phases: transaction JSON: calculation_file: file references are not allowed here" {
		t.Fatalf("file reference without a folder: %v", err)
	}
}

// TestJSONCodeFilesStayInTheFolder: a transaction file handed over by
// someone else must not make its signer commit code from outside the
// file's folder, through "..", an absolute path or a symbolic link; nor
// read a named pipe or an oversize file.
func TestJSONCodeFilesStayInTheFolder(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "a", "b", "tx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(top, "outside.lua")
	if err := os.WriteFile(outside, []byte("return {}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.lua")); err != nil {
		t.Fatal(err)
	}
	badfile.Pipe(t, filepath.Join(dir, "pipe.lua"))
	if err := os.WriteFile(filepath.Join(dir, "big.lua"), make([]byte, MaxCode+1), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := testKey(t, 1).Public().String()
	for file, want := range map[string]string{
		"../../../outside.lua": "calculation_file: ../../../outside.lua: resolves outside its folder",
		outside:                "calculation_file: " + outside + ": resolves outside its folder",
		"link.lua":             "calculation_file: link.lua: resolves outside its folder",
		"pipe.lua":             "calculation_file: pipe.lua: not a regular file (a named pipe)",
		"big.lua":              "calculation_file: big.lua: too large: 65537 bytes, the limit is 65536",
	} {
		src := `{"nonce": 1, "gas_limit": 1000, "calculation_file": "` + file + `", "signers": ["` + pub + `"]}`
		_, err := ParseJSON(strings.NewReader(src), dir)
		if err == nil || err.Error() != "phases: transaction JSON: "+want {
			t.Errorf("%s: %v\nwant %s", file, err, want)
		}
	}
}

func TestJSONRefusals(t *testing.T) {
	a := testKey(t, 1)
	pub := a.Public().String()
	base := `"nonce": 1, "gas_limit": 1000, "read": [], "write": [], "signers": ["` + pub + `"]`
	cases := []struct {
		name, json, want string
	}{
		{"unknown field", `{` + base + `, "fee": 1}`, `json: unknown field "fee"`},
		{"trailing", `{` + base + `} {}`, "trailing data after the object"},
		{"not an object", `[1]`, "json: cannot unmarshal array into Go value of type phases.txJSON"},
		{"truncated", `{` + base, "unexpected EOF"},
		{"negative nonce", `{"nonce": -1}`, "json: cannot unmarshal number -1 into Go struct field txJSON.nonce of type uint64"},
		{"bad pattern", `{"read": ["nope"]}`, `notes: pattern: 1 parts, want 4 separated by "/"`},
		{"bad signer", `{"nonce": 1, "gas_limit": 1, "signers": ["abc"]}`,
			"signer 1: keys: public key: 3 base64 characters, want 44 (32 bytes)"},
		{"bad extradata", `{` + base + `, "extradata": "!!"}`, "extradata: not standard base64: illegal base64 data at input byte 0"},
		{"both extradata", `{` + base + `, "extradata": "", "extradata_text": ""}`, `both "extradata" and "extradata_text" given`},
		{"both lookup", `{` + base + `, "lookup": "", "lookup_file": "x.lua"}`, `both "lookup" and "lookup_file" given`},
		{"absolute path", `{` + base + `, "lookup_file": "/etc/passwd"}`, `lookup_file: /etc/passwd: resolves outside its folder`},
		{"empty path", `{` + base + `, "lookup_file": ""}`, `lookup_file: empty path`},
		{"gas zero", `{"nonce": 1, "gas_limit": 0, "signers": []}`, "gas limit 0 is outside 1..100000000"},
		{"wrong id", `{"id": "00", ` + base + `}`, `"id" 00 does not match the transaction's ID `},
		{"bad signature", `{` + base + `, "signatures": ["AAAA"]}`, "signature 1: keys: signature: 4 base64 characters, want 88 (64 bytes)"},
		{"code too long", `{` + base + `, "lookup": "` + strings.Repeat("x", MaxCode+1) + `"}`, "lookup code: length 65537 exceeds limit 65536"},
		{"field twice", `{` + base + `, "lookup": "return {}", "lookup": "return {'x'}"}`, `field "lookup" given twice`},
		{"field in other case", `{` + base + `, "LOOKUP": "return {}"}`, `json: unknown field "LOOKUP"`},
		{"float nonce", `{"nonce": 1.5}`, "json: cannot unmarshal number 1.5 into Go struct field txJSON.nonce of type uint64"},
		{"nonce past 2^64", `{"nonce": 18446744073709551616}`, "json: cannot unmarshal number 18446744073709551616 into Go struct field txJSON.nonce of type uint64"},
		{"null nonce", `{"nonce": null, "gas_limit": 1000, "read": [], "write": [], "signers": ["` + pub + `"]}`,
			`field "nonce" is null: give a value or leave the field out`},
		{"null gas", `{"nonce": 1, "gas_limit": null, "signers": ["` + pub + `"]}`, `field "gas_limit" is null`},
		{"null read", `{"nonce": 1, "gas_limit": 1000, "read": null, "signers": ["` + pub + `"]}`, `field "read" is null`},
		{"null write", `{"nonce": 1, "gas_limit": 1000, "write": null, "signers": ["` + pub + `"]}`, `field "write" is null`},
		{"null pattern", `{"nonce": 1, "gas_limit": 1000, "read": [null], "signers": ["` + pub + `"]}`, `field "read" holds a null`},
		{"null lookup", `{` + base + `, "lookup": null}`, `field "lookup" is null`},
		{"null calculation_file", `{` + base + `, "calculation_file": null}`, `field "calculation_file" is null`},
		{"null extradata", `{` + base + `, "extradata_text": null}`, `field "extradata_text" is null`},
		{"null signers", `{"nonce": 1, "gas_limit": 1000, "signers": null}`, `field "signers" is null`},
		{"null signer", `{"nonce": 1, "gas_limit": 1000, "signers": [null]}`, `field "signers" holds a null`},
		{"null signature", `{` + base + `, "signatures": [null]}`, `field "signatures" holds a null`},
		{"null id", `{"id": null, ` + base + `}`, `field "id" is null`},
		{"fee note alone", `{` + base + `, "fee_note": "/` + strings.Repeat("00", 32) + `/` + strings.Repeat("00", 32) + `/6b"}`, `"fee_note" and "gas_price" go together`},
		{"gas price alone", `{` + base + `, "gas_price": 2}`, `"fee_note" and "gas_price" go together`},
		{"bad fee note", `{` + base + `, "fee_note": "nope", "gas_price": 2}`, `notes: state key`},
		{"null gas price", `{` + base + `, "gas_price": null}`, `field "gas_price" is null`},
		{"oversize", `{` + base + `, "lookup": "` + strings.Repeat("x", MaxTxJSON) + `"}`, "larger than 4194304 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJSON(strings.NewReader(tc.json), t.TempDir())
			want := "phases: transaction JSON: " + tc.want
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("got %v\nwant %q", err, want)
			}
		})
	}
}

func FuzzParseJSON(f *testing.F) {
	a := testKey(f, 1)
	j, _ := signed(f, sampleTx(f, a), a).MarshalJSON()
	f.Add(j)
	f.Add([]byte(`{"nonce": 1, "gas_limit": 5, "read": ["*/*/*/*"], "write": [], "extradata_text": "x", "signers": []}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := ParseJSON(bytes.NewReader(b), "")
		if err != nil {
			return
		}
		back, err := DecodeTx(tx.Encode())
		if err != nil {
			t.Fatalf("accepted JSON gives an undecodable transaction: %v", err)
		}
		if back.ID() != tx.ID() {
			t.Fatal("ID changed through the binary form")
		}
	})
}
