package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/vp"
)

// Errors of the verbs, as one line for people and as one JSON object with
// --json (docs/CLI.md).

// errorJSON is what a failed verb prints on stdout with --json:
// {"error": {...}, "output": ...}, "output" being what the verb printed
// before it failed (the receipt of a refused transaction).
type errorJSON struct {
	Message   string         `json:"message"`
	Phase     string         `json:"phase,omitempty"`
	Predicate *predicateJSON `json:"predicate,omitempty"`
	File      string         `json:"file,omitempty"`
	Line      int            `json:"line,omitempty"`
}

type predicateJSON struct {
	Role  string `json:"role"`
	Index uint32 `json:"index"`
	Code  string `json:"code"`
}

// jsonError returns the JSON object for err, holding out when it is the
// JSON the verb printed before failing.
func jsonError(err error, out []byte) []byte {
	msg, at := shown.text(err.Error())
	e := errorJSON{Message: oneLine(msg)}
	var ve *vp.Error
	if at == nil && errors.As(err, &ve) && ve.Line > 0 {
		at = &where{ve.Chunk, ve.Line}
	}
	if at != nil {
		e.File, e.Line = at.File, at.Line
	}
	var r refusal
	if errors.As(err, &r) {
		e.Phase = r.rc.Phase.String()
		if p := r.rc.Predicate; p.Role != phases.RoleNone {
			e.Predicate = &predicateJSON{Role: p.Role.String(), Index: p.Index, Code: hex.EncodeToString(p.Code[:])}
		}
	}
	v := struct {
		Error  errorJSON       `json:"error"`
		Output json.RawMessage `json:"output,omitempty"`
	}{Error: e}
	if json.Valid(out) {
		v.Output = out
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

// refusal is a transaction's refusal; it carries the receipt to the JSON
// error.
type refusal struct{ rc *phases.Receipt }

func (r refusal) Error() string { return r.rc.Err().Error() }

// refused returns rc's refusal, or nil when rc was accepted.
func refused(rc *phases.Receipt) error {
	if rc.Status == phases.Accepted {
		return nil
	}
	return refusal{rc}
}

// trimmedError is an error without the instance package's "fractal: "
// prefix, which main prints in front of every error anyway.
type trimmedError struct {
	msg string
	err error
}

func (e trimmedError) Error() string { return e.msg }
func (e trimmedError) Unwrap() error { return e.err }

// trimmed wraps a verb so that its error loses the "fractal: " prefix.
func trimmed(f func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return trimmedError{strings.TrimPrefix(err.Error(), "fractal: "), err}
		}
		return nil
	}
}
