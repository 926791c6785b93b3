package vp

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// maxPatternSubject bounds the strings the pattern functions (find, match,
// gmatch, gsub) search: gopher-lua's matcher recurses per character.
const maxPatternSubject = 1 << 16

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

// quantifiers counts the pattern items that can backtrack: *, +, -, ? and %b.
func quantifiers(p string) int {
	q := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			if i+1 < len(p) && p[i+1] == 'b' {
				q++
				i += 3
			} else {
				i++
			}
		case '[':
			j := i + 1
			if j < len(p) && p[j] == '^' {
				j++
			}
			if j < len(p) && p[j] == ']' { // a leading ']' is literal
				j++
			}
			for j < len(p) && p[j] != ']' {
				if p[j] == '%' {
					j++
				}
				j++
			}
			i = j
		case '*', '+', '-', '?':
			q++
		}
	}
	return q
}

// patternCost bounds the steps of a backtracking match of a pattern with q
// quantifiers over n bytes: (n+1)^(q+1), saturating.
func patternCost(n, q int) uint64 {
	const ceiling = uint64(1) << 62
	c := uint64(1)
	for i := 0; i <= q; i++ {
		if c > ceiling/uint64(n+1) {
			return ceiling
		}
		c *= uint64(n + 1)
	}
	return c
}

// pattern wraps find, match, gmatch and gsub: the subject is bounded, the
// match is charged by patternCost/16 up front, a gsub result by its bound
// before it is built, and returned strings by their size.
func (v *vm) pattern(f lua.LValue) lua.LGFunction {
	g := f.(*lua.LFunction).GFunction
	return func(L *lua.LState) int {
		checkNumbers(L)
		s, p := L.CheckString(1), L.CheckString(2)
		if len(s) > maxPatternSubject {
			L.RaiseError("pattern subject of %d bytes is longer than %d", len(s), maxPatternSubject)
		}
		q := quantifiers(p)
		if L.ToBool(4) && L.Get(4).Type() == lua.LTBool { // find(s, p, init, plain)
			q = 0
		}
		v.charge(1 + patternCost(len(s), q)/16)
		if L.GetTop() >= 3 {
			v.gsubRepl(L, len(s))
		}
		n := g(L)
		v.built(results(L, n))
		return n
	}
}

// gsubRepl bounds what string.gsub may build from its replacement (a
// no-op for find's and match's third argument, a number). A replacement
// string is bounded by its length and capture references; a table or
// function is wrapped so that the replacements it yields are counted.
func (v *vm) gsubRepl(L *lua.LState, n int) {
	switch r := L.Get(3).(type) {
	case lua.LString:
		matches := n + 1
		if mx, ok := L.Get(4).(lua.LNumber); ok && int(mx) < matches {
			matches = max(int(mx), 0)
		}
		refs := strings.Count(string(r), "%")
		v.built(min(n+matches*len(r)+refs*n, v.r.lim.MaxString+1))
	case *lua.LTable, *lua.LFunction:
		total := n
		L.Replace(3, L.NewFunction(func(L *lua.LState) int {
			var out lua.LValue
			if t, ok := r.(*lua.LTable); ok {
				out = L.GetTable(t, L.Get(1))
			} else {
				top := L.GetTop()
				L.Push(r)
				for i := 1; i <= top; i++ {
					L.Push(L.Get(i))
				}
				L.Call(top, 1)
				out = L.Get(-1)
			}
			switch o := out.(type) {
			case lua.LString:
				total += len(o)
			case lua.LNumber:
				total += len(numString(o))
			}
			if total > v.r.lim.MaxString {
				v.built(total)
			}
			L.Push(out)
			return 1
		}))
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
