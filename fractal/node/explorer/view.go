package explorer

import (
	"encoding/hex"
	"html/template"
	"strings"
	"unicode"
	"unicode/utf8"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"word":  word,
	"bytes": showBytes,
	"label": label,
}

// label is the label a receipt gives its output i (0-based), or "".
func label(rc *v1.Receipt, i int) string {
	for _, l := range rc.Labels {
		if int(l.Output) == i+1 {
			return l.Label
		}
	}
	return ""
}

// word is an API enum as the pages (and the script) say it: its name
// without the type's prefix, in lower case ("RECEIPT_STATUS_REFUSED" is
// "refused", "ENCRYPTED_PAYLOAD_STATE_IN_BATCH" is "in batch").
func word(e interface{ String() string }) string {
	name := e.String()
	for _, prefix := range []string{"RECEIPT_STATUS_", "PHASE_", "ROLE_", "TRANSACTION_STATE_", "ENCRYPTED_BATCH_STATE_", "ENCRYPTED_PAYLOAD_STATE_"} {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			if rest == "UNSPECIFIED" {
				return ""
			}
			return strings.ReplaceAll(strings.ToLower(rest), "_", " ")
		}
	}
	return strings.ToLower(name)
}

// showBytes is a note's key or value as text when it is printable UTF-8,
// else as hex with a 0x prefix. (The template escapes the text.)
func showBytes(b []byte) string {
	if utf8.Valid(b) && strings.IndexFunc(string(b), func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0 {
		return string(b)
	}
	return "0x" + hex.EncodeToString(b)
}

// noteRow is one note as the pages show it.
type noteRow struct {
	*v1.Note
	// Provenance names each instance the note came through, most recent
	// first; empty for a note created here.
	Provenance []origin
}

// origin is one entry of a note's provenance.
type origin struct {
	Instance string
	Here     bool // this node's instance (a note that left and came back)
}

func newNoteRow(n *v1.Note, instance string) noteRow {
	row := noteRow{Note: n}
	for _, p := range n.Provenance {
		row.Provenance = append(row.Provenance, origin{Instance: p, Here: p == instance})
	}
	return row
}
