package vp

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// results sums the sizes of the string results a builtin left on the stack.
func results(L *lua.LState, n int) int {
	size := 0
	for i := L.GetTop() - n + 1; i <= L.GetTop(); i++ {
		if s, ok := L.Get(i).(lua.LString); ok {
			size += len(s)
		}
	}
	return size
}

// checkNumbers refuses number arguments outside ±(2^53−1) before a
// gopher-lua builtin converts them to int, which Go leaves
// implementation-dependent for out-of-range floats.
func checkNumbers(L *lua.LState) {
	for i := 1; i <= L.GetTop(); i++ {
		if n, ok := L.Get(i).(lua.LNumber); ok && !(n >= -maxInt && n <= maxInt) {
			L.ArgError(i, "number outside ±(2^53−1)")
		}
	}
}

// numString formats a number as gopher-lua does, except that integral values
// beyond int64 are formatted as floats on every architecture.
func numString(n lua.LNumber) string {
	if integral(n) {
		return strconv.FormatInt(int64(n), 10)
	}
	return fmt.Sprint(float64(n))
}

// integral reports whether n is written as an int64.
func integral(n lua.LNumber) bool {
	f := float64(n)
	return f == math.Trunc(f) && f > -(1<<63) && f < 1<<63
}

// floatTextGas is what writing a number that is not an int64 as text
// costs beyond its bytes: fmt's shortest representation takes a few
// hundred nanoseconds.
const floatTextGas = 4

// numText is numString, charged floatTextGas for a number that is not an
// int64.
func (v *vm) numText(n lua.LNumber) string {
	if !integral(n) {
		v.charge(floatTextGas)
	}
	return numString(n)
}

// number reads argument n as L.CheckNumber does, charging a string for
// being read as a number.
func (v *vm) number(L *lua.LState, n int) lua.LNumber {
	v.charge(parseCost(L.Get(n)))
	return L.CheckNumber(n)
}

// parseCost is the gas for reading x as a number: a string is read whole.
func parseCost(x lua.LValue) uint64 {
	if s, ok := x.(lua.LString); ok {
		return uint64(len(s) / parsedPerGas)
	}
	return 0
}

// coercing wraps a gopher-lua builtin that reads its arguments as numbers,
// charging 1 per argsPerGas arguments and each string argument for being
// read as one.
func (v *vm) coercing(g lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		v.charge(uint64(L.GetTop() / argsPerGas))
		for i := 1; i <= L.GetTop(); i++ {
			v.charge(parseCost(L.Get(i)))
		}
		return g(L)
	}
}

// stringArith is the metamethod event (__add, __sub, __mul, __div, __mod,
// __unm) of strings. Lua reads a string operand of arithmetic as a number,
// which gopher-lua does by parsing it whole at every operation; through
// the string metatable the sandbox charges for that parse and computes
// what the VM would: the numbers' result, else the other operand's own
// metamethod, else gopher-lua's error.
func (v *vm) stringArith(event string) lua.LGFunction {
	return func(L *lua.LState) int {
		a, b := L.Get(1), L.Get(2)
		v.charge(parseCost(a) + parseCost(b))
		x, okx := arithNumber(a)
		if event == "__unm" {
			if !okx {
				L.RaiseError("__unm undefined")
			}
			L.Push(lua.LNumber(-x))
			return 1
		}
		y, oky := arithNumber(b)
		if okx && oky {
			L.Push(lua.LNumber(arith(event, x, y)))
			return 1
		}
		for _, o := range []lua.LValue{a, b} {
			if _, str := o.(lua.LString); str {
				continue
			}
			if h, ok := L.GetMetaField(o, event).(*lua.LFunction); ok {
				L.Push(h)
				L.Push(a)
				L.Push(b)
				L.Call(2, 1)
				return 1
			}
		}
		typeName := func(x lua.LValue, ok bool) string {
			if ok {
				return lua.LTNumber.String()
			}
			return x.Type().String()
		}
		L.RaiseError("cannot perform %s operation between %s and %s", event[2:], typeName(a, okx), typeName(b, oky))
		return 0
	}
}

// arith is the operator of event on two numbers, as gopher-lua computes it.
func arith(event string, x, y float64) float64 {
	switch event {
	case "__add":
		return x + y
	case "__sub":
		return x - y
	case "__mul":
		return x * y
	case "__div":
		return x / y
	}
	m := math.Mod(x, y) // __mod: the sign of the divisor, as luaModulo
	if y > 0 && m < 0 || y < 0 && m > 0 {
		m += y
	}
	return m
}

// sized wraps a gopher-lua string builtin whose result is no larger than its
// arguments, charging for the strings it returns.
func (v *vm) sized(f lua.LValue) lua.LGFunction {
	g := f.(*lua.LFunction).GFunction
	return func(L *lua.LState) int {
		v.charge(1)
		checkNumbers(L)
		n := g(L)
		v.built(results(L, n))
		return n
	}
}

// caseMapped wraps string.upper or string.lower, which read s rune by rune:
// 1 more gas per 16 bytes than the string built.
func (v *vm) caseMapped(f lua.LValue) lua.LGFunction {
	g := v.sized(f)
	return func(L *lua.LState) int {
		v.charge(uint64(len(L.CheckString(1)) / 16))
		return g(L)
	}
}

