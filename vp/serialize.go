package vp

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/fractalvm/fractal/internal/enc"
)

// The canonical serialization of a Lua state (docs/formats/smartlua.md):
//
//	u8 version (1)
//	count chunks, each: var source            (ascending SHA-256 of source)
//	count objects, each: u8 kind, then
//	   kindTable:   count entries, each: value key, value val; value metatable
//	   kindClosure: u32 chunk, u32 proto, count cells, each: u32 object
//	   kindCell:    value
//	value: u8 tag, then nothing (nil, false, true), u64 float bits (number),
//	       var bytes (string), u32 object (ref), string name (library)
//
// Object 0 is the global table. Objects are numbered in the order a
// breadth-first walk from it meets them, visiting table entries in canonical
// key order, so the bytes depend only on the state, never on insertion order
// or addresses.
const stateVersion = 1

const (
	kindTable   = 1
	kindClosure = 2
	kindCell    = 3
)

const (
	tagNil    = 0
	tagFalse  = 1
	tagTrue   = 2
	tagNumber = 3
	tagString = 4
	tagRef    = 5
	tagLib    = 6
)

// hostGlobals are set by the host on every run and are never state.
var hostGlobals = map[string]bool{"_G": true, "signers": true}

// maxDecodeSlots bounds the array slots (including the nil gaps gopher-lua
// fills in below an integer key) that decoding one state may allocate, so a
// hostile state cannot make the decoder allocate gigabytes.
const maxDecodeSlots = 1 << 22

// maxDecodeObjects bounds the objects of one state, and table entries count
// against maxDecodeSlots as they are read, so that a few bytes claiming a
// huge count, or many tiny objects, cannot make the parser hold gigabytes
// (a parsed object takes about 80 times its smallest encoding). A state
// made under DefaultLimits stays well below both.
const maxDecodeObjects = 1 << 21

// canonicalNaN is the one bit pattern a NaN value is written with.
const canonicalNaN = 0x7ff8000000000000

// chunk is a compiled fragment that closures in a state may come from.
type chunk struct {
	hash   [32]byte
	src    []byte
	prog   *Program
	protos []*lua.FunctionProto // preorder from prog.proto
}

// protoRef names a function prototype: its chunk and its preorder position.
type protoRef struct {
	c   *chunk
	pos int
}

// libIndex names the sandbox's library values, both ways.
type libIndex struct {
	names map[lua.LValue]string
	vals  map[string]lua.LValue
}

func newLibIndex(libs *lua.LTable) *libIndex {
	ix := &libIndex{names: map[lua.LValue]string{}, vals: map[string]lua.LValue{}}
	add := func(name string, val lua.LValue) {
		switch val.(type) {
		case *lua.LFunction, *lua.LTable:
			ix.names[val] = name
			ix.vals[name] = val
		}
	}
	libs.ForEach(func(k, val lua.LValue) {
		name := string(k.(lua.LString))
		add(name, val)
		if t, ok := val.(*lua.LTable); ok {
			t.ForEach(func(k2, v2 lua.LValue) { add(name+"."+string(k2.(lua.LString)), v2) })
		}
	})
	return ix
}

// keyRank orders key types: booleans, then numbers, then strings.
func keyRank(k lua.LValue) int {
	switch k.(type) {
	case lua.LBool:
		return 0
	case lua.LNumber:
		return 1
	}
	return 2
}

// keyLess is the canonical key order: false < true < numbers ascending <
// strings bytewise.
func keyLess(a, b lua.LValue) bool {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra < rb
	}
	switch a := a.(type) {
	case lua.LBool:
		return !bool(a) && bool(b.(lua.LBool))
	case lua.LNumber:
		return a < b.(lua.LNumber)
	}
	return string(a.(lua.LString)) < string(b.(lua.LString))
}

// encoder walks a state.
type encoder struct {
	libs    *libIndex
	protos  func(*lua.FunctionProto) (protoRef, bool)
	ids     map[any]uint32 // *lua.LTable, *lua.LFunction, *lua.Upvalue
	objs    []any
	keys    [][]entry           // entries in canonical key order, per table object
	from    []origin            // how each object was first reached, for errors
	chunks  map[[32]byte]*chunk // by source hash: two compiles of one source are one chunk
	root    *lua.LTable
	chunkIx map[[32]byte]uint32
}

// origin records the parent object and the step from it, so an error can
// name the path to a value that cannot be serialized.
type origin struct {
	parent int
	step   step
}

