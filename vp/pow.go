package vp

import (
	"math"
	"math/bits"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// nonIntegerExponent is the runtime error for exponents pow refuses: Go's
// math.Pow is not correctly rounded and its result may differ by CPU.
const nonIntegerExponent = "non-integer exponent is not supported (results would differ across machines)"

// pow is the metered `x ^ y` the instrumenter calls instead of OP_POW. It
// ignores `__pow` and coerces strings as the other arithmetic operators do.
func (v *vm) pow(L *lua.LState) int {
	x, okx := arithNumber(L.Get(1))
	y, oky := arithNumber(L.Get(2))
	if !okx || !oky {
		L.RaiseError("cannot perform pow operation between %s and %s", L.Get(1).Type(), L.Get(2).Type())
	}
	v.charge(powCost(y))
	r, ok := pow(x, y)
	if !ok {
		L.RaiseError(nonIntegerExponent)
	}
	L.Push(lua.LNumber(r))
	return 1
}

// arithNumber reads an arithmetic operand as gopher-lua does for + - * / %:
// a number, or a string holding one (surrounding blanks allowed).
func arithNumber(v lua.LValue) (float64, bool) {
	switch x := v.(type) {
	case lua.LNumber:
		return float64(x), true
	case lua.LString:
		s := strings.Trim(string(x), " \t\n")
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			return float64(i), true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
	}
	return 0, false
}

// powCost is the gas of `x ^ y`: 1, plus 1 per squaring (⌊log2 |y|⌋) for an
// integer exponent. It depends on the exponent only.
func powCost(y float64) uint64 {
	if y == 0 || !isInt(lua.LNumber(y)) {
		return 1
	}
	n := int64(y)
	if n < 0 {
		n = -n
	}
	return uint64(bits.Len64(uint64(n)))
}

// pow computes x^y with results that are the same bits on every CPU.
// Exponents it accepts: integers within ±(2^53−1) (repeated squaring), 0.5
// (math.Sqrt, correctly rounded), ±inf and NaN (exact by C99's rules); for
// any other it reports false. Special cases follow C99 Annex F, which Lua
// 5.1's `^` inherits from pow(): x^0 = 1^y = 1 even for NaN.
func pow(x, y float64) (float64, bool) {
	switch {
	case y == 0 || x == 1:
		return 1, true
	case isInt(lua.LNumber(y)):
		if n := int64(y); n < 0 {
			// Lua 5.1 and C: one division at the end, so 2^-1 is exact; when
			// x^|n| overflows the result is 0 (C's pow may give a subnormal).
			return float64(1 / powUint(x, uint64(-n))), true
		}
		return powUint(x, uint64(y)), true
	case math.IsNaN(x) || math.IsNaN(y):
		return math.NaN(), true
	case y == 0.5:
		switch {
		case x == 0: // sqrt keeps the sign of -0, pow does not
			return 0, true
		case math.IsInf(x, -1): // sqrt(-inf) is NaN, pow(-inf, 0.5) is +inf
			return math.Inf(1), true
		}
		return math.Sqrt(x), true
	case math.IsInf(y, 0):
		ax := math.Abs(x)
		switch {
		case ax == 1:
			return 1, true
		case (ax > 1) == (y > 0):
			return math.Inf(1), true
		}
		return 0, true
	}
	return 0, false
}

// powUint is x^n for n ≥ 1 by binary exponentiation, one rounding per
// product. Each product is a statement of its own wrapped in float64(): the
// Go spec lets a compiler fuse operations (arm64, ppc64, s390x do, into
// fused multiply-adds) unless an explicit conversion asks for the rounding,
// and a fused result would differ from amd64's in the last bit.
func powUint(x float64, n uint64) float64 {
	r := 1.0
	for {
		if n&1 == 1 {
			r = float64(r * x)
		}
		n >>= 1
		if n == 0 {
			return r
		}
		x = float64(x * x)
	}
}
