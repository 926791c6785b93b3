package vp

import (
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// StateView is a readable form of a serialized state, for people and JSON.
// Values are written as Lua literals; `table#N` and `function#N` name
// objects, `lib:NAME` a library value.
type StateView struct {
	Chunks  []ChunkView  `json:"chunks"`
	Objects []ObjectView `json:"objects"` // object 0 is the global table
}

// ChunkView is one stored chunk source.
type ChunkView struct {
	Hash   string `json:"sha256"`
	Source string `json:"source"`
}

// ObjectView is one table or closure.
type ObjectView struct {
	Name      string      `json:"name"`
	Entries   []EntryView `json:"entries,omitempty"`   // a table's, in canonical key order
	Metatable string      `json:"metatable,omitempty"` // a table's
	Chunk     string      `json:"chunk,omitempty"`     // a closure's chunk hash
	Proto     int         `json:"proto,omitempty"`     // a closure's prototype position
	Line      int         `json:"line,omitempty"`      // where the closure's function is defined
	Upvalues  []EntryView `json:"upvalues,omitempty"`  // a closure's, by name
}

// EntryView is a key (or upvalue name) and its value.
type EntryView struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ShowState checks that b is a canonical state and describes it.
func ShowState(b []byte) (*StateView, error) {
	if _, _, err := NewPool().RunState(nil, b, Call{Limits: DefaultLimits()}); err != nil {
		return nil, err
	}
	p, err := parseState(b, cachedChunk)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	// Cells are shown inside the closures that hold them; tables and
	// closures are named by their object number.
	names := make([]string, len(p.objs))
	var view StateView
	for _, c := range p.chunks {
		view.Chunks = append(view.Chunks, ChunkView{Hash: hex.EncodeToString(c.hash[:]), Source: string(c.src)})
	}
	for i, o := range p.objs {
		switch o.kind {
		case kindTable:
			names[i] = "table#" + strconv.Itoa(i)
		case kindClosure:
			names[i] = "function#" + strconv.Itoa(i)
		}
	}
	literal := func(v dvalue) string {
		switch v.tag {
		case tagNil:
			return "nil"
		case tagFalse:
			return "false"
		case tagTrue:
			return "true"
		case tagNumber:
			return lua.LNumber(math.Float64frombits(v.num)).String()
		case tagString:
			return strconv.Quote(v.str)
		case tagLib:
			return "lib:" + v.str
		}
		return names[v.ref]
	}
	for i, o := range p.objs {
		switch o.kind {
		case kindTable:
			ov := ObjectView{Name: names[i]}
			if i == 0 {
				ov.Name = "_G"
			}
			for j := range o.keys {
				ov.Entries = append(ov.Entries, EntryView{Key: "[" + literal(o.keys[j]) + "]", Value: literal(o.vals[j])})
			}
			if o.meta.tag != tagNil {
				ov.Metatable = literal(o.meta)
			}
			view.Objects = append(view.Objects, ov)
		case kindClosure:
			c := p.chunks[o.chunk]
			proto := c.protos[o.proto]
			ov := ObjectView{Name: names[i], Chunk: hex.EncodeToString(c.hash[:]), Proto: int(o.proto), Line: proto.LineDefined}
			next := 0
			for _, n := range proto.DbgUpvalues {
				if strings.HasPrefix(n, reservedPrefix) {
					continue
				}
				cell := p.objs[o.cells[next]]
				next++
				ov.Upvalues = append(ov.Upvalues, EntryView{Key: n, Value: literal(cell.single)})
			}
			view.Objects = append(view.Objects, ov)
		}
	}
	return &view, nil
}

// WriteText prints the view, one object per block.
func (s *StateView) WriteText(w io.Writer) {
	for _, o := range s.Objects {
		if o.Chunk != "" {
			fmt.Fprintf(w, "%s: function at line %d of chunk %s\n", o.Name, o.Line, o.Chunk)
			for _, u := range o.Upvalues {
				fmt.Fprintf(w, "  upvalue %s = %s\n", u.Key, u.Value)
			}
			continue
		}
		fmt.Fprintf(w, "%s = {\n", o.Name)
		for _, e := range o.Entries {
			fmt.Fprintf(w, "  %s = %s\n", e.Key, e.Value)
		}
		fmt.Fprintln(w, "}")
		if o.Metatable != "" {
			fmt.Fprintf(w, "  metatable %s\n", o.Metatable)
		}
	}
	for _, c := range s.Chunks {
		fmt.Fprintf(w, "chunk %s: %d bytes\n", c.Hash, len(c.Source))
	}
}