// step is how a value is reached from its parent: a table key, or a note
// such as "<metatable>". It is formatted only for an error.
type step struct {
	key  lua.LValue
	note string
}

func (s step) String() string {
	if s.key == nil {
		return s.note
	}
	return keyStep(s.key)
}

func (e *encoder) path(obj int, last step) string {
	steps := []string{last.String()}
	for obj > 0 {
		steps = append(steps, e.from[obj].step.String())
		obj = e.from[obj].parent
	}
	var b strings.Builder
	b.WriteString("_G")
	for i := len(steps) - 1; i >= 0; i-- {
		b.WriteString(steps[i])
	}
	return b.String()
}

func keyStep(k lua.LValue) string {
	switch k := k.(type) {
	case lua.LString:
		return "[" + strconv.Quote(string(k)) + "]"
	case lua.LNumber:
		return "[" + k.String() + "]"
	}
	return "[" + k.String() + "]"
}

// visit assigns an id to a reference value met at parent/step, or refuses
// a value that is not state.
func (e *encoder) visit(val lua.LValue, parent int, via step) error {
	switch x := val.(type) {
	case *lua.LNilType, lua.LBool, lua.LNumber, lua.LString:
		return nil
	case *lua.LTable:
		if _, ok := e.libs.names[x]; ok {
			return nil
		}
		e.add(x, parent, via)
		return nil
	case *lua.LFunction:
		if _, ok := e.libs.names[x]; ok {
			return nil
		}
		if x.IsG {
			return fmt.Errorf("vp: state: %s is a host function that is not part of the sandbox", e.path(parent, via))
		}
		if _, ok := e.protos(x.Proto); !ok {
			return fmt.Errorf("vp: state: %s is a function from an unknown chunk", e.path(parent, via))
		}
		e.add(x, parent, via)
		return nil
	}
	return fmt.Errorf("vp: state: %s is a %s value, which cannot be serialized", e.path(parent, via), val.Type())
}

func (e *encoder) add(x any, parent int, via step) {
	if _, ok := e.ids[x]; ok {
		return
	}
	e.ids[x] = uint32(len(e.objs))
	e.objs = append(e.objs, x)
	e.keys = append(e.keys, nil)
	e.from = append(e.from, origin{parent, via})
}

// entries returns t's entries in canonical key order: booleans, numbers,
// strings, each sorted by its own comparison (faster than one comparison
// across types).
func (e *encoder) entries(t *lua.LTable, obj int) ([]entry, error) {
	var bools, nums, strs []entry
	var bad lua.LValue // the refused key of the lowest type: ForEach's order is Go's map order
	t.ForEach(func(k, val lua.LValue) {
		switch kk := k.(type) {
		case lua.LBool:
			bools = append(bools, entry{k, val})
		case lua.LNumber:
			nums = append(nums, entry{k, val})
		case lua.LString:
			if obj == 0 && hostGlobals[string(kk)] {
				return
			}
			strs = append(strs, entry{k, val})
		default:
			if bad == nil || k.Type() < bad.Type() {
				bad = k
			}
		}
	})
	if bad != nil {
		return nil, fmt.Errorf("vp: state: %s has a %s key; keys must be booleans, numbers or strings", e.path(obj, step{}), bad.Type())
	}
	slices.SortFunc(bools, func(a, b entry) int { return cmp.Compare(lvBool(a.k), lvBool(b.k)) })
	slices.SortFunc(nums, func(a, b entry) int { return cmp.Compare(a.k.(lua.LNumber), b.k.(lua.LNumber)) })
	slices.SortFunc(strs, func(a, b entry) int { return strings.Compare(string(a.k.(lua.LString)), string(b.k.(lua.LString))) })
	return append(append(bools, nums...), strs...), nil
}

func lvBool(v lua.LValue) int {
	if v.(lua.LBool) {
		return 1
	}
	return 0
}

