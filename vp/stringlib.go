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
	if f := float64(n); f == math.Trunc(f) && f > -(1<<63) && f < 1<<63 {
		return strconv.FormatInt(int64(f), 10)
	}
	return fmt.Sprint(float64(n))
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

// strChar is string.char: every argument an integer 0..255 ("invalid
// value" otherwise, as in Lua), where gopher-lua's would wrap 256 to "\0".
func (v *vm) strChar(L *lua.LState) int {
	v.charge(1)
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

// strByte is string.byte, charged by the number of values it returns.
func (v *vm) strByte(f lua.LValue) lua.LGFunction {
	g := f.(*lua.LFunction).GFunction
	return func(L *lua.LState) int {
		v.charge(1)
		checkNumbers(L)
		n := g(L)
		v.charge(uint64(n / 8))
		return n
	}
}

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
	var b strings.Builder
	b.Grow(len(s)*n + len(sep)*(n-1))
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(s)
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// format is string.format with Lua's conversions only (%d %i %u %c %o %x
// %X %e %E %f %g %G %q %s %%); anything else (%p, %v, %T, ...) is refused.
// Numbers are formatted the same way on every machine.
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
		switch verb {
		case 'd', 'i', 'u':
			fmt.Fprintf(&b, spec+"d", v.intArg(L, arg))
		case 'c':
			b.WriteByte(byte(v.intArg(L, arg)))
		case 'o', 'x', 'X':
			fmt.Fprintf(&b, spec+string(verb), uint64(v.intArg(L, arg)))
		case 'e', 'E', 'f':
			fmt.Fprintf(&b, spec+string(verb), float64(L.CheckNumber(arg)))
		case 'g', 'G':
			if !hasPrec {
				spec += ".6"
			}
			fmt.Fprintf(&b, spec+string(verb), float64(L.CheckNumber(arg)))
		case 's':
			fmt.Fprintf(&b, spec+"s", v.tostring(L.CheckAny(arg)))
		case 'q':
			b.WriteString(quote(L.CheckString(arg)))
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

// intArg reads argument n under the integer rule.
func (v *vm) intArg(L *lua.LState, n int) int64 {
	i, err := Int(fromNumber(L.CheckNumber(n)))
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
