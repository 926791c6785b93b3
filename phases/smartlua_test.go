package phases

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// TestSmartLuaBlockEqualsSerial runs a block of Smart Lua chain steps
// (examples/smartlua) through the scheduler and serially: steps that follow
// each other, a fork, a forged successor; outcomes, gas included, must be
// byte-identical, and the predicate's smartlua_check must have been charged.
func TestSmartLuaBlockEqualsSerial(t *testing.T) {
	st, code, pool := newMemState(), memCode{}, vp.NewPool()
	app := code.deploy(t, "smartlua.lua", readExample(t, "smartlua/smartlua.lua"))
	owner := code.deploy(t, "allow.lua", []byte("return true"))
	signer := testKey(t, 1)
	record := func(prev *smartlua.Record, fragment string) *smartlua.Record {
		tr := &smartlua.Transition{Version: smartlua.Version, Fragment: []byte(fragment), Keys: []keys.PublicKey{signer.Public()}}
		var prevState []byte
		if prev != nil {
			tr.Prev, prevState = &prev.Hash, prev.State
		} else {
			tr.Keys = nil
		}
		out, err := smartlua.Execute(pool, tr, prevState)
		if err != nil {
			t.Fatal(err)
		}
		sigs, err := smartlua.Sign(rand.Reader, out.Hash, []keys.PrivateKey{signer}[:len(tr.Keys)])
		if err != nil {
			t.Fatal(err)
		}
		return &smartlua.Record{Hash: out.Hash, Transition: tr, State: out.State, Sigs: sigs}
	}
	// Every chain's state lets the signer pay itself a counter.
	initial := "local n = 0\nfunction bump(k) n = n + k end\nfunction count() return n end"
	var txs []*Tx
	var err error
	step := func(chain string, value []byte) {
		sk := notes.StateKey{Application: app, Owner: owner, Key: []byte(chain)}
		p := mustPattern(t, sk.String())
		txs = append(txs, signed(t, &Tx{
			Nonce: uint64(len(txs) + 1), GasLimit: 100_000, Extradata: value,
			Read: notes.ConstraintSet{p}, Write: notes.ConstraintSet{p},
			Lookup: []byte(fmt.Sprintf("return {%q}", sk.String())),
			Calculation: []byte(fmt.Sprintf("return {{application=%q, owner=%q, key=%q, value=extradata}}",
				hex.EncodeToString(app[:]), hex.EncodeToString(owner[:]), chain)),
			Signers: []keys.PublicKey{signer.Public()},
		}, signer))
	}
	for i := 1; i <= 4; i++ {
		chain := fmt.Sprintf("bank%d", i)
		init := record(nil, initial)
		st.put(notes.Note{Application: app, Owner: owner, Key: []byte(chain), Value: smartlua.EncodeRecord(init)})
		a := record(init, "bump(1)")
		step(chain, smartlua.EncodeRecord(a))
		step(chain, smartlua.EncodeRecord(record(init, "bump(2)"))) // a fork: init is spent
		forged := *record(a, "bump(3)")
		forged.State = a.State // signed, but not what re-execution gives
		h := smartlua.StateHash(forged.Transition, forged.State)
		if forged.Sigs, err = smartlua.Sign(rand.Reader, h, []keys.PrivateKey{signer}); err != nil {
			t.Fatal(err)
		}
		step(chain, smartlua.EncodeRecord(&forged))
		step(chain, smartlua.EncodeRecord(record(a, fmt.Sprintf("bump(%d)", i))))
	}
	serial, err := ExecuteSerial(st, code, pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	reasons := []string{"", "does not follow state", "stored state differs from re-execution", ""}
	for i, o := range serial {
		r := o.Receipt
		got = append(got, r.Status.String())
		if !bytes.Contains([]byte(r.Reason), []byte(reasons[i%4])) {
			t.Errorf("tx %d: %q, want %q", i, r.Reason, reasons[i%4])
		}
		if r.Status == Accepted && r.Gas.Validity < smartlua.GasCheck+smartlua.GasPerSig {
			t.Errorf("validity gas %d does not include the check", r.Gas.Validity)
		}
	}
	want := "[accepted refused refused accepted accepted refused refused accepted accepted refused refused accepted accepted refused refused accepted]"
	if fmt.Sprint(got) != want {
		t.Fatalf("serial outcomes %v, want %s", got, want)
	}
	wantBytes := encodeOutcomes(serial)
	for run := 0; run < 10; run++ {
		outs, err := ExecuteBlock(st, code, pool, txs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encodeOutcomes(outs), wantBytes) {
			t.Fatalf("run %d: scheduled outcomes differ from serial", run)
		}
	}
}
