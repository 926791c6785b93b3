package phases

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// TestHostCheckOneMeter: an application predicate that calls
// smartlua_check in a loop, swallowing errors with pcall, is paid from its
// own gas alone: it runs out of gas exactly at what the transaction has
// left (not twice that, as with a separate host budget), pcall does not
// catch it, and the scheduled block gives the same bytes as the serial one.
func TestHostCheckOneMeter(t *testing.T) {
	st, code, pool := newMemState(), memCode{}, vp.NewPool()
	loop := code.deploy(t, "loop", []byte(`local v, n = outputs[1].value, 0
while true do
  local ok = pcall(smartlua_check, nil, v)
  n = n + 1
  print(n)
end`))
	once := code.deploy(t, "once", []byte("return smartlua_check(nil, outputs[1].value) ~= nil"))
	allow := code.deploy(t, "allow", []byte("return true"))
	signer := testKey(t, 1)
	tr := &smartlua.Transition{Version: smartlua.Version, Fragment: []byte("local n = 0\nfunction bump(k) n = n + k end")}
	out, err := smartlua.Execute(pool, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	value := smartlua.EncodeRecord(&smartlua.Record{Hash: out.Hash, Transition: tr, State: out.State})
	_, one, err := smartlua.CheckSuccessor(pool, nil, value, smartlua.Limits().Gas)
	if err != nil {
		t.Fatal(err)
	}
	tx := func(nonce uint64, app notes.Hash, gas uint64) *Tx {
		sk := notes.StateKey{Application: app, Owner: allow, Key: []byte("chain")}
		p := mustPattern(t, sk.String())
		return signed(t, &Tx{
			Nonce: nonce, GasLimit: gas, Extradata: value,
			Read: notes.ConstraintSet{p}, Write: notes.ConstraintSet{p},
			Calculation: []byte(fmt.Sprintf("return {{application=%q, owner=%q, key=\"chain\", value=extradata}}",
				hex.EncodeToString(app[:]), hex.EncodeToString(allow[:]))),
			Signers: []keys.PublicKey{signer.Public()},
		}, signer)
	}
	allowGas, err := pool.Run(code[allow], vp.Call{Limits: vp.DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	const limit = 20_000
	o, err := Execute(st, code, pool, tx(1, loop, limit))
	if err != nil {
		t.Fatal(err)
	}
	rc := o.Receipt
	// Two predicates (the looping application, the output's owner) share
	// what lookup and calculation left.
	left := (limit - rc.Gas.Lookup - rc.Gas.Calculation) / 2
	want := fmt.Sprintf("application predicate %s: loop:3: out of gas (limit %d)", h16(loop), left)
	if rc.Status == Accepted || rc.Reason != want {
		t.Fatalf("looping predicate: %v %q, want %q", rc.Status, rc.Reason, want)
	}
	if rc.Gas.Validity != left+allowGas.GasUsed {
		t.Errorf("validity gas %d, want the predicate's limit %d + the owner's %d", rc.Gas.Validity, left, allowGas.GasUsed)
	}
	// The loop made as many checks as its own gas pays for, no more.
	last := rc.Log[len(rc.Log)-1]
	n, err := strconv.ParseUint(last[strings.LastIndex(last, " ")+1:], 10, 64)
	if err != nil || n == 0 || n*one >= left || (n+1)*(one+20) <= left {
		t.Errorf("%d checks of %d gas each in %d gas (log %q)", n, one, left, last)
	}

	// Scheduled and serial agree, gas and reasons included.
	block := []*Tx{tx(2, loop, limit), tx(3, once, limit), tx(4, loop, 3*one), tx(5, once, one)}
	serial, err := ExecuteSerial(st, code, pool, block)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range serial {
		got = append(got, o.Receipt.Status.String())
	}
	if fmt.Sprint(got) != "[refused accepted refused refused]" {
		t.Fatalf("serial outcomes %v", got)
	}
	wantBytes := encodeOutcomes(serial)
	for run := 0; run < 5; run++ {
		outs, err := ExecuteBlock(st, code, pool, block)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encodeOutcomes(outs), wantBytes) {
			t.Fatalf("run %d: scheduled outcomes differ from serial", run)
		}
	}
}
