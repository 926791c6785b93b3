package vp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/yuin/gopher-lua/ast"
)

// The instrumented program reaches the meter through upvalues with these
// names. User code may not use any identifier with the reserved prefix, so it
// can neither read nor replace them.
const (
	reservedPrefix = "__fx_"
	nameGas        = "__fx_g"   // gas credit (number), decremented in Lua
	nameRefill     = "__fx_r"   // Go: pays the overdraft and hands out more credit
	nameCat        = "__fx_cat" // Go: metered `..`
	nameSet        = "__fx_set" // Go: metered, checked indexed assignment
	nameTable      = "__fx_tbl" // Go: counts a table built by a constructor
	nameLen        = "__fx_len" // Go: `#x`, charged by the scan
	namePow        = "__fx_pow" // Go: `x ^ y`, the same bits on every CPU
)

// meterNames lists the meter upvalues in the order of upvalue slots a VM keeps.
var meterNames = [...]string{nameGas, nameRefill, nameCat, nameSet, nameTable, nameLen, namePow}

// instrument rewrites a parsed chunk in place so that it charges gas and
// counts memory; see docs/formats/lua-values.md for the schedule. It returns
// the body of the function that the compiler turns into the program.
type instrumenter struct {
	err   error
	depth int // syntax nesting, bounded so hostile sources cannot exhaust the Go stack
}

// maxNesting bounds how deeply statements and expressions may nest.
const maxNesting = 200

