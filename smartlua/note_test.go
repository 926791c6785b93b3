package smartlua

import (
	"errors"
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

// TestHostCheckGas: the host function draws on one budget across calls and
// aborts the run (not a catchable error) when it runs out.
func TestHostCheckGas(t *testing.T) {
	c := newChain(t)
	init := c.apply(t, nil, string(readExample(t, "balances.lua")))
	next := c.apply(t, &init.Hash, transfer(1, "3"), seedKey(t, 0))
	_, one, err := CheckSuccessor(c.pool, EncodeRecord(init), EncodeRecord(next), Limits().Gas)
	if err != nil {
		t.Fatal(err)
	}
	gas := &Gas{Limit: 2*one + one/2}
	check := HostCheck(c.pool, gas)
	args := []any{string(EncodeRecord(init)), string(EncodeRecord(next))}
	for i := 0; i < 2; i++ {
		if res, err := check(args); err != nil || res[0] != next.Hash.String() {
			t.Fatalf("call %d: %v %v", i+1, res, err)
		}
	}
	_, err = check(args)
	if !errors.Is(err, vp.ErrAbort) || !errors.Is(err, ErrOutOfGas) || gas.Used != gas.Limit {
		t.Fatalf("third call: %v, used %d of %d", err, gas.Used, gas.Limit)
	}
	for _, bad := range [][]any{{nil}, {nil, 1.0}, {1.0, ""}} {
		if _, err := check(bad); err == nil || errors.Is(err, vp.ErrAbort) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
