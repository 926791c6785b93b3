package smartlua

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/vp"
)

// TestCheckSuccessorGas pins what CheckSuccessor spends: the fixed part,
// the bytes, one signature and the re-execution's own gas, exactly; with any
// less it spends all it was given and reports ErrOutOfGas, whichever part
// did not fit; with exactly enough it accepts.
func TestCheckSuccessorGas(t *testing.T) {
	c := newChain(t)
	init := c.apply(t, nil, string(readExample(t, "balances.lua")))
	next := c.apply(t, &init.Hash, transfer(1, "3"), seedKey(t, 0))
	prev, succ := EncodeRecord(init), EncodeRecord(next)
	out, err := Execute(c.pool, next.Transition, init.State)
	if err != nil {
		t.Fatal(err)
	}
	want := GasCheck + GasPerSig + out.Result.GasUsed + uint64(len(prev)+len(succ))/BytesPerGas
	rec, used, err := CheckSuccessor(c.pool, prev, succ, want)
	if err != nil || rec.Hash != next.Hash || used != want {
		t.Fatalf("with %d gas: %v, used %d", want, err, used)
	}
	fixed := want - out.Result.GasUsed
	for _, gas := range []uint64{0, GasCheck, fixed - GasPerSig, fixed - 1, fixed, want - 1} {
		_, used, err := CheckSuccessor(c.pool, prev, succ, gas)
		if !errors.Is(err, ErrOutOfGas) || used != gas {
			t.Errorf("with %d of %d gas: %v, used %d", gas, want, err, used)
		}
	}
	// A refused successor is charged too, and the error is not ErrOutOfGas.
	_, used, err = CheckSuccessor(c.pool, succ, prev, want)
	if err == nil || errors.Is(err, ErrOutOfGas) || !strings.Contains(err.Error(), "does not follow") || used != fixed-GasPerSig {
		t.Errorf("going back: %v, used %d", err, used)
	}
}

// TestHostCheckGas: smartlua_check charges the calling run's own meter, so
// a predicate that calls it in a loop has its Lua and its checks paid from
// one budget: with exactly the gas of N checks it makes N, with one less the
// N-th ends the run out of gas at the limit, which pcall cannot catch.
func TestHostCheckGas(t *testing.T) {
	c := newChain(t)
	init := c.apply(t, nil, string(readExample(t, "balances.lua")))
	next := c.apply(t, &init.Hash, transfer(1, "3"), seedKey(t, 0))
	_, one, err := CheckSuccessor(c.pool, EncodeRecord(init), EncodeRecord(next), Limits().Gas)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := vp.Compile("p.lua", []byte(`local h
for i = 1, N do
  local ok, r = pcall(smartlua_check, prev, next)
  if not ok then return "caught: " .. r end
  h = r
end
return h`))
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int64, gas uint64) (vp.Result, error) {
		lim := vp.DefaultLimits()
		lim.Gas = gas
		return c.pool.Run(prog, vp.Call{Limits: lim, Globals: map[string]any{
			"N": n, "prev": string(EncodeRecord(init)), "next": string(EncodeRecord(next)),
			"smartlua_check": HostCheck(c.pool),
		}})
	}
	two, err := run(2, 1_000_000)
	if err != nil || two.Values[0] != next.Hash.String() {
		t.Fatalf("two checks: %v %v", two.Values, err)
	}
	three, err := run(3, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if per := three.GasUsed - two.GasUsed; per <= one || per > one+20 {
		t.Fatalf("a loop turn costs %d, a check %d: the check is not on the run's meter", per, one)
	}
	if again, err := run(3, three.GasUsed); err != nil || again.GasUsed != three.GasUsed {
		t.Fatalf("with exactly %d gas: %v, used %d", three.GasUsed, err, again.GasUsed)
	}
	// One gas short: the third check's re-execution, its decoding, or its
	// call, whichever is cut, ends the run on line 3 at the limit.
	for _, short := range []uint64{1, 100, one - 1, one + 1} {
		gas := three.GasUsed - short
		res, err := run(3, gas)
		var ve *vp.Error
		want := fmt.Sprintf("p.lua:3: out of gas (limit %d)", gas)
		if !errors.As(err, &ve) || ve.Kind != vp.KindGas || err.Error() != want || res.GasUsed != gas || res.Values != nil {
			t.Errorf("%d gas short: %v %v, used %d, want %q", short, res.Values, err, res.GasUsed, want)
		}
	}
	// Refusals are ordinary errors that pcall catches, and are charged.
	for _, bad := range []string{"smartlua_check(nil)", "smartlua_check(nil, 1)", "smartlua_check(1, '')", "smartlua_check(prev, prev)"} {
		p, err := vp.Compile("bad.lua", []byte("local ok, e = pcall(function() "+bad+" end)\nreturn ok, e"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.pool.Run(p, vp.Call{Limits: vp.DefaultLimits(), Globals: map[string]any{
			"prev": string(EncodeRecord(init)), "smartlua_check": HostCheck(c.pool)}})
		if err != nil || len(res.Values) != 2 || res.Values[0] != false || !strings.Contains(res.Values[1].(string), "smartlua") {
			t.Errorf("%s: %v %v", bad, res.Values, err)
		}
	}
}
