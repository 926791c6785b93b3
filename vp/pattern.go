package vp

// Lua 5.1 pattern matching, ported from lstrlib.c so that the sandbox can
// charge every step of the matcher as gas: gopher-lua's own matcher (package
// pm) cannot be metered, and a worst-case estimate made ordinary patterns
// absurdly expensive. Results follow Lua 5.1; the differences (a malformed
// pattern is refused before matching, nested matcher calls are bounded as in
// Lua 5.2, a NUL byte is an ordinary pattern character) are listed in
// docs/formats/lua-values.md.

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

const (
	maxCaptures   = 32  // LUA_MAXCAPTURES
	maxMatchDepth = 200 // Lua 5.2's MAXCCALLS: nested matcher calls
	capUnfinished = -1
	capPosition   = -2
	// patternSpecials are the bytes that make string.find use the matcher.
	patternSpecials = "^$*+?.([%-"
)

// charset is a set of bytes, one bit each.
type charset [4]uint64

func (c *charset) has(b byte) bool { return c[b>>6]&(1<<(b&63)) != 0 }
func (c *charset) add(b byte)      { c[b>>6] |= 1 << (b & 63) }

func (c *charset) union(o *charset) {
	for i := range c {
		c[i] |= o[i]
	}
}

func (c *charset) invert() {
	for i := range c {
		c[i] = ^c[i]
	}
}

// addRange adds lo..hi a word at a time, so a set costs the same to build
// whatever its ranges span.
func (c *charset) addRange(lo, hi byte) {
	if lo > hi {
		return
	}
	for w := int(lo) >> 6; w <= int(hi)>>6; w++ {
		from, to := max(int(lo), w*64)-w*64, min(int(hi), w*64+63)-w*64
		c[w] |= (^uint64(0) >> (63 - to)) &^ (1<<from - 1)
	}
}

// classes holds the sets of %a %c %d %l %p %s %u %w %x %z in the C locale,
// indexed by the lower-case letter.
var classes = func() map[byte]*charset {
	in := func(b, lo, hi int) bool { return lo <= b && b <= hi }
	tests := map[byte]func(b int) bool{
		'a': func(b int) bool { return in(b, 'A', 'Z') || in(b, 'a', 'z') },
		'c': func(b int) bool { return in(b, 0, 31) || b == 127 },
		'd': func(b int) bool { return in(b, '0', '9') },
		'l': func(b int) bool { return in(b, 'a', 'z') },
		'p': func(b int) bool { return in(b, 33, 47) || in(b, 58, 64) || in(b, 91, 96) || in(b, 123, 126) },
		's': func(b int) bool { return in(b, 9, 13) || b == ' ' },
		'u': func(b int) bool { return in(b, 'A', 'Z') },
		'w': func(b int) bool { return in(b, '0', '9') || in(b, 'A', 'Z') || in(b, 'a', 'z') },
		'x': func(b int) bool { return in(b, '0', '9') || in(b, 'a', 'f') || in(b, 'A', 'F') },
		'z': func(b int) bool { return b == 0 },
	}
	m := map[byte]*charset{}
	for letter, test := range tests {
		var c charset
		for b := 0; b < 256; b++ {
			if test(b) {
				c.add(byte(b))
			}
		}
		m[letter] = &c
	}
	return m
}()

// classSet is what `%cl` matches: a class, its complement for an upper-case
// letter, or the byte cl itself.
func classSet(cl byte) charset {
	var c charset
	lower := cl | 0x20
	if set, ok := classes[lower]; ok {
		c = *set
		if cl != lower {
			c.invert()
		}
		return c
	}
	c.add(cl)
	return c
}

type itemKind uint8

const (
	itemChar     itemKind = iota // one literal byte: a
	itemAny                      // .
	itemSet                      // a class or [set]: sets[set]
	itemOpen                     // (
	itemPosition                 // ()
	itemClose                    // )
	itemBalance                  // %bab
	itemFrontier                 // %f[set]
	itemBackref                  // %1-%9: capture a (from 0)
	itemEnd                      // $ at the end of the pattern
)

type item struct {
	kind  itemKind
	quant byte // 0, or one of ? * + - after a single-byte item
	a, b  byte
	set   uint32
}

