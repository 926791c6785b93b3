package vp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"regexp"
	"strconv"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// MaxSource is the longest fragment Compile accepts, in bytes.
const MaxSource = 1 << 20

// Program is a compiled, instrumented fragment. It is immutable and safe for
// concurrent runs.
type Program struct {
	Name string
	Hash [32]byte // SHA-256 of the source

	proto *lua.FunctionProto // the instrumented fragment as a function of `...`
	slots []int              // for each upvalue of proto, its index in meterNames
}

var parseLine = regexp.MustCompile(`line:(\d+)`)

// Compile parses src, refuses forbidden constructs (identifiers with the
// reserved prefix "__fx_", nesting deeper than 200), instruments gas and
// compiles it.
func Compile(name string, src []byte) (*Program, error) {
	fail := func(line int, msg string) (*Program, error) {
		return nil, &Error{Kind: KindCompile, Chunk: name, Line: line, Msg: msg}
	}
	if len(src) > MaxSource {
		return fail(0, fmt.Sprintf("source is %d bytes, more than %d", len(src), MaxSource))
	}
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		line := 0
		if m := parseLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return fail(line, "syntax error: "+err.Error())
	}
	in := &instrumenter{}
	line := 1
	if len(chunk) > 0 {
		line = chunk[0].Line()
	}
	body := in.block(chunk, line)
	if in.err != nil {
		e := in.err.(*Error)
		e.Chunk = name
		return nil, e
	}
	// local <meter names>; return function(...) <body> end
	decl := &ast.LocalAssignStmt{Names: meterNames[:]}
	fn := &ast.FunctionExpr{ParList: &ast.ParList{HasVargs: true}, Stmts: body}
	fn.SetLine(line)
	ret := &ast.ReturnStmt{Exprs: []ast.Expr{fn}}
	proto, err := lua.Compile([]ast.Stmt{decl, ret}, name)
	if err != nil {
		return fail(0, "compile: "+err.Error())
	}
	p := &Program{Name: name, Hash: sha256.Sum256(src), proto: proto.FunctionPrototypes[0]}
	for _, up := range p.proto.DbgUpvalues {
		slot := -1
		for i, n := range meterNames {
			if n == up {
				slot = i
			}
		}
		if slot < 0 {
			return fail(0, "compile: unexpected upvalue "+up)
		}
		p.slots = append(p.slots, slot)
	}
	return p, nil
}
