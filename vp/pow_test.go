package vp

import (
	"errors"
	"math"
	"math/big"
	"reflect"
	"testing"
)

// bigPow is the float64 nearest to the exact integer x^n.
func bigPow(x, n int64) float64 {
	exact := new(big.Int).Exp(big.NewInt(x), big.NewInt(n), nil)
	f, _ := new(big.Float).SetInt(exact).Float64()
	return f
}

func TestPowExactBits(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	negZero := math.Copysign(0, -1)
	for _, c := range []struct {
		x, y, want float64
	}{
		{2, 10, 1024},
		{2, -1, 0.5},
		{-2, 3, -8},
		{0, 0, 1},
		{nan, 0, 1},
		{1, nan, 1},
		{2, 1023, math.Ldexp(1, 1023)},
		{10, 22, 1e22},
		{10, -1, 0.1},
		{3, 40, bigPow(3, 40)},
		{7, 23, bigPow(7, 23)},
		{2, 0.5, math.Sqrt(2)},
		{12345.678, 0.5, math.Sqrt(12345.678)},
		{negZero, 0.5, 0},
		{-inf, 0.5, inf},
		{-4, 0.5, nan},
		{negZero, 3, negZero},
		{negZero, -3, -inf},
		{0, -2, inf},
		{-inf, 3, -inf},
		{-inf, -3, negZero},
		{2, -1074, 0}, // 2^1074 overflows before the division: 0, not a subnormal
		{0.5, 1074, math.SmallestNonzeroFloat64},
		{nan, 3, nan},
		{2, nan, nan},
		{-1, inf, 1},
		{-1, -inf, 1},
		{0.5, inf, 0},
		{0.5, -inf, inf},
		{-3, inf, inf},
		{-3, -inf, 0},
		{1.0000001, 1<<53 - 1, inf},
	} {
		got, ok := pow(c.x, c.y)
		if !ok || math.Float64bits(got) != math.Float64bits(c.want) && !(math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("%v ^ %v = %v (%v), want %v", c.x, c.y, got, ok, c.want)
		}
	}
}

// TestPowIntegersExact checks every integer power below 2^53 of the small
// integers, where one rounding per product loses nothing.
func TestPowIntegersExact(t *testing.T) {
	for x := int64(-20); x <= 20; x++ {
		for n := int64(0); n <= 60; n++ {
			exact := new(big.Int).Exp(big.NewInt(x), big.NewInt(n), nil)
			if exact.CmpAbs(big.NewInt(maxInt)) > 0 {
				break
			}
			if got, ok := pow(float64(x), float64(n)); !ok || got != float64(exact.Int64()) {
				t.Fatalf("%d ^ %d = %v, want %v", x, n, got, exact)
			}
		}
	}
}

func TestPowRefused(t *testing.T) {
	for _, y := range []float64{1.5, -0.5, 1.0 / 3, 1 << 53, -(1 << 53), 1e300} {
		if got, ok := pow(2, y); ok {
			t.Errorf("2 ^ %v = %v accepted", y, got)
		}
	}
}

func TestPowInLua(t *testing.T) {
	res, err := runSrc(t, `local x = 2 return x^10, x^-1, (-x)^3, 0^0, x^1023*2, 10^22, 3^40, x^0.5, "3"^2, -x^2, 2^3^2`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(1024), 0.5, int64(-8), int64(1), math.Inf(1), 1e22, bigPow(3, 40), math.Sqrt(2), int64(9), int64(-4), int64(512)}
	if !reflect.DeepEqual(res.Values, want) {
		t.Fatalf("got %v, want %v", res.Values, want)
	}
}

func TestPowRefusalText(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"local x = 2\nreturn x ^ 1.5", "t.lua:2: non-integer exponent is not supported (results would differ across machines)"},
		{"return 2 ^ 2^53", "t.lua:1: non-integer exponent is not supported (results would differ across machines)"},
		{"return {} ^ 2", "t.lua:1: cannot perform pow operation between table and number"},
		{"return 2 ^ 'x'", "t.lua:1: cannot perform pow operation between number and string"},
		{"return setmetatable({}, {__pow = function() return 1 end}) ^ 2", "t.lua:1: cannot perform pow operation between table and number"},
	} {
		res, err := runSrc(t, c.src, nil)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindRuntime || err.Error() != c.want {
			t.Errorf("%q: got %v, want %s", c.src, err, c.want)
		}
		if res.Values != nil {
			t.Errorf("%q: values %v after a refusal", c.src, res.Values)
		}
	}
	// Catchable like any runtime error; state set before it stays as it was.
	res, err := runSrc(t, `local t = {n = 1}
local ok, e = pcall(function() t.n = 2 ^ 0.25 end)
return ok, e, t.n`, nil)
	want := []any{false, "t.lua:2: non-integer exponent is not supported (results would differ across machines)", int64(1)}
	if err != nil || !reflect.DeepEqual(res.Values, want) {
		t.Fatalf("got %v %v, want %v", res.Values, err, want)
	}
}

func TestPowReservedName(t *testing.T) {
	_, err := Compile("t.lua", []byte("return __fx_pow(2, 0.5)"))
	if err == nil || err.Error() != `t.lua:1: identifier "__fx_pow" uses the reserved prefix "__fx_"` {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkPowLua runs 10000 powers in Lua; compare BenchmarkLoopInstrumented
// for the loop's own cost.
func BenchmarkPowLua(b *testing.B) {
	p := mustCompile(b, "pow.lua", `local s, x = 0, 1.0001 for i = 1, 10000 do s = s + x ^ i end return s`)
	pool := NewPool()
	lim := DefaultLimits()
	lim.Gas = 1 << 40
	for b.Loop() {
		if _, err := pool.Run(p, Call{Limits: lim}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPowGo and BenchmarkMathPow compare the power itself with Go's.
func BenchmarkPowGo(b *testing.B) {
	s := 0.0
	for i := 0; b.Loop(); i++ {
		r, _ := pow(1.0001, float64(i%10000))
		s += r
	}
	_ = s
}

func BenchmarkMathPow(b *testing.B) {
	s := 0.0
	for i := 0; b.Loop(); i++ {
		s += math.Pow(1.0001, float64(i%10000))
	}
	_ = s
}