// pattern is a compiled Lua pattern. Compiling checks everything that Lua 5.1
// would check only when the matcher reaches it, so a malformed pattern is
// refused whatever the subject.
type pattern struct {
	anchor bool // ^ at the start (not for gmatch, where it is a literal)
	items  []item
	sets   []charset
}

// compilePattern compiles p; anchored says whether a leading ^ anchors the
// match. The error is the message Lua code sees.
func compilePattern(p string, anchored bool) (*pattern, string) {
	pat := &pattern{}
	i := 0
	if anchored && strings.HasPrefix(p, "^") {
		pat.anchor = true
		i = 1
	}
	var open []int    // captures not yet closed, innermost last
	var closed []bool // every capture so far: closed yet?
	for i < len(p) {
		c := p[i]
		var next byte
		if i+1 < len(p) {
			next = p[i+1]
		}
		switch {
		case c == '(':
			if len(closed) == maxCaptures {
				return nil, "too many captures"
			}
			if next == ')' {
				pat.items = append(pat.items, item{kind: itemPosition})
				closed = append(closed, true)
				i += 2
				continue
			}
			open = append(open, len(closed))
			closed = append(closed, false)
			pat.items = append(pat.items, item{kind: itemOpen})
			i++
		case c == ')':
			if len(open) == 0 {
				return nil, "invalid pattern capture (')' without '(')"
			}
			closed[open[len(open)-1]] = true
			open = open[:len(open)-1]
			pat.items = append(pat.items, item{kind: itemClose})
			i++
		case c == '$' && i+1 == len(p):
			pat.items = append(pat.items, item{kind: itemEnd})
			i++
		case c == '%' && next == 'b':
			if i+4 > len(p) {
				return nil, "malformed pattern (missing arguments to '%b')"
			}
			pat.items = append(pat.items, item{kind: itemBalance, a: p[i+2], b: p[i+3]})
			i += 4
		case c == '%' && next == 'f':
			i += 2
			if i >= len(p) || p[i] != '[' {
				return nil, "missing '[' after '%f' in pattern"
			}
			end, err := classEnd(p, i)
			if err != "" {
				return nil, err
			}
			pat.items = append(pat.items, item{kind: itemFrontier, set: pat.addSet(bracket(p, i, end-1))})
			i = end
		case c == '%' && '0' <= next && next <= '9':
			l := int(next) - '1'
			if l < 0 || l >= len(closed) || !closed[l] {
				return nil, "invalid capture index %" + string(next) + " in pattern"
			}
			pat.items = append(pat.items, item{kind: itemBackref, a: byte(l)})
			i += 2
		default:
			end, err := classEnd(p, i)
			if err != "" {
				return nil, err
			}
			it := item{kind: itemChar, a: c}
			switch c {
			case '.':
				it.kind = itemAny
			case '%':
				it = item{kind: itemSet, set: pat.addSet(classSet(next))}
			case '[':
				it = item{kind: itemSet, set: pat.addSet(bracket(p, i, end-1))}
			}
			if end < len(p) && strings.IndexByte("?*+-", p[end]) >= 0 {
				it.quant = p[end]
				end++
			}
			pat.items = append(pat.items, it)
			i = end
		}
	}
	if len(open) > 0 {
		return nil, "unfinished capture"
	}
	return pat, ""
}

func (pat *pattern) addSet(c charset) uint32 {
	pat.sets = append(pat.sets, c)
	return uint32(len(pat.sets) - 1)
}

// classEnd is lstrlib.c's classEnd: the index just past the single-byte
// item at p[i] (a byte, %x or [set]).
func classEnd(p string, i int) (int, string) {
	c := p[i]
	i++
	switch c {
	case '%':
		if i >= len(p) {
			return 0, "malformed pattern (ends with '%')"
		}
		return i + 1, ""
	case '[':
		if i < len(p) && p[i] == '^' {
			i++
		}
		for { // the first byte of a set is never its end: "[]]" is a set of ']'
			if i >= len(p) {
				return 0, "malformed pattern (missing ']')"
			}
			c := p[i]
			i++
			if c == '%' && i < len(p) {
				i++
			}
			if i < len(p) && p[i] == ']' {
				return i + 1, ""
			}
		}
	}
	return i, ""
}

