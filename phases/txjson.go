package phases

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// MaxTxJSON bounds the JSON form of a transaction (code files it names are
// bounded separately by MaxCode).
const MaxTxJSON = 4 << 20

// txJSON is the JSON form documented in docs/formats/transactions.md.
type txJSON struct {
	ID              string          `json:"id,omitempty"`
	Nonce           uint64          `json:"nonce"`
	GasLimit        uint64          `json:"gas_limit"`
	FeeNote         *notes.StateKey `json:"fee_note,omitempty"`
	GasPrice        *uint64         `json:"gas_price,omitempty"`
	Read            []notes.Pattern `json:"read"`
	Write           []notes.Pattern `json:"write"`
	Lookup          *string         `json:"lookup,omitempty"`
	LookupFile      *string         `json:"lookup_file,omitempty"`
	Calculation     *string         `json:"calculation,omitempty"`
	CalculationFile *string         `json:"calculation_file,omitempty"`
	Extradata       *string         `json:"extradata,omitempty"`
	ExtradataText   *string         `json:"extradata_text,omitempty"`
	Signers         []string        `json:"signers"`
	Signatures      []string        `json:"signatures,omitempty"`
}

// MarshalJSON writes the self-contained JSON form: code inline, extradata in
// base64, the ID for reference.
func (tx *Tx) MarshalJSON() ([]byte, error) {
	id := tx.ID()
	lookup, calc := string(tx.Lookup), string(tx.Calculation)
	extra := base64.StdEncoding.EncodeToString(tx.Extradata)
	j := txJSON{
		ID: hex.EncodeToString(id[:]), Nonce: tx.Nonce, GasLimit: tx.GasLimit,
		Read: orEmpty(tx.Read), Write: orEmpty(tx.Write),
		Lookup: &lookup, Calculation: &calc, Extradata: &extra,
		Signers: make([]string, len(tx.Signers)),
	}
	if tx.Fee != nil {
		j.FeeNote, j.GasPrice = &tx.Fee.Note, &tx.Fee.Price
	}
	for i, s := range tx.Signers {
		j.Signers[i] = s.String()
	}
	for _, s := range tx.Signatures {
		if len(s) == 0 {
			j.Signatures = append(j.Signatures, "")
		} else {
			j.Signatures = append(j.Signatures, keys.FormatSignature(s))
		}
	}
	return json.Marshal(j)
}

func orEmpty(c notes.ConstraintSet) []notes.Pattern {
	if c == nil {
		return []notes.Pattern{}
	}
	return c
}

// ParseJSON reads the JSON form strictly: unknown fields, trailing data,
// input over MaxTxJSON, malformed keys, patterns or base64, and an "id" that
// differs from the computed one are refused. Code given as "lookup_file" or
// "calculation_file" is read from a path relative to dir, which must resolve
// inside dir (no "..", absolute path or symbolic link out of it); dir == ""
// refuses file references (for JSON that arrives over a network).
func ParseJSON(r io.Reader, dir string) (*Tx, error) {
	tx, err := parseJSON(r, dir)
	if err != nil {
		return nil, fmt.Errorf("phases: transaction JSON: %w", err)
	}
	return tx, nil
}

