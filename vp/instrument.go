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
	nameValues     = "__fx_va"  // Go: returns its arguments, charged by their number
	nameCmp        = "__fx_cmp" // Go: a comparison whose operands may be long strings
	nameGet        = "__fx_get" // Go: `t[k]` whose key may be a long string
	nameFunc       = "__fx_fn"  // Go: counts the memory of a new closure
)

// isMeter reports whether an upvalue name is one of the meter's.
func isMeter(name string) bool { return strings.HasPrefix(name, reservedPrefix) }

// meterNames lists the meter upvalues in the order of upvalue slots a VM
// keeps. New names go at the end: Smart Lua states name them, not their slots.
var meterNames = [...]string{nameGas, nameRefill, nameCat, nameSet, nameTable, nameLen, namePow, nameValues, nameCmp, nameGet, nameFunc}

// callGas is the static cost of a call: the VM pushes a frame, moves the
// arguments and the results; the function's body, if it is Lua, is charged
// when it runs.
const callGas = 2

// Bounds on what a source may contain, checked at compile time.
const (
	// maxName is the longest identifier, field or method name. Looking a
	// name up hashes it, so a name's length is work every use repeats; a
	// string literal longer than this is treated as an unknown string.
	maxName = 128
	// maxFunctions bounds the function bodies of one source: gopher-lua
	// gives each prototype about 16 KiB of buffers while compiling.
	maxFunctions = 1024
)

// instrumenter rewrites a parsed chunk in place so that it charges gas and
// counts memory; see docs/formats/lua-values.md for the schedule. Its block
// method returns the body of the function that the compiler turns into the
// program.
type instrumenter struct {
	err     error
	depth   int // syntax nesting, bounded so hostile sources cannot exhaust the Go stack
	funcs   int // function bodies, bounded by maxFunctions
	numeric map[string]int
	// numeric counts, per name, the enclosing numeric for loops whose
	// control variable it is and whose body never rebinds it: there the
	// name always holds a number.
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
	in.methodName(line, n)
}

// block instruments stmts as the body of a function or a loop iteration: it
// charges the block's static cost first, plus extra (what each iteration of
// a loop evaluates outside its body: the condition, the iterator call).
func (in *instrumenter) block(stmts []ast.Stmt, line, extra int) []ast.Stmt {
	c := cost(stmts, 0) + extra
	body := in.stmts(stmts)
	return append(charge(c, line), body...)
}

// cost is the gas a block charges on entry: 1, plus for each statement it
// runs without entering a nested loop body or function, 1 and the cost of
// the expressions the statement evaluates; the branches of an if and the
// body of a do count as part of the block.
func cost(stmts []ast.Stmt, depth int) int {
	n := 1
	if depth > maxNesting {
		return n // the instrumenter refuses such nesting
	}
	for _, s := range stmts {
		n += 1 + stmtCost(s, depth+1)
	}
	return n
}

// stmtCost is what a statement costs besides its own 1.
func stmtCost(s ast.Stmt, depth int) int {
	switch s := s.(type) {
	case *ast.AssignStmt:
		n := exprsCost(s.Rhs, depth)
		for _, l := range s.Lhs {
			n += exprCost(l, depth) // a store costs what a read of its target does
		}
		return n
	case *ast.LocalAssignStmt:
		return exprsCost(s.Exprs, depth)
	case *ast.FuncCallStmt:
		return exprCost(s.Expr, depth)
	case *ast.DoBlockStmt:
		return cost(s.Stmts, depth) - 1
	case *ast.WhileStmt:
		return exprCost(s.Condition, depth) // the test that ends the loop
	case *ast.IfStmt:
		return exprCost(s.Condition, depth) + cost(s.Then, depth) + cost(s.Else, depth) - 2
	case *ast.NumberForStmt:
		return exprCost(s.Init, depth) + exprCost(s.Limit, depth) + exprCost(s.Step, depth)
	case *ast.GenericForStmt:
		return exprsCost(s.Exprs, depth)
	case *ast.FuncDefStmt:
		n := 1 // the closure
		if s.Name.Func != nil {
			n += exprCost(s.Name.Func, depth)
		} else {
			n += 1 + exprCost(s.Name.Receiver, depth)
		}
		return n
	case *ast.ReturnStmt:
		return exprsCost(s.Exprs, depth)
	}
	return 0
}

