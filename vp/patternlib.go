package vp

import (
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// startIndex is the 0-based position where find and match start: Lua 5.1's
// init argument, counted from the end when negative, clamped to the string.
func startIndex(L *lua.LState, n, length int) int {
	init := L.OptInt(n, 1)
	if init < 0 {
		init += length + 1
	}
	return min(max(init-1, 0), length)
}

// strFind is string.find(s, p [, init [, plain]]).
func (v *vm) strFind(L *lua.LState) int { return v.findOrMatch(L, true) }

// strMatch is string.match(s, p [, init]).
func (v *vm) strMatch(L *lua.LState) int { return v.findOrMatch(L, false) }

func (v *vm) findOrMatch(L *lua.LState, find bool) int {
	checkNumbers(L)
	s, p := L.CheckString(1), L.CheckString(2)
	init := startIndex(L, 3, len(s))
	if find && (L.ToBool(4) || !strings.ContainsAny(p, patternSpecials)) {
		// A plain search: 1 gas per started 32 bytes searched.
		v.charge(1 + uint64(len(s)-init+31)/32)
		i := strings.Index(s[init:], p)
		if i < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + i + 1))
		L.Push(lua.LNumber(init + i + len(p)))
		return 2
	}
	m := v.newMatcher(L, s, p, true)
	start, end := m.find(init)
	m.flush()
	if start < 0 {
		L.Push(lua.LNil)
		return 1
	}
	n := 0
	if find {
		L.Push(lua.LNumber(start + 1))
		L.Push(lua.LNumber(end))
		n = 2
	}
	n += m.pushCaptures(L, start, end, !find)
	v.built(results(L, n))
	return n
}

// strGmatch is string.gmatch(s, p): an iterator over the matches of p in s.
// A leading ^ is a literal here, as in Lua 5.1. Each call of the iterator
// costs 1 gas plus its steps.
func (v *vm) strGmatch(L *lua.LState) int {
	s, p := L.CheckString(1), L.CheckString(2)
	m := v.newMatcher(L, s, p, false)
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		v.charge(1)
		m.left = v.gasLeft()
		for ; pos <= len(s); pos++ {
			if e := m.at(pos); e >= 0 {
				start := pos
				pos = e
				if e == start { // an empty match: go on one byte further
					pos++
				}
				m.flush()
				n := m.pushCaptures(L, start, e, true)
				v.built(results(L, n))
				return n
			}
		}
		m.flush()
		return 0
	}))
	return 1
}

// strGsub is string.gsub(s, p, repl [, n]) with a string, number, table or
// function replacement. The result is checked against MaxString as it grows
// and charged as a built string at the end; a replacement function or a
// table's __index runs metered like any Lua code.
func (v *vm) strGsub(L *lua.LState) int {
	checkNumbers(L)
	src, p := L.CheckString(1), L.CheckString(2)
	repl := L.Get(3)
	switch repl.(type) {
	case lua.LString, lua.LNumber, *lua.LTable, *lua.LFunction:
	default:
		L.ArgError(3, "string/function/table expected")
	}
	maxN := L.OptInt(4, len(src)+1)
	m := v.newMatcher(L, src, p, true)
	g := gsubber{v: v, L: L, m: &m}
	n, s := 0, 0
loop:
	for n < maxN {
		e := m.at(s)
		if e >= 0 {
			n++
			g.replace(repl, s, e)
		}
		switch {
		case e > s:
			s = e
		case s < len(src):
			g.add(src[s : s+1])
			s++
		default:
			break loop
		}
		if m.pat.anchor {
			break
		}
	}
	g.add(src[s:])
	m.flush()
	v.built(len(g.out))
	L.Push(lua.LString(g.out))
	L.Push(lua.LNumber(n))
	return 2
}

// gsubber builds string.gsub's result.
type gsubber struct {
	v   *vm
	L   *lua.LState
	m   *matcher
	out []byte
}

// add appends to the result, refusing to grow it past MaxString.
func (g *gsubber) add(piece string) {
	if len(g.out)+len(piece) > g.v.r.lim.MaxString {
		g.m.flush()
		g.v.built(len(g.out) + len(piece))
	}
	g.out = append(g.out, piece...)
}

// replace appends the replacement of the match src[s:e].
func (g *gsubber) replace(repl lua.LValue, s, e int) {
	L, m := g.L, g.m
	var val lua.LValue
	switch r := repl.(type) {
	case lua.LString:
		g.expand(string(r), s, e)
		return
	case lua.LNumber:
		g.expand(numString(r), s, e)
		return
	case *lua.LTable:
		m.flush()
		val = L.GetTable(r, m.capture(0, s, e))
	case *lua.LFunction:
		m.flush()
		L.Push(r)
		L.Call(m.pushCaptures(L, s, e, true), 1)
		val = L.Get(-1)
		L.Pop(1)
	}
	m.left = g.v.gasLeft()
	switch x := val.(type) {
	case *lua.LNilType:
		g.add(m.src[s:e])
	case lua.LBool:
		if x {
			L.RaiseError("invalid replacement value (a boolean)")
		}
		g.add(m.src[s:e])
	case lua.LString:
		g.add(string(x))
	case lua.LNumber:
		g.add(g.v.numText(x))
	default:
		L.RaiseError("invalid replacement value (a %s)", val.Type())
	}
}

// expand appends a replacement string: %0 is the whole match, %1-%9 the
// captures (%1 is the whole match when there are none), % before any other
// byte stands for that byte.
func (g *gsubber) expand(r string, s, e int) {
	m := g.m
	for {
		i := strings.IndexByte(r, '%')
		if i < 0 {
			g.add(r)
			return
		}
		g.add(r[:i])
		if i+1 == len(r) {
			g.L.RaiseError("%s", "invalid use of '%' in replacement string")
		}
		c := r[i+1]
		r = r[i+2:]
		switch {
		case c == '0':
			g.add(m.src[s:e])
		case '1' <= c && c <= '9':
			l := int(c - '1')
			if l >= m.level && l > 0 {
				g.L.RaiseError("invalid capture index %%%c in replacement string", c)
			}
			switch x := m.capture(l, s, e).(type) {
			case lua.LNumber:
				g.add(strconv.Itoa(int(x)))
			case lua.LString:
				g.add(string(x))
			}
		default:
			g.add(string(c))
		}
	}
}
