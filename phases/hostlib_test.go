package phases

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
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

// TestNewHostsRefuses: a registration that would hide a global, repeat a
// name or reach no code is refused, naming why.
func TestNewHostsRefuses(t *testing.T) {
	ok := func(name string) HostFunc {
		return HostFunc{Name: name, Stages: StagePredicate, New: func(HostRun) vp.HostFuncCtx { return nil }}
	}
	for _, c := range []struct {
		fns  []HostFunc
		want string
	}{
		{[]HostFunc{ok("")}, `host function "": not a Lua name`},
		{[]HostFunc{ok("9lives")}, `host function "9lives": not a Lua name`},
		{[]HostFunc{ok("follow-tx")}, `host function "follow-tx": not a Lua name`},
		{[]HostFunc{ok("end")}, `host function "end": not a Lua name`},
		{[]HostFunc{ok("inputs")}, "host function inputs: a global the phases set"},
		{[]HostFunc{ok("scan")}, "host function scan: a global the phases set"},
		{[]HostFunc{ok("print")}, "host function print: a global of the sandbox"},
		{[]HostFunc{ok("string")}, "host function string: a global of the sandbox"},
		{[]HostFunc{ok("crypto")}, "host function crypto: a global of the sandbox"},
		{[]HostFunc{ok("_G")}, "host function _G: a global of the sandbox"},
		{[]HostFunc{ok("follow"), ok("check"), ok("follow")}, "host function follow: registered twice"},
		{[]HostFunc{{Name: "follow", New: ok("follow").New}}, "host function follow: stages 0x0"},
		{[]HostFunc{{Name: "follow", Stages: 8, New: ok("follow").New}}, "host function follow: stages 0x8"},
		{[]HostFunc{{Name: "follow", Stages: StageLookup}}, "host function follow: no New"},
	} {
		h, err := NewHosts(c.fns...)
		if h != nil || err == nil || err.Error() != "phases: "+c.want {
			t.Errorf("%v: %v, want %q", c.fns, err, c.want)
		}
	}
	h, err := NewHosts(ok("zeta"), HostFunc{Name: "alpha", Stages: StageLookup | StageCalculation, New: ok("alpha").New})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(h.Names(StageLookup), h.Names(StagePredicate), h.Names(StageLookup|StagePredicate)); got != "[alpha] [zeta] [alpha zeta]" {
		t.Fatalf("names by stage %s", got)
	}
}

// hostCode is memCode with its own host functions.
type hostCode struct {
	memCode
	hosts *Hosts
}

func (c hostCode) Hosts() *Hosts { return c.hosts }

// TestHostsReachTheirStagesOnly: a host function registered for lookup and
// calculation is called there, told which stage calls it, and a predicate
// does not see it; the scheduled block gives the serial bytes.
func TestHostsReachTheirStagesOnly(t *testing.T) {
	probe := HostFunc{Name: "probe", Stages: StageLookup | StageCalculation, New: func(run HostRun) vp.HostFuncCtx {
		return func(c *vp.HostCall, args []any) ([]any, error) {
			if err := c.Charge(5); err != nil {
				return nil, err
			}
			id := run.Tx.ID()
			return []any{run.Stage.String() + ":" + hex.EncodeToString(id[:4])}, nil
		}
	}}
	code := hostCode{memCode{}, MustHosts(probe)}
	st, pool := newMemState(), vp.NewPool()
	app := code.deploy(t, "unseen", []byte("return probe == nil"))
	owner := code.deploy(t, "allow", []byte("return true"))
	signer := testKey(t, 1)
	tx := func(nonce uint64) *Tx {
		sk := notes.StateKey{Application: app, Owner: owner, Key: []byte(fmt.Sprint("k", nonce))}
		p := mustPattern(t, sk.String())
		return signed(t, &Tx{
			Nonce: nonce, GasLimit: 100_000, Read: notes.ConstraintSet{p}, Write: notes.ConstraintSet{p},
			Lookup: []byte("print(probe()) return {}"),
			Calculation: []byte(fmt.Sprintf("print(probe()) return {{application=%q, owner=%q, key=%q, value=''}}",
				hex.EncodeToString(app[:]), hex.EncodeToString(owner[:]), sk.Key)),
			Signers: []keys.PublicKey{signer.Public()},
		}, signer)
	}
	block := []*Tx{tx(1), tx(2), tx(3)}
	serial, err := ExecuteSerial(st, code, pool, block)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range serial {
		id := block[i].ID()
		want := fmt.Sprintf("[lookup: lookup:%x calculation: calculation:%x]", id[:4], id[:4])
		if o.Receipt.Status != Accepted || fmt.Sprint(o.Receipt.Log) != want {
			t.Fatalf("tx %d: %v, log %q; want accepted (the predicate saw no probe), log %s", i, o.Receipt.Err(), o.Receipt.Log, want)
		}
	}
	outs, err := ExecuteBlock(st, code, pool, block)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodeOutcomes(outs), encodeOutcomes(serial)) {
		t.Fatal("scheduled outcomes differ from serial")
	}
}

// TestReservedGlobalsCoverThePhases: every global the phases give a
// stage's code (besides the registered host functions) is one that
// NewHosts refuses as a host function name, so no registration can hide
// one.
func TestReservedGlobalsCoverThePhases(t *testing.T) {
	code := memCode{}
	st, pool := newMemState(), vp.NewPool()
	const list = "local t = {} for k in pairs(_G) do t[#t+1] = k end table.sort(t) print(table.concat(t, ' '))"
	app := code.deploy(t, "globals", []byte(list+" return true"))
	signer := testKey(t, 1)
	sk := notes.StateKey{Application: app, Owner: app, Key: []byte("g")}
	p := mustPattern(t, sk.String())
	tx := signed(t, &Tx{
		Nonce: 1, GasLimit: 1_000_000, Read: notes.ConstraintSet{p}, Write: notes.ConstraintSet{p},
		Lookup: []byte(list + " return {}"),
		Calculation: []byte(fmt.Sprintf(list+" return {{application=%q, owner=%q, key='g', value=''}}",
			hex.EncodeToString(app[:]), hex.EncodeToString(app[:]))),
		Signers: []keys.PublicKey{signer.Public()},
	}, signer)
	o, err := Execute(st, code, pool, tx)
	if err != nil {
		t.Fatal(err)
	}
	if o.Receipt.Status != Accepted || len(o.Receipt.Log) != 4 {
		t.Fatalf("%v, log %q", o.Receipt.Err(), o.Receipt.Log)
	}
	seen := map[string]bool{}
	for _, line := range o.Receipt.Log {
		_, names, _ := strings.Cut(line, ": ")
		for _, n := range strings.Fields(names) {
			seen[n] = true
		}
	}
	for n := range seen {
		if n != "_G" && !slices.Contains(reservedGlobals, n) && !slices.Contains(testHosts.Names(StagePredicate), n) {
			t.Errorf("the phases set global %s, which reservedGlobals does not list", n)
		}
	}
	if !seen["get"] || !seen["inputs"] || !seen["role"] || !seen[smartlua.HostName] {
		t.Fatalf("globals seen %v: the listing missed a stage", seen)
	}
}