func exprsCost(es []ast.Expr, depth int) int {
	n := 0
	for _, e := range es {
		n += exprCost(e, depth)
	}
	return n
}

// exprCost is 1 for each operation an expression performs (an index, an
// operator, a table constructor, a closure) and callGas for a call; names
// and literals are free. A function's body is charged when it runs, not
// here.
func exprCost(e ast.Expr, depth int) int {
	if depth > maxNesting {
		return 0 // the instrumenter refuses such nesting
	}
	depth++
	switch e := e.(type) {
	case *ast.AttrGetExpr:
		return 1 + exprCost(e.Object, depth) + exprCost(e.Key, depth)
	case *ast.TableExpr:
		n := 1
		for _, f := range e.Fields {
			n += exprCost(f.Key, depth) + exprCost(f.Value, depth)
		}
		return n
	case *ast.FuncCallExpr:
		n := callGas + exprCost(e.Func, depth) + exprsCost(e.Args, depth)
		if e.Receiver != nil {
			n += 1 + exprCost(e.Receiver, depth) // the method lookup
		}
		return n
	case *ast.LogicalOpExpr:
		return 1 + exprCost(e.Lhs, depth) + exprCost(e.Rhs, depth)
	case *ast.RelationalOpExpr:
		return 1 + exprCost(e.Lhs, depth) + exprCost(e.Rhs, depth)
	case *ast.ArithmeticOpExpr:
		return 1 + exprCost(e.Lhs, depth) + exprCost(e.Rhs, depth)
	case *ast.StringConcatOpExpr:
		return 1 + exprCost(e.Lhs, depth) + exprCost(e.Rhs, depth)
	case *ast.UnaryMinusOpExpr:
		return 1 + exprCost(e.Expr, depth)
	case *ast.UnaryNotOpExpr:
		return 1 + exprCost(e.Expr, depth)
	case *ast.UnaryLenOpExpr:
		return 1 + exprCost(e.Expr, depth)
	case *ast.FunctionExpr:
		return 1
	}
	return 0
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

func str(s string, line int) *ast.StringExpr {
	e := &ast.StringExpr{Value: s}
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
		if fn, ok := localFunction(s); ok {
			// `local function f` (and `local f = function`): f is in scope
			// in its own body, so the closure is counted after the
			// statement, not by wrapping it.
			in.function(fn)
			count := &ast.FuncCallStmt{Expr: call(nameFunc, line, ident(s.Names[0], line))}
			count.SetLine(line)
			return []ast.Stmt{s, count}
		}
		in.exprs(s.Exprs)
	case *ast.FuncCallStmt:
		s.Expr = in.expr(s.Expr)
	case *ast.DoBlockStmt:
		s.Stmts = in.stmts(s.Stmts)
	case *ast.WhileStmt:
		test := exprCost(s.Condition, 0)
		s.Condition = in.expr(s.Condition)
		s.Stmts = in.block(s.Stmts, line, test)
	case *ast.RepeatStmt:
		test := exprCost(s.Condition, 0)
		s.Condition = in.expr(s.Condition)
		s.Stmts = in.block(s.Stmts, line, test)
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
		if !rebinds(s.Stmts, s.Name) {
			if in.numeric == nil {
				in.numeric = map[string]int{}
			}
			in.numeric[s.Name]++
			defer func() { in.numeric[s.Name]-- }()
		}
		s.Stmts = in.block(s.Stmts, line, 0)
	case *ast.GenericForStmt:
		for _, n := range s.Names {
			in.name(line, n)
		}
		in.exprs(s.Exprs)
		s.Stmts = in.block(s.Stmts, line, callGas) // the iterator call
	case *ast.FuncDefStmt:
		return in.funcDef(s)
	case *ast.ReturnStmt:
		// `return f(x)` is a tail call and keeps being one; any other
		// multiple-value expression at the end moves its values through
		// the metered __fx_va.
		tail := len(s.Exprs) == 1 && isCall(s.Exprs[0])
		multi := len(s.Exprs) > 0 && isMulti(s.Exprs[len(s.Exprs)-1])
		in.exprs(s.Exprs)
		if multi && !tail {
			in.values(s.Exprs)
		}
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

// localFunction reports whether s is `local function f` or `local f =
// function`, which gopher-lua compiles with f already in scope.
func localFunction(s *ast.LocalAssignStmt) (*ast.FunctionExpr, bool) {
	if len(s.Names) != 1 || len(s.Exprs) != 1 {
		return nil, false
	}
	fn, ok := s.Exprs[0].(*ast.FunctionExpr)
	return fn, ok
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

// isCall reports whether e is a call whose values are all kept: the last
// expression of a list that is not parenthesized.
func isCall(e ast.Expr) bool {
	c, ok := e.(*ast.FuncCallExpr)
	return ok && !c.AdjustRet
}

// isMulti reports whether e gives a number of values known only when it
// runs: an unparenthesized call or `...`.
func isMulti(e ast.Expr) bool {
	if c, ok := e.(*ast.Comma3Expr); ok {
		return !c.AdjustRet
	}
	return isCall(e)
}

// values wraps the last of an instrumented expression list, which was a
// call or `...` giving all its values, in __fx_va: the VM copies those
// values, so they are charged by their number.
func (in *instrumenter) values(es []ast.Expr) {
	last := len(es) - 1
	es[last] = call(nameValues, es[last].Line(), es[last])
}

// methodName refuses a name longer than maxName (for identifiers, name
// also checks the reserved prefix; a method is a field, which may use it).
func (in *instrumenter) methodName(line int, n string) {
	if len(n) > maxName {
		in.fail(line, "name of %d bytes is longer than %d", len(n), maxName)
	}
}

// funcDef rewrites `function a.b:c(...)` into a metered store and `function
// f()` into an assignment, with the closure counted by __fx_fn.
func (in *instrumenter) funcDef(s *ast.FuncDefStmt) []ast.Stmt {
	line := s.Line()
	fn := s.Func
	if s.Name.Func == nil {
		fn.ParList.Names = append([]string{"self"}, fn.ParList.Names...)
	}
	in.function(fn)
	closure := call(nameFunc, line, fn)
	var st ast.Stmt
	switch target := s.Name.Func.(type) {
	case *ast.IdentExpr:
		in.name(line, target.Value)
		st = &ast.AssignStmt{Lhs: []ast.Expr{target}, Rhs: []ast.Expr{closure}}
	case *ast.AttrGetExpr:
		st = &ast.FuncCallStmt{Expr: call(nameSet, line, first(in.expr(target.Object)), first(in.expr(target.Key)), closure)}
	case nil:
		in.methodName(line, s.Name.Method)
		st = &ast.FuncCallStmt{Expr: call(nameSet, line, first(in.expr(s.Name.Receiver)), str(s.Name.Method, line), closure)}
	default:
		in.fail(line, "unsupported function name")
		return nil
	}
	st.SetLine(line)
	return []ast.Stmt{st}
}

func (in *instrumenter) function(fn *ast.FunctionExpr) {
	if in.funcs++; in.funcs > maxFunctions {
		in.fail(fn.Line(), "more than %d functions", maxFunctions)
		return
	}
	for _, n := range fn.ParList.Names {
		in.name(fn.Line(), n)
	}
	fn.Stmts = in.block(fn.Stmts, fn.Line(), 0)
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
	line := e.Line()
	switch e := e.(type) {
	case *ast.IdentExpr:
		in.name(line, e.Value)
	case *ast.AttrGetExpr:
		// Looking up a key hashes it: a key that may be a long string is
		// looked up by __fx_get, charged by its length.
		bounded := in.bounded(e.Key)
		e.Object, e.Key = in.expr(e.Object), in.expr(e.Key)
		if !bounded {
			return call(nameGet, line, first(e.Object), first(e.Key))
		}
	case *ast.TableExpr:
		for _, f := range e.Fields {
			if f.Key != nil {
				f.Key = in.expr(f.Key)
			}
			f.Value = in.expr(f.Value)
		}
		return call(nameTable, line, e)
	case *ast.FuncCallExpr:
		if e.Func != nil {
			e.Func = in.expr(e.Func)
		}
		if e.Receiver != nil {
			in.methodName(line, e.Method)
			e.Receiver = in.expr(e.Receiver)
		}
		multi := len(e.Args) > 0 && isMulti(e.Args[len(e.Args)-1])
		in.exprs(e.Args)
		if multi {
			in.values(e.Args)
		}
	case *ast.LogicalOpExpr:
		e.Lhs, e.Rhs = in.expr(e.Lhs), in.expr(e.Rhs)
	case *ast.RelationalOpExpr:
		// Comparing two strings reads them: unless one operand is known
		// not to be a long string, __fx_cmp compares, charged by length.
		bounded := in.bounded(e.Lhs) || in.bounded(e.Rhs)
		e.Lhs, e.Rhs = in.expr(e.Lhs), in.expr(e.Rhs)
		if !bounded {
			op, not := e.Operator, e.Operator == "~="
			if not {
				op = "=="
			}
			c := call(nameCmp, line, str(op, line), first(e.Lhs), first(e.Rhs))
			if not {
				n := &ast.UnaryNotOpExpr{Expr: c}
				n.SetLine(line)
				return n
			}
			return c
		}
	case *ast.ArithmeticOpExpr:
		e.Lhs, e.Rhs = in.expr(e.Lhs), in.expr(e.Rhs)
		if e.Operator == "^" {
			// OP_POW (and the compiler's constant folding) use math.Pow,
			// whose last bit depends on the CPU.
			return call(namePow, line, first(e.Lhs), first(e.Rhs))
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
		return call(nameCat, line, parts...)
	case *ast.UnaryMinusOpExpr:
		e.Expr = in.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		e.Expr = in.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		return call(nameLen, line, first(in.expr(e.Expr)))
	case *ast.FunctionExpr:
		in.function(e)
		return call(nameFunc, line, e)
	}
	return e
}

// bounded reports whether e, not yet instrumented, is known not to be a
// string longer than maxName: a comparison with it, or a lookup with it as
// the key, then costs no more than a name's. Literals other than long
// strings, booleans (from not and comparisons), tables, closures and
// numbers qualify: `#x`, and arithmetic on numbers, including the control
// variable of a numeric for whose body never rebinds it.
func (in *instrumenter) bounded(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.StringExpr:
		return len(e.Value) <= maxName
	case *ast.NilExpr, *ast.TrueExpr, *ast.FalseExpr, *ast.UnaryNotOpExpr, *ast.RelationalOpExpr,
		*ast.TableExpr, *ast.FunctionExpr:
		return true
	case *ast.LogicalOpExpr: // the value of one of the operands
		return in.bounded(e.Lhs) && in.bounded(e.Rhs)
	}
	return in.number(e)
}

// number reports whether e, not yet instrumented, always gives a number.
// Arithmetic does only when its operands do: a metamethod may return
// anything.
func (in *instrumenter) number(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.NumberExpr, *ast.UnaryLenOpExpr:
		return true
	case *ast.IdentExpr:
		return in.numeric[e.Value] > 0
	case *ast.UnaryMinusOpExpr:
		return in.number(e.Expr)
	case *ast.ArithmeticOpExpr:
		return in.number(e.Lhs) && in.number(e.Rhs)
	}
	return false
}

// maxRebindVisits bounds the nodes rebinds visits: every numeric for walks
// its body, so nested loops would otherwise walk a large body once per
// loop, at compile time, which no gas pays for.
const maxRebindVisits = 4096

// rebinds reports whether stmts may give name another value or declare
// another variable of that name anywhere, nested functions included. Past
// maxNesting or maxRebindVisits nodes it answers yes: the answer only
// chooses between the VM's own operation and the meter's, both correct.
func rebinds(stmts []ast.Stmt, name string) bool {
	w := rebindWalk{name: name}
	for _, s := range stmts {
		w.visit(s)
	}
	return w.found
}

type rebindWalk struct {
	name          string
	depth, visits int
	found         bool
}

// binds notes whether one of the names declared or assigned is w.name.
func (w *rebindWalk) binds(names ...string) {
	for _, n := range names {
		if n == w.name {
			w.found = true
		}
	}
}

// target is the name an assignment to e binds, if e is a plain name.
func target(e ast.Expr) string {
	if id, ok := e.(*ast.IdentExpr); ok {
		return id.Value
	}
	return ""
}

// visit walks a statement or an expression and everything in it.
func (w *rebindWalk) visit(n any) {
	switch n := n.(type) {
	case nil:
		return
	case []ast.Stmt:
		for _, s := range n {
			w.visit(s)
		}
		return
	case []ast.Expr:
		for _, e := range n {
			w.visit(e)
		}
		return
	}
	if w.found {
		return
	}
	w.visits++
	if w.depth++; w.depth > maxNesting || w.visits > maxRebindVisits {
		w.found = true
		return
	}
	defer func() { w.depth-- }()
	var parts []any
	switch n := n.(type) {
	case *ast.AssignStmt:
		for _, l := range n.Lhs {
			w.binds(target(l))
		}
		parts = []any{n.Lhs, n.Rhs}
	case *ast.LocalAssignStmt:
		w.binds(n.Names...)
		parts = []any{n.Exprs}
	case *ast.FuncCallStmt:
		parts = []any{n.Expr}
	case *ast.DoBlockStmt:
		parts = []any{n.Stmts}
	case *ast.WhileStmt:
		parts = []any{n.Condition, n.Stmts}
	case *ast.RepeatStmt:
		parts = []any{n.Condition, n.Stmts}
	case *ast.IfStmt:
		parts = []any{n.Condition, n.Then, n.Else}
	case *ast.NumberForStmt:
		w.binds(n.Name)
		parts = []any{n.Init, n.Limit, n.Step, n.Stmts}
	case *ast.GenericForStmt:
		w.binds(n.Names...)
		parts = []any{n.Exprs, n.Stmts}
	case *ast.FuncDefStmt:
		w.binds(target(n.Name.Func))
		parts = []any{n.Name.Func, n.Name.Receiver, n.Func}
	case *ast.ReturnStmt:
		parts = []any{n.Exprs}
	case *ast.AttrGetExpr:
		parts = []any{n.Object, n.Key}
	case *ast.TableExpr:
		for _, f := range n.Fields {
			parts = append(parts, f.Key, f.Value)
		}
	case *ast.FuncCallExpr:
		parts = []any{n.Func, n.Receiver, n.Args}
	case *ast.LogicalOpExpr:
		parts = []any{n.Lhs, n.Rhs}
	case *ast.RelationalOpExpr:
		parts = []any{n.Lhs, n.Rhs}
	case *ast.ArithmeticOpExpr:
		parts = []any{n.Lhs, n.Rhs}
	case *ast.StringConcatOpExpr:
		parts = []any{n.Lhs, n.Rhs}
	case *ast.UnaryMinusOpExpr:
		parts = []any{n.Expr}
	case *ast.UnaryNotOpExpr:
		parts = []any{n.Expr}
	case *ast.UnaryLenOpExpr:
		parts = []any{n.Expr}
	case *ast.FunctionExpr:
		w.binds(n.ParList.Names...)
		parts = []any{n.Stmts}
	}
	for _, p := range parts {
		w.visit(p)
	}
}