func (in *instrumenter) fail(line int, format string, args ...any) {
	if in.err == nil {
		in.err = &Error{Kind: KindCompile, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
}

func (in *instrumenter) name(line int, n string) {
	if strings.HasPrefix(n, reservedPrefix) {
		in.fail(line, "identifier %q uses the reserved prefix %q", n, reservedPrefix)
	}
}

// block instruments stmts as the body of a function or a loop iteration: it
// charges the block's static cost first.
func (in *instrumenter) block(stmts []ast.Stmt, line int) []ast.Stmt {
	body := in.stmts(stmts)
	return append(charge(cost(stmts), line), body...)
}

// cost is 1 plus the number of statements a block runs without entering a
// nested loop body or function (those charge for themselves).
func cost(stmts []ast.Stmt) int {
	n := 1
	for _, s := range stmts {
		n++
		switch s := s.(type) {
		case *ast.IfStmt:
			n += cost(s.Then) + cost(s.Else) - 2
		case *ast.DoBlockStmt:
			n += cost(s.Stmts) - 1
		}
	}
	return n
}

// charge builds `__fx_g = __fx_g - c; if __fx_g < 0 then __fx_r() end`.
func charge(c int, line int) []ast.Stmt {
	g := func() ast.Expr { return ident(nameGas, line) }
	num := &ast.NumberExpr{Value: strconv.Itoa(c)}
	num.SetLine(line)
	sub := &ast.ArithmeticOpExpr{Operator: "-", Lhs: g(), Rhs: num}
	sub.SetLine(line)
	assign := &ast.AssignStmt{Lhs: []ast.Expr{g()}, Rhs: []ast.Expr{sub}}
	assign.SetLine(line)
	zero := &ast.NumberExpr{Value: "0"}
	zero.SetLine(line)
	cond := &ast.RelationalOpExpr{Operator: "<", Lhs: g(), Rhs: zero}
	cond.SetLine(line)
	refill := &ast.FuncCallStmt{Expr: call(nameRefill, line)}
	refill.SetLine(line)
	ifs := &ast.IfStmt{Condition: cond, Then: []ast.Stmt{refill}}
	ifs.SetLine(line)
	return []ast.Stmt{assign, ifs}
}

func ident(n string, line int) *ast.IdentExpr {
	e := &ast.IdentExpr{Value: n}
	e.SetLine(line)
	return e
}

func call(fn string, line int, args ...ast.Expr) *ast.FuncCallExpr {
	e := &ast.FuncCallExpr{Func: ident(fn, line), Args: args}
	e.SetLine(line)
	e.SetLastLine(line)
	return e
}

func (in *instrumenter) stmts(stmts []ast.Stmt) []ast.Stmt {
	out := make([]ast.Stmt, 0, len(stmts))
	for _, s := range stmts {
		out = append(out, in.stmt(s)...)
	}
	return out
}

func (in *instrumenter) stmt(s ast.Stmt) []ast.Stmt {
	line := s.Line()
	if in.depth++; in.depth > maxNesting {
		in.fail(line, "statements nested deeper than %d", maxNesting)
		return nil
	}
	defer func() { in.depth-- }()
	switch s := s.(type) {
	case *ast.AssignStmt:
		return in.assign(s)
	case *ast.LocalAssignStmt:
		for _, n := range s.Names {
			in.name(line, n)
		}
		in.exprs(s.Exprs)
	case *ast.FuncCallStmt:
		s.Expr = in.expr(s.Expr)
	case *ast.DoBlockStmt:
		s.Stmts = in.stmts(s.Stmts)
	case *ast.WhileStmt:
		s.Condition = in.expr(s.Condition)
		s.Stmts = in.block(s.Stmts, line)
	case *ast.RepeatStmt:
		s.Condition = in.expr(s.Condition)
		s.Stmts = in.block(s.Stmts, line)
	case *ast.IfStmt:
		s.Condition = in.expr(s.Condition)
		s.Then = in.stmts(s.Then)
		s.Else = in.stmts(s.Else)
	case *ast.NumberForStmt:
		in.name(line, s.Name)
		s.Init, s.Limit = in.expr(s.Init), in.expr(s.Limit)
		if s.Step != nil {
			s.Step = in.expr(s.Step)
		}
		s.Stmts = in.block(s.Stmts, line)
	case *ast.GenericForStmt:
		for _, n := range s.Names {
			in.name(line, n)
		}
		in.exprs(s.Exprs)
		s.Stmts = in.block(s.Stmts, line)
	case *ast.FuncDefStmt:
		return in.funcDef(s)
	case *ast.ReturnStmt:
		in.exprs(s.Exprs)
	case *ast.LabelStmt:
		// A label is where a goto loop jumps back to: charge every arrival.
		in.name(line, s.Name)
		return append([]ast.Stmt{s}, charge(1, line)...)
	case *ast.GotoStmt:
		in.name(line, s.Label)
	case *ast.BreakStmt:
	default:
		in.fail(line, "unsupported statement %T", s)
	}
	return []ast.Stmt{s}
}

// assign turns every store into a table (`t[k] = v`, `t.k = v`) into a call
// of the metered setter; plain variable assignments stay as they are.
func (in *instrumenter) assign(s *ast.AssignStmt) []ast.Stmt {
	line := s.Line()
	in.exprs(s.Rhs)
	indexed := false
	for _, l := range s.Lhs {
		switch l := l.(type) {
		case *ast.IdentExpr:
			in.name(line, l.Value)
		case *ast.AttrGetExpr:
			indexed = true
			l.Object, l.Key = in.expr(l.Object), in.expr(l.Key)
		default:
			in.fail(line, "cannot assign to %T", l)
		}
	}
	if !indexed {
		return []ast.Stmt{s}
	}
	if len(s.Lhs) == 1 && len(s.Rhs) == 1 {
		l := s.Lhs[0].(*ast.AttrGetExpr)
		st := &ast.FuncCallStmt{Expr: call(nameSet, line, l.Object, l.Key, first(s.Rhs[0]))}
		st.SetLine(line)
		return []ast.Stmt{st}
	}
	// Several targets: evaluate every value into hidden locals first (as Lua
	// does), then store them one by one.
	tmp := make([]string, len(s.Lhs))
	for i := range tmp {
		tmp[i] = reservedPrefix + "v" + strconv.Itoa(i)
	}
	local := &ast.LocalAssignStmt{Names: tmp, Exprs: s.Rhs}
	local.SetLine(line)
	body := []ast.Stmt{local}
	for i, l := range s.Lhs {
		var st ast.Stmt
		if a, ok := l.(*ast.AttrGetExpr); ok {
			st = &ast.FuncCallStmt{Expr: call(nameSet, line, a.Object, a.Key, ident(tmp[i], line))}
		} else {
			st = &ast.AssignStmt{Lhs: []ast.Expr{l}, Rhs: []ast.Expr{ident(tmp[i], line)}}
		}
		st.SetLine(line)
		body = append(body, st)
	}
	do := &ast.DoBlockStmt{Stmts: body}
	do.SetLine(line)
	return []ast.Stmt{do}
}

// first truncates a multi-value expression to its first value, as an
// assignment of one value does.
func first(e ast.Expr) ast.Expr {
	switch e := e.(type) {
	case *ast.FuncCallExpr:
		e.AdjustRet = true
	case *ast.Comma3Expr:
		e.AdjustRet = true
	}
	return e
}

// funcDef rewrites `function a.b:c(...)` into a metered store; `function f()`
// stays a plain assignment.
func (in *instrumenter) funcDef(s *ast.FuncDefStmt) []ast.Stmt {
	line := s.Line()
	fn := s.Func
	in.function(fn)
	if s.Name.Func != nil {
		if id, ok := s.Name.Func.(*ast.IdentExpr); ok {
			in.name(line, id.Value)
			return []ast.Stmt{s}
		}
		a, ok := s.Name.Func.(*ast.AttrGetExpr)
		if !ok {
			in.fail(line, "unsupported function name")
			return nil
		}
		st := &ast.FuncCallStmt{Expr: call(nameSet, line, in.expr(a.Object), in.expr(a.Key), fn)}
		st.SetLine(line)
		return []ast.Stmt{st}
	}
	fn.ParList.Names = append([]string{"self"}, fn.ParList.Names...)
	key := &ast.StringExpr{Value: s.Name.Method}
	key.SetLine(line)
	st := &ast.FuncCallStmt{Expr: call(nameSet, line, in.expr(s.Name.Receiver), key, fn)}
	st.SetLine(line)
	return []ast.Stmt{st}
}

func (in *instrumenter) function(fn *ast.FunctionExpr) {
	for _, n := range fn.ParList.Names {
		in.name(fn.Line(), n)
	}
	fn.Stmts = in.block(fn.Stmts, fn.Line())
}

func (in *instrumenter) exprs(es []ast.Expr) {
	for i, e := range es {
		es[i] = in.expr(e)
	}
}

func (in *instrumenter) expr(e ast.Expr) ast.Expr {
	if in.depth++; in.depth > maxNesting {
		in.fail(e.Line(), "expressions nested deeper than %d", maxNesting)
		return e
	}
	defer func() { in.depth-- }()
	switch e := e.(type) {
	case *ast.IdentExpr:
		in.name(e.Line(), e.Value)
	case *ast.AttrGetExpr:
		e.Object, e.Key = in.expr(e.Object), in.expr(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			if f.Key != nil {
				f.Key = in.expr(f.Key)
			}
			f.Value = in.expr(f.Value)
		}
		return call(nameTable, e.Line(), e)
	case *ast.FuncCallExpr:
		if e.Func != nil {
			e.Func = in.expr(e.Func)
		}
		if e.Receiver != nil {
			e.Receiver = in.expr(e.Receiver)
		}
		in.exprs(e.Args)
	case *ast.LogicalOpExpr:
		e.Lhs, e.Rhs = in.expr(e.Lhs), in.expr(e.Rhs)
	case *ast.RelationalOpExpr:
		e.Lhs, e.Rhs = in.expr(e.Lhs), in.expr(e.Rhs)
	case *ast.ArithmeticOpExpr:
		e.Lhs, e.Rhs = in.expr(e.Lhs), in.expr(e.Rhs)
		if e.Operator == "^" {
			// OP_POW (and the compiler's constant folding) use math.Pow,
			// whose last bit depends on the CPU.
			return call(namePow, e.Line(), first(e.Lhs), first(e.Rhs))
		}
	case *ast.StringConcatOpExpr:
		// `a .. b .. c` becomes one metered call, charged by the size built.
		var parts []ast.Expr
		var flatten func(x ast.Expr)
		flatten = func(x ast.Expr) {
			if c, ok := x.(*ast.StringConcatOpExpr); ok {
				flatten(c.Lhs)
				flatten(c.Rhs)
				return
			}
			parts = append(parts, first(in.expr(x)))
		}
		flatten(e)
		return call(nameCat, e.Line(), parts...)
	case *ast.UnaryMinusOpExpr:
		e.Expr = in.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		e.Expr = in.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		return call(nameLen, e.Line(), first(in.expr(e.Expr)))
	case *ast.FunctionExpr:
		in.function(e)
	}
	return e
}