// strChar is string.char: every argument an integer 0..255 ("invalid
// value" otherwise, as in Lua), where gopher-lua's would wrap 256 to "\0".
func (v *vm) strChar(L *lua.LState) int {
	v.charge(1 + uint64(L.GetTop()/argsPerGas))
	b := make([]byte, L.GetTop())
	for i := range b {
		c := v.intArg(L, i+1)
		if c < 0 || c > 255 {
			L.ArgError(i+1, "invalid value")
		}
		b[i] = byte(c)
	}
	v.built(len(b))
	L.Push(lua.LString(b))
	return 1
}

// strByte is string.byte(s [, i [, j]]) with gopher-lua's reading of the
// indexes, charged by the number of values before it pushes them.
func (v *vm) strByte(L *lua.LState) int {
	v.charge(1)
	checkNumbers(L)
	s := L.CheckString(1)
	i, j, n := L.OptInt(2, 1)-1, L.OptInt(3, -1), len(s)
	if i < 0 {
		i += n + 1
	}
	if j < 0 {
		j += n + 1
	}
	if L.GetTop() == 2 {
		if i < 0 || i >= n {
			return 0
		}
		L.Push(byteValues[s[i]])
		return 1
	}
	i, j = max(i, 0), min(j, n)
	if j <= i {
		return 0
	}
	v.values(j - i)
	grow(L, j-i)
	for k := i; k < j; k++ {
		L.Push(byteValues[s[k]])
	}
	return j - i
}

// byteValues are the numbers 0..255 as Lua values, boxed once: string.byte
// may return a megabyte of them.
var byteValues = func() (b [256]lua.LValue) {
	for i := range b {
		b[i] = lua.LNumber(i)
	}
	return b
}()

// rep is string.rep, charged by the size it builds before building it.
func (v *vm) rep(L *lua.LState) int {
	v.charge(1)
	s := L.CheckString(1)
	n := int(v.intArg(L, 2))
	sep := L.OptString(3, "")
	if n <= 0 || len(s)+len(sep) == 0 {
		L.Push(lua.LString(""))
		return 1
	}
	unit := len(s) + len(sep)
	if unit > 0 && n > v.r.lim.MaxString/unit+1 {
		v.built(v.r.lim.MaxString + 1)
	}
	v.built(len(s)*n + len(sep)*(n-1))
	L.Push(lua.LString(strings.Repeat(s+sep, n-1) + s))
	return 1
}

// format is string.format with Lua's conversions only (%d %i %u %c %o %x
// %X %e %E %f %g %G %q %s %%); anything else (%p, %v, %T, ...) is refused.
// Numbers are formatted the same way on every machine. Each conversion
// costs formatSpecGas, a number that is not an integer floatTextGas more.
func (v *vm) format(L *lua.LState) int {
	v.charge(1)
	f := L.CheckString(1)
	var b strings.Builder
	arg := 1
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			b.WriteByte(f[i])
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			b.WriteByte('%')
			continue
		}
		start := i
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 && i-start < 5 {
			i++
		}
		digits := func() {
			for d := 0; i < len(f) && f[i] >= '0' && f[i] <= '9'; d++ {
				if d == 2 {
					L.RaiseError("invalid format (width or precision too long)")
				}
				i++
			}
		}
		digits()
		hasPrec := false
		if i < len(f) && f[i] == '.' {
			hasPrec = true
			i++
			digits()
		}
		if i >= len(f) {
			L.RaiseError("invalid format string to 'format'")
		}
		spec, verb := "%"+f[start:i], f[i]
		arg++
		v.charge(formatSpecGas)
		switch verb {
		case 'd', 'i', 'u':
			fmt.Fprintf(&b, spec+"d", v.intArg(L, arg))
		case 'c':
			b.WriteByte(byte(v.intArg(L, arg)))
		case 'o', 'x', 'X':
			fmt.Fprintf(&b, spec+string(verb), uint64(v.intArg(L, arg)))
		case 'e', 'E', 'f', 'g', 'G':
			if !hasPrec && (verb == 'g' || verb == 'G') {
				spec += ".6"
			}
			x, before := float64(v.number(L, arg)), b.Len()
			fmt.Fprintf(&b, spec+string(verb), x)
			// Exact decimal digits of a large or precise number take
			// multi-precision arithmetic: charged by the digits written.
			v.charge(floatTextGas + uint64(b.Len()-before)/4)
		case 's':
			fmt.Fprintf(&b, spec+"s", v.tostring(L.CheckAny(arg)))
		case 'q':
			s := L.CheckString(arg)
			v.charge(uint64(len(s) / 8)) // quoted byte by byte
			b.WriteString(quote(s))
		default:
			L.RaiseError("invalid option '%%%c' to 'format'", verb)
		}
		if b.Len() > v.r.lim.MaxString {
			v.built(b.Len())
		}
	}
	v.built(b.Len())
	L.Push(lua.LString(b.String()))
	return 1
}

// formatSpecGas is the cost of one conversion of string.format.
const formatSpecGas = 2

// intArg reads argument n under the integer rule.
func (v *vm) intArg(L *lua.LState, n int) int64 {
	i, err := Int(fromNumber(v.number(L, n)))
	if err != nil {
		L.ArgError(n, err.Error())
	}
	return i
}

// quote is %q: a Lua string literal that reads back as s.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString("\\n")
		case '\r':
			b.WriteString("\\r")
		case 0:
			b.WriteString("\\000")
		default:
			if c < 32 || c == 127 {
				b.WriteString("\\" + strconv.Itoa(int(c)))
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
