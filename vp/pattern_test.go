package vp

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// bigLimits leaves room for a whole corpus in one run.
func bigLimits() Limits {
	l := DefaultLimits()
	l.Gas = 100_000_000
	l.MaxMemory = 1 << 30
	return l
}

// TestPatternsAgreeWithLua51 runs the pattern corpus in the sandbox and
// compares every line with what Lua 5.1 itself printed for it
// (testdata/patterns/lua51.txt, made by `lua5.1 corpus.lua`).
func TestPatternsAgreeWithLua51(t *testing.T) {
	src, err := os.ReadFile("testdata/patterns/corpus.lua")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/patterns/lua51.txt")
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewPool().Run(mustCompile(t, "corpus.lua", string(src)), Call{Limits: bigLimits()})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(res.Log) != len(lines) || len(lines) < 600 {
		t.Fatalf("%d lines, Lua 5.1 printed %d", len(res.Log), len(lines))
	}
	for i, w := range lines {
		if res.Log[i] != w {
			t.Errorf("sandbox: %s\nLua 5.1: %s", res.Log[i], w)
		}
	}
}

// findProgram runs string.find in the sandbox for the differential tests.
var findProgram = func() *Program {
	p, err := Compile("find.lua", []byte("return string.find(s, p)"))
	if err != nil {
		panic(err)
	}
	return p
}()

// sandboxFind is string.find(s, p) in the sandbox, its results printed;
// ok is false when it raised an error.
func sandboxFind(pool *Pool, s, p string) (out string, err error) {
	res, err := pool.Run(findProgram, Call{Globals: map[string]any{"s": s, "p": p}, Limits: bigLimits()})
	return fmt.Sprint(res.Values...), err
}

// gopherFind is string.find(s, p) by gopher-lua's own matcher in a bare
// state; ok is false when it raised an error or panicked.
func gopherFind(s, p string) (out string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	lua.OpenString(L)
	find := L.GetField(L.Get(-1), "find")
	if err := L.CallByParam(lua.P{Fn: find, NRet: lua.MultRet, Protect: true}, lua.LString(s), lua.LString(p)); err != nil {
		return "", false
	}
	var vals []any
	for i := 2; i <= L.GetTop(); i++ { // 1 is the string table
		switch x := L.Get(i).(type) {
		case lua.LNumber:
			vals = append(vals, int64(x))
		case lua.LString:
			vals = append(vals, string(x))
		default:
			vals = append(vals, nil)
		}
	}
	return fmt.Sprint(vals...), true
}

// gopherDeparts says whether p uses something gopher-lua's matcher does
// differently from Lua 5.1 (checked against lua5.1 in the corpus): it has no
// %f, a back-reference to a position capture matches for it, and it reads a
// '-' in a set otherwise than as Lua 5.1 does unless the set is plain
// ranges of letters and digits ("[%a-z]", "[0-%0]", "[0-0-0]", "[]--0]").
func gopherDeparts(p string) bool {
	if departsOutsideSets.MatchString(p) {
		return true
	}
	if !strings.Contains(p, "-") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			i++
		} else if p[i] == '[' && !plainSet.MatchString(p[i:]) {
			return true
		}
	}
	return false
}

var (
	departsOutsideSets = regexp.MustCompile(`%f|\(\).*%[1-9]`)
	plainSet           = regexp.MustCompile(`^\[\^?(?:[0-9A-Za-z]-[0-9A-Za-z]|[^-\]%\[])+\]`)
)

func checkFindAgrees(t *testing.T, pool *Pool, s, p string) {
	want, ok := gopherFind(s, p)
	if !ok || gopherDeparts(p) {
		return
	}
	if _, msg := compilePattern(p, true); msg != "" {
		return // malformed: refused before matching, where gopher-lua may not look
	}
	got, err := sandboxFind(pool, s, p)
	if err != nil {
		if strings.Contains(err.Error(), "pattern too complex") {
			return // nested deeper than Lua 5.2's bound; gopher-lua goes on
		}
		t.Fatalf("find(%q, %q): sandbox refused (%v), gopher-lua gave %s", s, p, err, want)
	}
	if got != want {
		t.Fatalf("find(%q, %q): sandbox %s, gopher-lua %s", s, p, got, want)
	}
}

// TestFindAgreesWithGopherLua compares string.find on the corpus with
// gopher-lua's own matcher, where that one follows Lua 5.1.
func TestFindAgreesWithGopherLua(t *testing.T) {
	src, err := os.ReadFile("testdata/patterns/corpus.lua")
	if err != nil {
		t.Fatal(err)
	}
	pool := NewPool()
	cases := regexp.MustCompile(`\{("(?:[^"\\]|\\.)*"), ("(?:[^"\\]|\\.)*")[,}]`).FindAllStringSubmatch(string(src), -1)
	if len(cases) < 90 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		s, err1 := strconv.Unquote(c[1])
		p, err2 := strconv.Unquote(c[2])
		if err1 != nil || err2 != nil {
			continue // a Lua escape Go does not read (\0, \255): covered by lua51.txt
		}
		checkFindAgrees(t, pool, s, p)
	}
}

