package phases

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// TestExamplePredicates runs the sig and token predicates directly on
// edge cases of their checks: each case's verdict and reason are exact.
func TestExamplePredicates(t *testing.T) {
	w := newWorld(t)
	A, B := testKey(t, 1).Public().String(), testKey(t, 2).Public().String()
	sig, _ := w.code.Program(w.sig)
	token, _ := w.code.Program(w.token)
	note := func(key, value string) notes.Note {
		return notes.Note{Application: w.token, Owner: w.sig, Key: []byte(key), Value: []byte(value)}
	}
	run := func(prog *vp.Program, role string, n *notes.Note, ins, outs []notes.Note, signers ...any) string {
		s := w.pool.NewSession(vp.DefaultLimits().MaxDepth, map[string]any{"inputs": ins, "outputs": outs, "signers": signers, "extradata": "", "txid": "00"})
		defer s.Close()
		g := map[string]any{"role": role, "index": int64(1), "application": fmt.Sprintf("%x", w.token)}
		if n != nil {
			g["note"] = n
		}
		res, err := s.Run(prog, vp.Call{Globals: g, Limits: vp.DefaultLimits()})
		return verdict(res, err)
	}
	malformed := "sig: note key does not start with '<owner public key>:'"
	for _, c := range []struct {
		name, role, key string
		signers         []any
		want            string
	}{
		{"input signed", "input", A + ":x", []any{B, A}, ""},
		{"input unsigned", "input", A + ":x", []any{B}, "sig: owner " + A + " has not signed"},
		{"input without colon, owner signed", "input", A + "x", []any{A}, malformed},
		{"input with a bad owner", "input", strings.Repeat("!", 44) + ":x", []any{A}, malformed},
		{"export needs the signature", "export", A + ":x", nil, "sig: owner " + A + " has not signed"},
		{"output well-formed", "output", B + ":x", nil, ""},
		{"output with a bad owner", "output", strings.Repeat("a", 44) + ":x", nil, malformed},
		{"output short key", "output", "k", nil, malformed},
	} {
		n := note(c.key, A+":GOLD:1")
		if got := run(sig, c.role, &n, nil, nil, c.signers...); got != c.want {
			t.Errorf("sig, %s: got %q, want %q", c.name, got, c.want)
		}
	}
	in := note(A+":in", A+":GOLD:10")
	for _, c := range []struct {
		name string
		outs []string
		want string
	}{
		{"conserved", []string{A + ":GOLD:4", A + ":GOLD:6"}, ""},
		{"bad amount", []string{A + ":GOLD:4", A + ":GOLD:6x"}, "token: output 2: value is not <issuer>:<symbol>:<amount>"},
		{"bad symbol", []string{A + ":GOLD:4", A + ":gold:6"}, "token: output 2: value is not <issuer>:<symbol>:<amount>"},
		{"bad issuer", []string{A + ":GOLD:4", "short:GOLD:6"}, "token: output 2: value is not <issuer>:<symbol>:<amount>"},
		{"bad issuer of the right length", []string{A + ":GOLD:4", strings.Repeat("!", 44) + ":GOLD:6"}, "token: output 2: value is not <issuer>:<symbol>:<amount>"},
		{"four fields", []string{A + ":GOLD:4:1", A + ":GOLD:6"}, "token: output 1: value is not <issuer>:<symbol>:<amount>"},
		{"zero", []string{A + ":GOLD:10", A + ":GOLD:0"}, "token: output 2: amount must be at least 1"},
		{"another token", []string{A + ":GOLD:10", B + ":GOLD:1"}, "token: " + B + ":GOLD: outputs exceed inputs by 1 and the issuer has not signed"},
	} {
		var outs []notes.Note
		for i, v := range c.outs {
			outs = append(outs, note(fmt.Sprintf("%s:o%d", B, i), v))
		}
		if got := run(token, "application", nil, []notes.Note{in}, outs, testKey(t, 3).Public().String()); got != c.want {
			t.Errorf("token, %s: got %q, want %q", c.name, got, c.want)
		}
	}
}