// bracket is lstrlib.c's matchbracketclass turned into a set: p[start] is
// '[' and p[ec] its closing ']'.
func bracket(p string, start, ec int) charset {
	var c charset
	j := start
	neg := p[j+1] == '^'
	if neg {
		j++
	}
	for j++; j < ec; j++ {
		switch {
		case p[j] == '%':
			j++
			set := classSet(p[j])
			c.union(&set)
		case p[j+1] == '-' && j+2 < ec:
			c.addRange(p[j], p[j+2])
			j += 2
		default:
			c.add(p[j])
		}
	}
	if neg {
		c.invert()
	}
	return c
}

type capture struct{ init, len int }

// matcher runs a compiled pattern over a subject, counting one gas unit per
// step (see docs/formats/lua-values.md). Steps are counted locally and
// charged to the run at flush; once they exceed what the run has left the
// run ends out of gas, at the same step on every machine.
type matcher struct {
	v     *vm
	pat   *pattern
	src   string
	level int // captures open or closed on the current path
	caps  [maxCaptures]capture
	depth int    // nested match calls
	used  uint64 // steps not yet charged
	left  uint64 // gas the run had at the last flush
}

// newMatcher charges a pattern function's call and the compiling of p, and
// compiles it. Compiling costs 1 gas per started 8 bytes of pattern.
func (v *vm) newMatcher(L *lua.LState, src, p string, anchored bool) matcher {
	v.charge(1 + uint64(len(p)+7)/8)
	pat, err := v.compiled(p, anchored)
	if err != "" {
		L.RaiseError("%s", err)
	}
	return matcher{v: v, pat: pat, src: src, left: v.gasLeft()}
}

// A VM keeps up to maxPatterns compiled patterns of at most
// maxPatternText bytes: predicates match the same few literal patterns in
// every run. A compiled pattern is never changed, and the gas of compiling
// is charged either way.
const (
	maxPatterns    = 64
	maxPatternText = 256
)

type patternKey struct {
	text     string
	anchored bool
}

// compiled is compilePattern through the VM's cache.
func (v *vm) compiled(p string, anchored bool) (*pattern, string) {
	k := patternKey{p, anchored}
	if pat, ok := v.patterns[k]; ok {
		return pat, ""
	}
	pat, err := compilePattern(p, anchored)
	if err == "" && len(p) <= maxPatternText && len(v.patterns) < maxPatterns {
		if v.patterns == nil {
			v.patterns = make(map[patternKey]*pattern)
		}
		v.patterns[k] = pat
	}
	return pat, err
}

// gasLeft is what the run may still spend: the Go-side budget and the
// Lua-side credit.
func (v *vm) gasLeft() uint64 {
	return v.r.remaining + uint64(max(v.credit(), 0))
}

func (m *matcher) step(n uint64) {
	m.used += n
	if m.used > m.left {
		m.v.charge(m.used) // more than the run has: ends it out of gas
	}
}

// flush charges the counted steps; it comes before anything else charges the
// run (a replacement function, the strings built).
func (m *matcher) flush() {
	m.v.charge(m.used)
	m.used = 0
	m.left = m.v.gasLeft()
}

// at tries the whole pattern at s: the end of the match, or -1.
func (m *matcher) at(s int) int {
	m.level, m.depth = 0, 0
	return m.match(s, 0)
}

// find tries the pattern at init, init+1, ... (only init when anchored): the
// first match's start and end, or -1, -1.
func (m *matcher) find(init int) (int, int) {
	for s := init; ; s++ {
		if e := m.at(s); e >= 0 {
			return s, e
		}
		if s >= len(m.src) || m.pat.anchor {
			return -1, -1
		}
	}
}

func (m *matcher) match(s, ip int) int {
	if m.depth == maxMatchDepth {
		m.v.L.RaiseError("pattern too complex")
	}
	m.depth++
	e := m.doMatch(s, ip)
	m.depth--
	return e
}