// walk numbers every object reachable from root, breadth first.
func (e *encoder) walk() error {
	e.add(e.root, 0, step{})
	for i := 0; i < len(e.objs); i++ {
		switch x := e.objs[i].(type) {
		case *lua.LTable:
			ents, err := e.entries(x, i)
			if err != nil {
				return err
			}
			e.keys[i] = ents
			for _, en := range ents {
				if err := e.visit(en.v, i, step{key: en.k}); err != nil {
					return err
				}
			}
			if i != 0 {
				if err := e.visit(x.Metatable, i, step{note: "<metatable>"}); err != nil {
					return err
				}
			}
		case *lua.LFunction:
			ref, _ := e.protos(x.Proto)
			e.chunks[ref.c.hash] = ref.c
			for u, name := range x.Proto.DbgUpvalues {
				if strings.HasPrefix(name, reservedPrefix) {
					continue
				}
				e.add(x.Upvalues[u], i, step{note: "<upvalue " + name + ">"})
			}
		case *lua.Upvalue:
			if err := e.visit(x.Value(), i, step{}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *encoder) value(w *enc.Writer, val lua.LValue) {
	switch x := val.(type) {
	case *lua.LNilType:
		w.U8(tagNil)
	case lua.LBool:
		if x {
			w.U8(tagTrue)
		} else {
			w.U8(tagFalse)
		}
	case lua.LNumber:
		w.U8(tagNumber)
		f := float64(x)
		bits := math.Float64bits(f)
		if f != f {
			bits = canonicalNaN
		}
		w.U64(bits)
	case lua.LString:
		w.U8(tagString)
		w.String(string(x))
	default:
		if name, ok := e.libs.names[val]; ok {
			w.U8(tagLib)
			w.String(name)
			return
		}
		w.U8(tagRef)
		w.U32(e.ids[val])
	}
}

// key writes a table key; -0 is the same key as 0.
func (e *encoder) key(w *enc.Writer, k lua.LValue) {
	if n, ok := k.(lua.LNumber); ok && n == 0 {
		k = lua.LNumber(0)
	}
	e.value(w, k)
}

func (e *encoder) write() []byte {
	chunks := make([]*chunk, 0, len(e.chunks))
	for _, c := range e.chunks {
		chunks = append(chunks, c)
	}
	sort.Slice(chunks, func(a, b int) bool { return bytes.Compare(chunks[a].hash[:], chunks[b].hash[:]) < 0 })
	e.chunkIx = map[[32]byte]uint32{}
	size := 16
	for i, c := range chunks {
		e.chunkIx[c.hash] = uint32(i)
		size += 4 + len(c.src)
	}
	w := enc.NewWriter(size + 32*len(e.objs))
	w.U8(stateVersion)
	w.U32(uint32(len(chunks)))
	for _, c := range chunks {
		w.Var(c.src)
	}
	w.U32(uint32(len(e.objs)))
	for i, o := range e.objs {
		switch x := o.(type) {
		case *lua.LTable:
			w.U8(kindTable)
			w.U32(uint32(len(e.keys[i])))
			for _, en := range e.keys[i] {
				e.key(w, en.k)
				e.value(w, en.v)
			}
			if i == 0 {
				e.value(w, lua.LNil)
			} else {
				e.value(w, x.Metatable)
			}
		case *lua.LFunction:
			ref, _ := e.protos(x.Proto)
			w.U8(kindClosure)
			w.U32(e.chunkIx[ref.c.hash])
			w.U32(uint32(ref.pos))
			var cells []uint32
			for u, name := range x.Proto.DbgUpvalues {
				if !strings.HasPrefix(name, reservedPrefix) {
					cells = append(cells, e.ids[x.Upvalues[u]])
				}
			}
			w.U32(uint32(len(cells)))
			for _, c := range cells {
				w.U32(c)
			}
		case *lua.Upvalue:
			w.U8(kindCell)
			e.value(w, x.Value())
		}
	}
	return w.Bytes()
}

// serialize returns the canonical bytes of the state rooted at root.
func serialize(root *lua.LTable, libs *libIndex, protos func(*lua.FunctionProto) (protoRef, bool)) ([]byte, error) {
	e := &encoder{libs: libs, protos: protos, root: root, ids: map[any]uint32{}, chunks: map[[32]byte]*chunk{}}
	if err := e.walk(); err != nil {
		return nil, err
	}
	return e.write(), nil
}

// decoded values before the Lua objects exist.
type dvalue struct {
	tag uint8
	num uint64
	str string
	ref uint32
}

type dobject struct {
	kind   uint8
	keys   []dvalue
	vals   []dvalue
	meta   dvalue
	chunk  uint32
	proto  uint32
	cells  []uint32
	single dvalue // a cell's value
}

func readValue(r *enc.Reader) dvalue {
	v := dvalue{tag: r.U8()}
	switch v.tag {
	case tagNil, tagFalse, tagTrue:
	case tagNumber:
		v.num = r.U64()
	case tagString:
		v.str = r.String(r.Remaining(), "string")
	case tagRef:
		v.ref = r.U32()
	case tagLib:
		v.str = r.String(64, "library name")
	default:
		r.Fail(fmt.Errorf("unknown value tag %d", v.tag))
	}
	return v
}

// decoder rebuilds Lua objects on one LState.
type decoder struct {
	L       *lua.LState
	env     *lua.LTable // the Env every rebuilt closure gets
	libs    *libIndex
	meter   func(name string) (*lua.Upvalue, bool)
	compile func(src []byte) (*chunk, error)
}

// ErrState wraps every failure to read state bytes: they are not a
// canonical serialization this sandbox can rebuild.
var ErrState = errors.New("vp: state: decode")

// parsed is a state's bytes split into fields, before any Lua object exists.
type parsed struct {
	chunks []*chunk
	objs   []dobject
}

// parseState reads the fields of a state; compile turns each chunk source into
// its compiled chunk.
func parseState(b []byte, compile func(src []byte) (*chunk, error)) (*parsed, error) {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", v, stateVersion)
	}
	nchunks := r.Count(r.Remaining()/4, "chunks")
	chunks := make([]*chunk, 0, nchunks)
	for i := 0; i < nchunks && r.Err() == nil; i++ {
		src := r.Var(MaxSource, "chunk source")
		if r.Err() != nil {
			break
		}
		c, err := compile(src)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %v", i, err)
		}
		if i > 0 && bytes.Compare(chunks[i-1].hash[:], c.hash[:]) >= 0 {
			return nil, errors.New("chunks are not in ascending hash order")
		}
		chunks = append(chunks, c)
	}
	// Every object takes at least 2 bytes, every table entry 2.
	nobj := r.Count(min(r.Remaining()/2, maxDecodeObjects), "objects")
	objs := make([]dobject, 0, min(nobj, 1024))
	entries := 0
	for i := 0; i < nobj && r.Err() == nil; i++ {
		o := dobject{kind: r.U8()}
		switch o.kind {
		case kindTable:
			n := r.Count(min(r.Remaining()/2, maxDecodeSlots-entries), "table entries")
			entries += n
			o.keys = make([]dvalue, 0, n)
			o.vals = make([]dvalue, 0, n)
			for j := 0; j < n && r.Err() == nil; j++ {
				o.keys = append(o.keys, readValue(r))
				o.vals = append(o.vals, readValue(r))
			}
			o.meta = readValue(r)
		case kindClosure:
			o.chunk, o.proto = r.U32(), r.U32()
			n := r.Count(r.Remaining()/4, "upvalues")
			for j := 0; j < n && r.Err() == nil; j++ {
				o.cells = append(o.cells, r.U32())
			}
		case kindCell:
			o.single = readValue(r)
		default:
			r.Fail(fmt.Errorf("object %d: unknown kind %d", i, o.kind))
		}
		objs = append(objs, o)
	}
	if err := r.Finish(); err != nil {
		return nil, err
	}
	if len(objs) == 0 || objs[0].kind != kindTable {
		return nil, errors.New("object 0 is not the global table")
	}
	for i, o := range objs {
		if o.kind == kindClosure && (int(o.chunk) >= len(chunks) || int(o.proto) >= len(chunks[o.chunk].protos)) {
			return nil, fmt.Errorf("object %d: no prototype %d in chunk %d", i, o.proto, o.chunk)
		}
	}
	return &parsed{chunks: chunks, objs: objs}, nil
}

func (d *decoder) decode(b []byte) (*lua.LTable, error) {
	fail := func(err error) (*lua.LTable, error) { return nil, fmt.Errorf("%w: %v", ErrState, err) }
	p, err := parseState(b, d.compile)
	if err != nil {
		return fail(err)
	}
	chunks, objs := p.chunks, p.objs
	// Make every object first, then fill them, so references may point
	// anywhere.
	lv := make([]any, len(objs))
	for i, o := range objs {
		switch o.kind {
		case kindTable:
			lv[i] = d.L.CreateTable(0, 0)
		case kindCell:
			lv[i] = &lua.Upvalue{}
		case kindClosure:
			fn := d.L.NewFunctionFromProto(chunks[o.chunk].protos[o.proto])
			fn.Env = d.env
			lv[i] = fn
		}
	}
	value := func(v dvalue, where int) (lua.LValue, error) {
		switch v.tag {
		case tagNil:
			return lua.LNil, nil
		case tagFalse:
			return lua.LFalse, nil
		case tagTrue:
			return lua.LTrue, nil
		case tagNumber:
			return lua.LNumber(math.Float64frombits(v.num)), nil
		case tagString:
			return lua.LString(v.str), nil
		case tagLib:
			if x, ok := d.libs.vals[v.str]; ok {
				return x, nil
			}
			return nil, fmt.Errorf("object %d: unknown library value %q", where, v.str)
		}
		if int(v.ref) >= len(lv) {
			return nil, fmt.Errorf("object %d: reference to object %d of %d", where, v.ref, len(lv))
		}
		switch x := lv[v.ref].(type) {
		case *lua.LTable:
			return x, nil
		case *lua.LFunction:
			return x, nil
		}
		return nil, fmt.Errorf("object %d: reference to upvalue cell %d as a value", where, v.ref)
	}
	slots := 0
	for i, o := range objs {
		switch o.kind {
		case kindTable:
			t := lv[i].(*lua.LTable)
			for j := range o.keys {
				k, err := value(o.keys[j], i)
				if err != nil {
					return fail(err)
				}
				val, err := value(o.vals[j], i)
				if err != nil {
					return fail(err)
				}
				switch kk := k.(type) {
				case lua.LBool, lua.LString:
				case lua.LNumber:
					if kk != kk {
						return fail(fmt.Errorf("object %d: NaN key", i))
					}
					if n, ok := arrayKey(kk); ok {
						slots += max(n-t.MaxN(), 0)
					}
				default:
					return fail(fmt.Errorf("object %d: %s key", i, k.Type()))
				}
				if val == lua.LNil {
					return fail(fmt.Errorf("object %d: nil value", i))
				}
				if slots += 1; slots > maxDecodeSlots {
					return fail(fmt.Errorf("more than %d table slots", maxDecodeSlots))
				}
				t.RawSet(k, val)
			}
			mt, err := value(o.meta, i)
			if err != nil {
				return fail(err)
			}
			if _, ok := mt.(*lua.LTable); !ok && mt != lua.LNil {
				return fail(fmt.Errorf("object %d: metatable is a %s value", i, mt.Type()))
			}
			t.Metatable = mt
		case kindCell:
			val, err := value(o.single, i)
			if err != nil {
				return fail(err)
			}
			lv[i].(*lua.Upvalue).SetValue(val)
		case kindClosure:
			fn := lv[i].(*lua.LFunction)
			next := 0
			for u, name := range fn.Proto.DbgUpvalues {
				if strings.HasPrefix(name, reservedPrefix) {
					m, ok := d.meter(name)
					if !ok {
						return fail(fmt.Errorf("object %d: unknown meter upvalue %q", i, name))
					}
					fn.Upvalues[u] = m
					continue
				}
				if next >= len(o.cells) {
					return fail(fmt.Errorf("object %d: %d upvalue cells, prototype needs more", i, len(o.cells)))
				}
				c := o.cells[next]
				next++
				cell, ok := lv[min(int(c), len(lv)-1)].(*lua.Upvalue)
				if int(c) >= len(lv) || !ok {
					return fail(fmt.Errorf("object %d: upvalue %d is not a cell", i, c))
				}
				fn.Upvalues[u] = cell
			}
			if next != len(o.cells) {
				return fail(fmt.Errorf("object %d: %d upvalue cells, prototype needs %d", i, len(o.cells), next))
			}
		}
	}
	return lv[0].(*lua.LTable), nil
}

// ChunkName is the name a state's chunk is compiled under: derived from its
// hash, so error messages (which a state may keep) are the same everywhere.
// The CLI shows the file name instead where it knows it.
func ChunkName(hash [32]byte) string { return fmt.Sprintf("chunk-%x", hash[:6]) }

func newChunk(src []byte) (*chunk, error) {
	hash := sha256.Sum256(src)
	prog, err := Compile(ChunkName(hash), src)
	if err != nil {
		return nil, err
	}
	c := &chunk{hash: hash, src: append([]byte(nil), src...), prog: prog}
	var walk func(p *lua.FunctionProto)
	walk = func(p *lua.FunctionProto) {
		c.protos = append(c.protos, p)
		for _, q := range p.FunctionPrototypes {
			walk(q)
		}
	}
	walk(prog.proto)
	return c, nil
}

// size is what a cached chunk holds: its compiled code and its source.
func (c *chunk) size() int64 { return c.prog.Size() + int64(len(c.src)) }
