package vp

import (
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"

	"github.com/fractalvm/fractal/notes"
)

// Session runs programs one after another on one pooled VM, with a set of
// shared globals converted to Lua once and seen by every run. So that one
// run cannot change what the next one sees, every table the host passes in
// a session (shared or per run) is read-only: assigning to it, table.insert,
// table.remove, table.sort and setmetatable on it end in an error. Each run
// otherwise starts as a Pool.Run would (fresh globals, gas, memory and log),
// and a run's values, log and gas are the same as with Pool.Run. A Session
// is not safe for concurrent use; Close returns its VM to the pool.
type Session struct {
	pool     *Pool
	v        *vm
	depth    int
	names    []string                    // shared global names, sorted
	values   map[string]lua.LValue       // shared globals, converted
	tables   map[*lua.LTable]tableInfo   // slot counts of the shared tables
	readOnly map[*lua.LTable]bool        // every table the host passed in this session
	err      string                      // why a shared global could not be converted
	notes    map[*notes.Note]*lua.LTable // the table of each note of a shared []notes.Note
	sharing  bool                        // NewSession is converting the shared globals
}

// NewSession takes a VM for runs with call depth limit maxDepth and converts
// shared once. A value that cannot be converted fails every Run of the
// session with the error Pool.Run would give for that global.
func (p *Pool) NewSession(maxDepth int, shared map[string]any) *Session {
	s := p.session()
	s.pool, s.depth = p, maxDepth
	for n := range shared {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	if maxDepth < 1 || maxDepth > 10000 {
		return s // Run refuses the depth
	}
	if s.v = p.get(maxDepth); s.v == nil {
		s.v = newVM(maxDepth)
	}
	v := s.v
	v.r = &run{}
	v.sess, s.sharing = s, true // toLua records the tables of shared notes (sharedNote)
	for _, n := range s.names {
		lv, err := v.toLua(shared[n], 0)
		if err != nil {
			s.err = fmt.Sprintf("global %s: %v", n, err)
			break
		}
		s.values[n] = lv
	}
	for t, ti := range v.r.tables {
		s.tables[t] = *ti
		s.readOnly[t] = true
	}
	v.r, v.sess, s.sharing = nil, nil, false
	return s
}

// Run runs prog with call (whose Globals must not repeat a shared name) and
// the session's shared globals. Result and error are as for Pool.Run.
func (s *Session) Run(prog *Program, call Call) (Result, error) {
	if call.Limits.MaxDepth != s.depth || s.v == nil {
		return Result{}, &Error{Kind: KindLimit, Chunk: prog.Name, Msg: fmt.Sprintf("call depth limit %d: the session was opened for %d (1..10000)", call.Limits.MaxDepth, s.depth)}
	}
	s.v.sess = s
	defer func() { s.v.sess = nil }()
	return s.v.run(prog, call)
}

// Close returns the session's VM to the pool. The session may not be used
// after.
func (s *Session) Close() {
	if s.pool == nil {
		return // closed already
	}
	if s.v != nil {
		s.pool.put(s.v)
		s.v = nil
	}
	p := s.pool
	*s = Session{names: s.names[:0], values: s.values, tables: s.tables, readOnly: s.readOnly, notes: s.notes}
	p.putSession(s)
}

// maxSessionTables bounds the tables a closed session may have known for
// its maps to be kept for the next one: emptying a map costs what it once
// held.
const maxSessionTables = 1 << 10

// session returns an empty Session, one a closed session left if any.
func (p *Pool) session() *Session {
	p.mu.Lock()
	if n := len(p.sessions); n > 0 {
		s := p.sessions[n-1]
		p.sessions = p.sessions[:n-1]
		p.mu.Unlock()
		return s
	}
	p.mu.Unlock()
	return &Session{values: map[string]lua.LValue{}, tables: map[*lua.LTable]tableInfo{}, readOnly: map[*lua.LTable]bool{}, notes: map[*notes.Note]*lua.LTable{}}
}

// putSession keeps a closed session's maps, emptied, for a later one.
func (p *Pool) putSession(s *Session) {
	if len(s.readOnly) > maxSessionTables {
		return
	}
	clear(s.values)
	clear(s.tables)
	clear(s.readOnly)
	clear(s.notes)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sessions) < maxIdle {
		p.sessions = append(p.sessions, s)
	}
}

// count is the number of shared globals; 0 outside a session.
func (s *Session) count() int {
	if s == nil {
		return 0
	}
	return len(s.names)
}

// value returns the shared global n, if the session has one.
func (s *Session) value(n string) (lua.LValue, bool) {
	if s == nil {
		return nil, false
	}
	lv, ok := s.values[n]
	return lv, ok
}

// table returns the slot counts of t when it is one of the shared tables.
func (s *Session) table(t *lua.LTable) (tableInfo, bool) {
	if s == nil {
		return tableInfo{}, false
	}
	ti, ok := s.tables[t]
	return ti, ok
}

// sharedNote returns the table a shared []notes.Note was given for the note
// at n, so that a run's note global is the same table as its place in the
// shared list.
func (s *Session) sharedNote(n *notes.Note) (*lua.LTable, bool) {
	if s == nil {
		return nil, false
	}
	t, ok := s.notes[n]
	return t, ok
}

// lockedAs names what t is when a fragment may not change it, and is ""
// when it may.
func (v *vm) lockedAs(t *lua.LTable) string {
	if v.frozen[t] {
		return "a library table"
	}
	if v.sess != nil && v.sess.readOnly[t] {
		return "a read-only table passed by the host"
	}
	return ""
}