// FuzzFindAgreesWithGopherLua compares string.find with gopher-lua's matcher
// on short random patterns and subjects.
func FuzzFindAgreesWithGopherLua(f *testing.F) {
	for _, c := range [][2]string{{"hello world", "(o)(.-)$"}, {"aab", "a-b"}, {"x(y)z", "%b()"},
		{"a1b2", "%a%d"}, {"]]", "[]]+"}, {"abab", "(a)(b)%1"}, {"k=v", "^(%w+)=(%w*)$"}, {"a.b", "[^%.]+"}} {
		f.Add(c[0], c[1])
	}
	pool := NewPool()
	f.Fuzz(func(t *testing.T, s, p string) {
		if len(s) > 64 || len(p) > 32 {
			return
		}
		checkFindAgrees(t, pool, s, p)
	})
}

// TestPatternRefusals checks the message of every way a pattern call can be
// refused, and that the sandbox goes on working after a caught refusal.
func TestPatternRefusals(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`string.find("a", "%")`, "malformed pattern (ends with '%')"},
		{`string.find("a", "[a")`, "malformed pattern (missing ']')"},
		{`string.find("a", "[]")`, "malformed pattern (missing ']')"},
		{`string.find("a", "x[%")`, "malformed pattern (missing ']')"},
		{`string.match("a", "%b(")`, "malformed pattern (missing arguments to '%b')"},
		{`string.match("a", "%fa")`, "missing '[' after '%f' in pattern"},
		{`string.match("a", "(a")`, "unfinished capture"},
		{`string.match("a", "a)")`, "invalid pattern capture (')' without '(')"},
		{`string.match("aa", "(a%1)")`, "invalid capture index %1 in pattern"},
		{`string.match("a", "%0")`, "invalid capture index %0 in pattern"},
		{`string.match("a", "(a)%2")`, "invalid capture index %2 in pattern"},
		{`string.gmatch("a", "[")`, "malformed pattern (missing ']')"},
		{`string.gsub("a", "(", "")`, "unfinished capture"},
		{`string.match("a", string.rep("()", 33))`, "too many captures"},
		{`string.match(string.rep("a", 300), string.rep("a?", 300))`, "pattern too complex"},
		{`string.gsub("abc", "b", "%2")`, "invalid capture index %2 in replacement string"},
		{`string.gsub("abc", "(b)", "%")`, "invalid use of '%' in replacement string"},
		{`string.gsub("abc", "b", {b = {}})`, "invalid replacement value (a table)"},
		{`string.gsub("abc", "b", function() return true end)`, "invalid replacement value (a boolean)"},
		{`string.gsub("abc", "b", true)`, "bad argument #3 to gsub (string/function/table expected)"},
	} {
		res, err := runSrc(t, "local ok, err = pcall(function() return "+c.src+" end)\nreturn ok, err, string.find('xay', 'a')", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if len(res.Values) != 4 || res.Values[0] != false || !strings.HasSuffix(res.Values[1].(string), ": "+c.want) || res.Values[2] != int64(2) {
			t.Errorf("%s: got %q, want an error ending %q", c.src, res.Values, c.want)
		}
	}
}

// TestPatternGas pins the gas schedule of the pattern functions. Every
// fragment is `return <expr>`: 2 gas for the chunk and the static cost of
// the expression (a call 2, each index 1), the rest for the calls.
func TestPatternGas(t *testing.T) {
	for _, c := range []struct {
		expr string
		gas  uint64
	}{
		// call 1 + compile 1; steps: 'b' fails at 1, matches at 2, then the
		// end of the pattern: 3; result "b" 1
		{`string.match("abc", "b")`, 2 + 3 + 2 + 3 + 1},
		// plain find (no specials): call 1 + 1 per started 32 bytes searched
		{`string.find(string.rep("a", 64), "b")`, 2 + 6 + 1 + 2 + 1 + 2},
		// a*: dispatch 1, 3 bytes tested + 1 at the end, then the end of pattern 1
		{`string.find("aaa", "a*")`, 2 + 3 + 2 + 1 + 3 + 1},
		// ^(%x+) (%x+) over 190 bytes (string.rep: 1 + 6), the case that cost
		// about 389 000 gas before: call 1 + compile 2; steps: ( 1, %x+ 1 and
		// 4 bytes tested after the first, ) 1, ' ' 1, twice, end 1 = 17;
		// results 1
		{`string.match(string.rep("ab12 ", 38), "^(%x+) (%x+) ")`, 2 + 6 + 7 + 3 + 17 + 1},
		// gsub: the closure (static 1; 4, and 3 for its 112 bytes); call 1 +
		// compile 1; steps: "." and the end at 0, 1, 2, "." failing at 3: 7;
		// the function's body (1 + 1 statement) 3 times; result 1
		{`(string.gsub("abc", ".", function(c) return c end))`, 2 + 4 + 7 + 2 + 7 + 3*2 + 1},
	} {
		res, err := runSrc(t, "return "+c.expr, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if res.GasUsed != c.gas {
			t.Errorf("%s: gas %d, want %d", c.expr, res.GasUsed, c.gas)
		}
	}
}
