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
// %f, it reads "[%a-z]" as a range from a class and "[0-0-0]" as two
// ranges, and a back-reference to a position capture matches for it.
var gopherDeparts = regexp.MustCompile(`%f|%.-|\[[^\]]*-[^\]]*-|\(\).*%[1-9]`).MatchString

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
