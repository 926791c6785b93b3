package vp

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	size  int64              // the modelled bytes of its prototypes (Size)
}

// Size is a model of the memory the compiled program holds, in bytes: its
// instructions with their line numbers, constants, calls and variable
// names, for each function prototype. It depends only on the source, so a
// cache can bound what it keeps by it.
func (p *Program) Size() int64 { return p.size }

// Modelled sizes, in bytes, of what a function prototype holds.
const (
	protoBytes       = 1024 // the prototype, and the buffers gopher-lua does not let go
	instructionBytes = 12   // an instruction and its line number
	constantBytes    = 24   // a constant (a string's bytes besides)
	debugBytes       = 48   // a call, a local or an upvalue name recorded for errors
)

// trim copies the slices of p and the prototypes nested in it to their
// length (gopher-lua leaves each with room for 1024 instructions, 16 KiB a
// function) and returns their modelled size.
func trim(p *lua.FunctionProto) int64 {
	p.Code = slices.Clone(p.Code)
	p.DbgSourcePositions = slices.Clone(p.DbgSourcePositions)
	p.Constants = slices.Clone(p.Constants)
	p.FunctionPrototypes = slices.Clone(p.FunctionPrototypes)
	p.DbgLocals = slices.Clone(p.DbgLocals)
	p.DbgCalls = slices.Clone(p.DbgCalls)
	p.DbgUpvalues = slices.Clone(p.DbgUpvalues)
	n := protoBytes + instructionBytes*int64(len(p.Code)) + constantBytes*int64(len(p.Constants)) +
		debugBytes*int64(len(p.DbgLocals)+len(p.DbgCalls)+len(p.DbgUpvalues))
	for _, c := range p.Constants {
		if s, ok := c.(lua.LString); ok {
			n += int64(len(s))
		}
	}
	for _, q := range p.FunctionPrototypes {
		n += trim(q)
	}
	return n
}

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
		return fail(syntaxError(err, src))
	}
	in := &instrumenter{}
	line := 1
	if len(chunk) > 0 {
		line = chunk[0].Line()
	}
	body := in.block(chunk, line, 0)
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
	p.size = trim(p.proto)
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

// syntaxError words a parse error as one line, "syntax error" once: the
// parser's own text repeats the chunk name and the words and ends in a
// line break. A token is quoted and cut short: it may be a long string.
func syntaxError(err error, src []byte) (line int, msg string) {
	var pe *parse.Error
	if !errors.As(err, &pe) {
		return 0, "syntax error: " + strings.TrimSpace(err.Error())
	}
	msg = "syntax error"
	if pe.Message != msg {
		msg += ": " + pe.Message
	}
	if pe.Pos.Line == parse.EOF {
		return bytes.Count(bytes.TrimRight(src, "\n"), []byte("\n")) + 1, msg + " at the end of the file"
	}
	return pe.Pos.Line, msg + " near " + QuoteShort(pe.Token)
}

// QuoteShort quotes s as a Go string literal on one line (control bytes and
// invalid UTF-8 escaped), cut to its first 40 bytes, for error messages
// that show bytes which came from outside.
func QuoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
