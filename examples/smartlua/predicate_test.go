// Tests of the smartlua application predicate, run in the real sandbox
// with the globals the phases package gives an application predicate.
package smartlua_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// must stops the test on a setup failure.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// record makes a signed record of fragment on prev.
func record(t *testing.T, pool *vp.Pool, prev *smartlua.Record, fragment string, signers ...keys.PrivateKey) *smartlua.Record {
	t.Helper()
	tr := &smartlua.Transition{Version: smartlua.Version, Fragment: []byte(fragment)}
	var prevState []byte
	if prev != nil {
		tr.Prev, prevState = &prev.Hash, prev.State
	}
	for _, k := range signers {
		tr.Keys = append(tr.Keys, k.Public())
	}
	out := must(smartlua.Execute(pool, tr, prevState))
	sigs := must(smartlua.Sign(rand.Reader, out.Hash, signers))
	return &smartlua.Record{Hash: out.Hash, Transition: tr, State: out.State, Sigs: sigs}
}

func TestPredicate(t *testing.T) {
	src := must(os.ReadFile("smartlua.lua"))
	balances := must(os.ReadFile("balances.lua"))
	app := notes.Hash(sha256.Sum256(src))
	prog := must(vp.Compile("smartlua.lua", src))
	pool := vp.NewPool()
	k1 := must(keys.ParsePrivateKey("2KgXomoYNRdlBq+CPZcw+mze5UDUp/iCVDBuDIRLym0="))

	init := record(t, pool, nil, string(balances))
	next := record(t, pool, init, "transfer('Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw=', 3)", k1)
	other := record(t, pool, init, "transfer('ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM=', 3)", k1)
	later := record(t, pool, next, "transfer('ByRn704GWnhgkjZ2/kYBl77oS7cTWNQQxrx6JTt+4FM=', 1)", k1)
	// The signer signs a state that re-execution does not give.
	forged := *next
	forged.State = init.State
	forged.Hash = smartlua.StateHash(forged.Transition, forged.State)
	forged.Sigs = must(smartlua.Sign(rand.Reader, forged.Hash, []keys.PrivateKey{k1}))
	unsigned := *next
	unsigned.Sigs = [][]byte{make([]byte, 64)}

	note := func(key string, rec *smartlua.Record) any {
		return vp.NoteToValue(notes.Note{Application: app, Key: []byte(key), Value: smartlua.EncodeRecord(rec)})
	}
	run := func(in, out []any) error {
		_, err := pool.Run(prog, vp.Call{Limits: vp.DefaultLimits(), Globals: map[string]any{
			"inputs": in, "outputs": out, "extradata": "", "signers": []any{k1.Public().String()},
			"txid": strings.Repeat("0", 64), "role": "application", "index": int64(0),
			"application": hex.EncodeToString(app[:]), "smartlua_check": smartlua.HostCheck(pool),
		}})
		return err
	}
	for _, tc := range []struct {
		name    string
		in, out []any
		want    string // "" accepts
	}{
		{"new chain holding an initial state", nil, []any{note("bank", init)}, ""},
		{"spend with the successor", []any{note("bank", init)}, []any{note("bank", next)}, ""},
		{"either successor is valid alone", []any{note("bank", init)}, []any{note("bank", other)}, ""},
		{"spend without a successor", []any{note("bank", init)}, nil, "chain bank spent without its successor state"},
		{"successor under another key", []any{note("bank", init)}, []any{note("bank2", next)}, "chain bank spent without its successor state"},
		{"skipping a state", []any{note("bank", init)}, []any{note("bank", later)}, "does not follow state " + init.Hash.String()},
		{"going back", []any{note("bank", next)}, []any{note("bank", init)}, "does not follow"},
		{"state not from re-execution", []any{note("bank", init)}, []any{note("bank", &forged)}, "stored state differs from re-execution"},
		{"bad signature", []any{note("bank", init)}, []any{note("bank", &unsigned)}, "signature 1"},
		{"new chain not initial", nil, []any{note("bank", next)}, "is not an initial state"},
		{"two successors", []any{note("bank", init)}, []any{note("bank", next), note("bank", other)}, "two created notes for chain bank"},
	} {
		err := run(tc.in, tc.out)
		if tc.want == "" && err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A tampered value never decodes into the successor.
	bad := smartlua.EncodeRecord(next)
	bad[len(bad)-1] ^= 1
	in := []any{note("bank", init)}
	out := []any{vp.NoteToValue(notes.Note{Application: app, Key: []byte("bank"), Value: bad})}
	if err := run(in, out); err == nil {
		t.Error("tampered successor accepted")
	}
}
