package vp

import (
	"errors"

	lua "github.com/yuin/gopher-lua"
)

// HostFuncCtx is a host function that pays for its own work from the
// running fragment's gas meter through c, so that a fragment's Lua and the
// host work it causes share one budget. Errors are as for HostFunc.
type HostFuncCtx func(c *HostCall, args []any) ([]any, error)

// HostCall is the run a HostFuncCtx was called from. It is valid only
// during that call; afterwards Charge refuses and Remaining is 0.
type HostCall struct {
	v *vm
}

// errCallOver is Charge's error on a HostCall whose call has returned.
var errCallOver = errors.New("vp: host call is over")

// Charge takes n gas from the run. When less than n is left the run is out
// of gas, exactly as if its Lua had spent it: GasUsed becomes the limit, the
// error is `out of gas (limit N)` and pcall cannot catch it. The returned
// error says so; the run ends when the host function returns, whatever it
// returns.
func (c *HostCall) Charge(n uint64) error {
	if c.v == nil {
		return errCallOver
	}
	if !c.v.spend(n) {
		return c.v.r.fatal
	}
	return nil
}

// Remaining is the gas the run has left: what a nested computation the
// host runs for the fragment may use at most.
func (c *HostCall) Remaining() uint64 {
	if c.v == nil {
		return 0
	}
	return c.v.left()
}

// OutOfGas ends the run out of gas, spending what is left: for a host
// function whose nested computation needed more than Remaining. It returns
// the run's error, as Charge does.
func (c *HostCall) OutOfGas() error {
	if c.v == nil {
		return errCallOver
	}
	if c.v.r.fatal == nil {
		c.v.exhaust()
	}
	return c.v.r.fatal
}

// host wraps a host function as a Lua function: 1 gas a call, arguments and
// results cross in the Go value model (the arguments charged as converted
// values, the results counted as the run's memory); an error wrapping
// ErrAbort, or a charge the run could not pay, ends the run.
func (v *vm) host(f HostFuncCtx) *lua.LFunction {
	return v.L.NewFunction(func(L *lua.LState) int {
		v.charge(1)
		args := make([]any, L.GetTop())
		conv := converter{v: v}
		for i := range args {
			g, err := conv.value(L.Get(i+1), 0)
			if v.r.fatal != nil {
				v.raise()
			}
			if err != nil {
				L.ArgError(i+1, err.Error())
			}
			args[i] = g
		}
		c := &HostCall{v: v}
		res, err := f(c, args)
		c.v = nil
		if v.r.fatal != nil {
			v.raise()
		}
		if err != nil {
			if errors.Is(err, ErrAbort) {
				v.fail(KindAbort, err, "%s", err.Error())
			}
			L.RaiseError("%s", err.Error())
		}
		v.r.counting = true
		defer func() { v.r.counting = false }()
		for i, r := range res {
			lv, err := v.toLua(r, 0)
			if err != nil {
				L.RaiseError("host function result %d: %s", i+1, err.Error())
			}
			L.Push(lv)
		}
		return len(res)
	})
}

// plain adapts a HostFunc, which does not charge, to the wrapper.
func plain(f func([]any) ([]any, error)) HostFuncCtx {
	return func(_ *HostCall, args []any) ([]any, error) { return f(args) }
}