func parseJSON(r io.Reader, dir string) (*Tx, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTxJSON+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTxJSON {
		return nil, fmt.Errorf("larger than %d bytes", MaxTxJSON)
	}
	if err := checkFields(data); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var j txJSON
	if err := d.Decode(&j); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the object")
	}
	tx := &Tx{Nonce: j.Nonce, GasLimit: j.GasLimit, Read: j.Read, Write: j.Write}
	switch {
	case (j.FeeNote == nil) != (j.GasPrice == nil):
		return nil, errors.New(`"fee_note" and "gas_price" go together: give both or neither`)
	case j.FeeNote != nil:
		tx.Fee = &Fee{Note: *j.FeeNote, Price: *j.GasPrice}
	}
	if len(tx.Read) == 0 {
		tx.Read = nil
	}
	if len(tx.Write) == 0 {
		tx.Write = nil
	}
	if tx.Lookup, err = codeField("lookup", j.Lookup, j.LookupFile, dir); err != nil {
		return nil, err
	}
	if tx.Calculation, err = codeField("calculation", j.Calculation, j.CalculationFile, dir); err != nil {
		return nil, err
	}
	switch {
	case j.Extradata != nil && j.ExtradataText != nil:
		return nil, errors.New(`both "extradata" and "extradata_text" given`)
	case j.Extradata != nil:
		if tx.Extradata, err = base64.StdEncoding.Strict().DecodeString(*j.Extradata); err != nil {
			return nil, fmt.Errorf("extradata: not standard base64: %w", err)
		}
	case j.ExtradataText != nil:
		tx.Extradata = []byte(*j.ExtradataText)
	}
	if len(tx.Extradata) == 0 {
		tx.Extradata = nil
	}
	if len(j.Signers) > MaxSigners {
		return nil, fmt.Errorf("signers: count %d exceeds limit %d", len(j.Signers), MaxSigners)
	}
	for i, s := range j.Signers {
		k, err := keys.ParsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("signer %d: %w", i+1, err)
		}
		tx.Signers = append(tx.Signers, k)
	}
	signed := false
	for i, s := range j.Signatures {
		if i >= MaxSigners {
			return nil, fmt.Errorf("signatures: count %d exceeds limit %d", len(j.Signatures), MaxSigners)
		}
		if s == "" {
			tx.Signatures = append(tx.Signatures, nil)
			continue
		}
		sig, err := keys.ParseSignature(s)
		if err != nil {
			return nil, fmt.Errorf("signature %d: %w", i+1, err)
		}
		tx.Signatures = append(tx.Signatures, sig)
		signed = true
	}
	if !signed {
		tx.Signatures = nil
	}
	if err := tx.validate(); err != nil {
		return nil, err
	}
	if j.ID != "" {
		id := tx.ID()
		if want := hex.EncodeToString(id[:]); j.ID != want {
			return nil, fmt.Errorf(`"id" %s does not match the transaction's ID %s`, j.ID, want)
		}
	}
	return tx, nil
}

// txFields are the JSON form's field names.
var txFields = func() map[string]bool {
	m := make(map[string]bool)
	t := reflect.TypeFor[txJSON]()
	for i := range t.NumField() {
		m[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	return m
}()

// checkFields refuses an object naming a field twice or in another case:
// encoding/json would keep the last value, or match "LOOKUP" to "lookup",
// so a reader of the JSON could see code other than what is signed. It also
// refuses null anywhere in a field's value, which encoding/json would take
// as the zero value ("nonce": null as nonce 0, [null] as an empty pattern
// or signature). Anything else malformed is left to the decoder's message.
func checkFields(data []byte) error {
	d := json.NewDecoder(bytes.NewReader(data))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := make(map[string]bool)
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		name, _ := tok.(string)
		switch {
		case !txFields[name]:
			return fmt.Errorf("json: unknown field %q", name)
		case seen[name]:
			return fmt.Errorf("field %q given twice", name)
		}
		seen[name] = true
		top, null, err := holdsNull(d)
		switch {
		case err != nil:
			return nil
		case null && top:
			return fmt.Errorf("field %q is null: give a value or leave the field out", name)
		case null:
			return fmt.Errorf("field %q holds a null", name)
		}
	}
	return nil
}

// holdsNull reads one value from d and reports whether it holds a null,
// and whether that null is the value itself.
func holdsNull(d *json.Decoder) (top, null bool, err error) {
	depth := 0
	for first := true; first || depth > 0; first = false {
		tok, err := d.Token()
		if err != nil {
			return false, false, err
		}
		switch tok {
		case nil:
			return first, true, nil
		case json.Delim('['), json.Delim('{'):
			depth++
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
	return false, false, nil
}

// codeField takes code inline or from a file relative to dir, never both.
func codeField(name string, inline, file *string, dir string) ([]byte, error) {
	switch {
	case inline != nil && file != nil:
		return nil, fmt.Errorf("both %q and %q given", name, name+"_file")
	case inline != nil:
		if len(*inline) > MaxCode {
			return nil, fmt.Errorf("%s code: length %d exceeds limit %d", name, len(*inline), MaxCode)
		}
		if *inline == "" {
			return nil, nil
		}
		return []byte(*inline), nil
	case file != nil:
		return readCodeFile(name, *file, dir)
	}
	return nil, nil
}

// readCodeFile reads a code file named by the JSON form. It must resolve
// inside dir, the JSON file's folder: a transaction file handed over by
// someone else cannot make its signer commit a file from elsewhere.
func readCodeFile(name, path, dir string) ([]byte, error) {
	if dir == "" {
		return nil, fmt.Errorf("%s_file: file references are not allowed here", name)
	}
	if path == "" {
		return nil, fmt.Errorf("%s_file: empty path", name)
	}
	src, err := inputfile.ReadIn(dir, path, MaxCode)
	if err != nil {
		return nil, fmt.Errorf("%s_file: %w", name, err)
	}
	if len(src) == 0 {
		return nil, nil
	}
	return src, nil
}
