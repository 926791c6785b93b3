package vp

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// meterLib is a host library that works the run's meter: work(n) charges
// n, left() is Remaining, drain() charges all that is left, give_up() is
// OutOfGas, ignore(n) charges n but returns "ignored" whatever Charge said.
// Every Charge error is recorded in *errs.
func meterLib(errs *[]error) map[string]any {
	keep := func(err error) error {
		if err != nil {
			*errs = append(*errs, err)
		}
		return err
	}
	return map[string]any{
		"work": HostFuncCtx(func(c *HostCall, args []any) ([]any, error) {
			n, err := Int(args[0])
			if err != nil {
				return nil, err
			}
			if err := keep(c.Charge(uint64(n))); err != nil {
				return nil, err
			}
			return []any{"done"}, nil
		}),
		"left": HostFuncCtx(func(c *HostCall, _ []any) ([]any, error) { return []any{c.Remaining()}, nil }),
		"drain": func(c *HostCall, _ []any) ([]any, error) {
			return []any{"drained"}, keep(c.Charge(c.Remaining()))
		},
		"give_up": HostFuncCtx(func(c *HostCall, _ []any) ([]any, error) { return nil, keep(c.OutOfGas()) }),
		"ignore": HostFuncCtx(func(c *HostCall, args []any) ([]any, error) {
			n, _ := Int(args[0])
			keep(c.Charge(uint64(n)))
			return []any{"ignored"}, nil
		}),
	}
}

func runWithGas(t *testing.T, src string, gas uint64, globals map[string]any) (Result, error) {
	t.Helper()
	lim := DefaultLimits()
	lim.Gas = gas
	return NewPool().Run(mustCompile(t, "h.lua", src), Call{Globals: globals, Limits: lim})
}

// TestHostChargeAddsExactly: a charge adds exactly its n to GasUsed (the
// same fragment with zero charges is the baseline), and Remaining is the
// limit less the gas used so far, across refills of the Lua-side credit.
func TestHostChargeAddsExactly(t *testing.T) {
	var errs []error
	src := "local s = 0\nfor i = 1, N do s = s + i end\nwork(A) work(B)\nreturn left()"
	for _, c := range []struct{ n, a, b, gas uint64 }{
		{0, 7, 0, 1000},
		{10, 1, 1000, 5000},
		{30000, 16384, 40000, 200_000}, // the loop alone spends several credit chunks
	} {
		prog := func(a, b uint64) string {
			return fmt.Sprintf("local N, A, B = %d, %d, %d\n%s", c.n, a, b, src)
		}
		base, err := runWithGas(t, prog(0, 0), c.gas, meterLib(&errs))
		if err != nil {
			t.Fatal(err)
		}
		res, err := runWithGas(t, prog(c.a, c.b), c.gas, meterLib(&errs))
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if res.GasUsed != base.GasUsed+c.a+c.b {
			t.Errorf("%+v: used %d, want %d + %d + %d", c, res.GasUsed, base.GasUsed, c.a, c.b)
		}
		// left() is the last thing the run pays for.
		if res.Values[0] != int64(c.gas-res.GasUsed) || base.Values[0] != int64(c.gas-base.GasUsed) {
			t.Errorf("%+v: left() %v and %v, want %d and %d", c, res.Values[0], base.Values[0], c.gas-res.GasUsed, c.gas-base.GasUsed)
		}
	}
	if len(errs) != 0 {
		t.Fatalf("charges refused: %v", errs)
	}
}

// TestHostChargeOutOfGas: a charge beyond what is left ends the run out of
// gas exactly as the Lua meter does, pcall cannot catch it, and a host
// function that ignores Charge's error cannot keep the run going.
func TestHostChargeOutOfGas(t *testing.T) {
	const gas = 5000
	for _, c := range []struct{ name, src, want string }{
		{"charge beyond", "local ok, e = pcall(work, 5000)\nreturn 'swallowed', ok, e", "h.lua:1: out of gas (limit 5000)"},
		{"charge ignored", "local x = 1\nlocal r = ignore(1e9)\nreturn r", "h.lua:2: out of gas (limit 5000)"},
		{"out of gas", "pcall(left)\npcall(give_up)\nreturn 'swallowed'", "h.lua:2: out of gas (limit 5000)"},
		{"after drain", "drain()\nfor i = 1, 2 do end", "h.lua:2: out of gas (limit 5000)"},
		{"in a loop", "for i = 1, 1e9 do pcall(work, 100) end", "h.lua:1: out of gas (limit 5000)"},
	} {
		var errs []error
		res, err := runWithGas(t, c.src, gas, meterLib(&errs))
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindGas || err.Error() != c.want {
			t.Errorf("%s: %v (%+v), want %q", c.name, err, res.Values, c.want)
		}
		if res.GasUsed != gas {
			t.Errorf("%s: used %d, want the limit %d", c.name, res.GasUsed, gas)
		}
		if c.name != "after drain" && (len(errs) != 1 || errs[0] != err) {
			t.Errorf("%s: Charge returned %v, want the run's error once", c.name, errs)
		}
	}
	// Charging exactly what is left is allowed: the run ends at its limit
	// without error when nothing more is charged.
	var errs []error
	res, err := runWithGas(t, "return drain()", 300, meterLib(&errs))
	if err != nil || res.GasUsed != 300 || !reflect.DeepEqual(res.Values, []any{"drained"}) || len(errs) != 0 {
		t.Fatalf("drain: %v %v used %d, %v", res.Values, err, res.GasUsed, errs)
	}
}

// TestHostCallExpires: a HostCall kept past its call charges nothing, in
// this run or the next.
func TestHostCallExpires(t *testing.T) {
	var kept *HostCall
	pool := NewPool()
	g := map[string]any{"grab": HostFuncCtx(func(c *HostCall, _ []any) ([]any, error) { kept = c; return nil, nil })}
	prog := mustCompile(t, "k.lua", "grab()\nreturn 1")
	first, err := pool.Run(prog, Call{Globals: g, Limits: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	if err := kept.Charge(1); !errors.Is(err, errCallOver) || kept.Remaining() != 0 || !errors.Is(kept.OutOfGas(), errCallOver) {
		t.Fatalf("expired call: %v, remaining %d", err, kept.Remaining())
	}
	second, err := pool.Run(prog, Call{Globals: g, Limits: DefaultLimits()})
	if err != nil || second.GasUsed != first.GasUsed {
		t.Fatalf("next run: %v, used %d, first %d", err, second.GasUsed, first.GasUsed)
	}
}

// TestHostChargeSession: a session run charges the same as Pool.Run, run
// after run, and one run's exhaustion does not leak into the next.
func TestHostChargeSession(t *testing.T) {
	pool := NewPool()
	s := pool.NewSession(DefaultLimits().MaxDepth, sessionShared())
	defer s.Close()
	lim := DefaultLimits()
	lim.Gas = 20_000
	for _, src := range []string{
		"local n = 0\nfor i = 1, #inputs do n = n + 1 end\nwork(123)\nreturn left(), n",
		"for i = 1, 1e9 do work(50) end",
		"work(19000)\nreturn left()",
	} {
		prog := mustCompile(t, "s.lua", src)
		var errs []error
		own := meterLib(&errs)
		all := sessionShared()
		for k, v := range own {
			all[k] = v
		}
		want, wantErr := pool.Run(prog, Call{Globals: all, Limits: lim})
		call := Call{Globals: own, Limits: lim}
		for i := 0; i < 2; i++ {
			got, err := s.Run(prog, call)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Errorf("%q run %d: session %+v %v, pool %+v %v", src, i, got, err, want, wantErr)
			}
		}
	}
}