// doMatch is lstrlib.c's match: each pass of its loop is one step.
func (m *matcher) doMatch(s, ip int) int {
	items, src := m.pat.items, m.src
	for {
		m.step(1)
		if ip == len(items) {
			return s
		}
		it := &items[ip]
		switch it.kind {
		case itemOpen:
			return m.startCapture(s, ip, capUnfinished)
		case itemPosition:
			return m.startCapture(s, ip, capPosition)
		case itemClose:
			return m.endCapture(s, ip)
		case itemEnd:
			if s == len(src) {
				return s
			}
			return -1
		case itemBalance:
			if s = m.balance(s, it.a, it.b); s < 0 {
				return -1
			}
		case itemFrontier:
			var prev, cur byte // '\0' before the start and at the end, as in C
			if s > 0 {
				prev = src[s-1]
			}
			if s < len(src) {
				cur = src[s]
			}
			set := &m.pat.sets[it.set]
			if set.has(prev) || !set.has(cur) {
				return -1
			}
		case itemBackref:
			if s = m.backref(s, int(it.a)); s < 0 {
				return -1
			}
		default:
			ok := s < len(src) && m.single(src[s], it)
			switch it.quant {
			case '?':
				if ok {
					if e := m.match(s+1, ip+1); e >= 0 {
						return e
					}
				}
			case '*':
				return m.maxExpand(s, ip)
			case '+':
				if !ok {
					return -1
				}
				return m.maxExpand(s+1, ip)
			case '-':
				return m.minExpand(s, ip)
			default:
				if !ok {
					return -1
				}
				s++
			}
		}
		ip++
	}
}

func (m *matcher) single(c byte, it *item) bool {
	switch it.kind {
	case itemChar:
		return c == it.a
	case itemAny:
		return true
	}
	return m.pat.sets[it.set].has(c)
}

// maxExpand matches as many repetitions as possible, then gives them back
// one by one; every byte tested is a step.
func (m *matcher) maxExpand(s, ip int) int {
	it := &m.pat.items[ip]
	i := 0
	for s+i < len(m.src) {
		m.step(1)
		if !m.single(m.src[s+i], it) {
			break
		}
		i++
	}
	for ; i >= 0; i-- {
		if e := m.match(s+i, ip+1); e >= 0 {
			return e
		}
	}
	return -1
}

// minExpand matches as few repetitions as possible; every byte tested is a
// step.
func (m *matcher) minExpand(s, ip int) int {
	it := &m.pat.items[ip]
	for {
		if e := m.match(s, ip+1); e >= 0 {
			return e
		}
		m.step(1)
		if s >= len(m.src) || !m.single(m.src[s], it) {
			return -1
		}
		s++
	}
}

func (m *matcher) startCapture(s, ip, what int) int {
	m.caps[m.level] = capture{init: s, len: what}
	m.level++
	e := m.match(s, ip+1)
	if e < 0 {
		m.level--
	}
	return e
}

func (m *matcher) endCapture(s, ip int) int {
	l := m.level - 1
	for m.caps[l].len != capUnfinished { // compiling made sure there is one
		l--
	}
	m.caps[l].len = s - m.caps[l].init
	e := m.match(s, ip+1)
	if e < 0 {
		m.caps[l].len = capUnfinished
	}
	return e
}

// balance is %bab; every byte scanned is a step.
func (m *matcher) balance(s int, a, b byte) int {
	if s >= len(m.src) || m.src[s] != a {
		return -1
	}
	open := 1
	for s++; s < len(m.src); s++ {
		m.step(1)
		switch m.src[s] {
		case b:
			if open--; open == 0 {
				return s + 1
			}
		case a:
			open++
		}
	}
	return -1
}

// backref is %1-%9: the capture's text again, 1 step per started 32 bytes
// compared. A position capture never matches (as in Lua 5.1).
func (m *matcher) backref(s, l int) int {
	c := m.caps[l]
	if c.len < 0 {
		return -1
	}
	m.step(uint64(c.len+31) / 32)
	if len(m.src)-s >= c.len && m.src[s:s+c.len] == m.src[c.init:c.init+c.len] {
		return s + c.len
	}
	return -1
}

// capture is capture i of the match src[s:e] as Lua sees it: a string, a
// position, or the whole match when the pattern has no captures and i is 0.
func (m *matcher) capture(i, s, e int) lua.LValue {
	if i >= m.level {
		return lua.LString(m.src[s:e])
	}
	c := m.caps[i]
	if c.len == capPosition {
		return lua.LNumber(c.init + 1)
	}
	return lua.LString(m.src[c.init : c.init+c.len])
}

// pushCaptures pushes the captures of the match src[s:e] (the whole match
// if there are none and whole is set) and returns how many.
func (m *matcher) pushCaptures(L *lua.LState, s, e int, whole bool) int {
	n := m.level
	if n == 0 && whole {
		n = 1
	}
	for i := 0; i < n; i++ {
		L.Push(m.capture(i, s, e))
	}
	return n
}
