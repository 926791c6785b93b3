package vp

import (
	lua "github.com/yuin/gopher-lua"
)

// Memory, as counted by the sandbox: a model, in bytes, of what gopher-lua
// allocates for what a run builds (docs/formats/lua-values.md, "Limits").
// It depends only on what the run did, never on the Go heap, so it is the
// same on every machine; TestMemoryCountTracksHeap checks it against the
// heap of this one.
const (
	tableBytes    = 160  // a table, and the sandbox's record of it
	arrayBytes    = 16   // a slot of an array part's capacity
	arrayMinCap   = 32   // the capacity of an array part that a store starts
	hashBaseBytes = 640  // a hash part: its maps and its list of keys
	hashKeyBytes  = 176  // a key of a hash part
	strMapBytes   = 2048 // a map for string keys that a store starts (gopher-lua sizes it for 32)
	stringBytes   = 24   // a string besides its bytes
	closureBytes  = 96   // a closure
	upvalueBytes  = 64   // a variable a closure keeps (a meter upvalue: 8)
	stackBytes    = 16   // a value of the longest list the VM's stack held
)

// bigStack is the most values a run may leave on its VM's stack for the
// VM to go back to the pool: gopher-lua never shrinks the stack, and a
// pooled VM keeps it.
const bigStack = 1 << 12

// tableInfo counts a table's slots and models its memory. hw is the
// highest array index stored (never more than the real array length, so
// gaps are over- not under-counted); top bounds the highest non-nil array
// index, so `#t` never rescans what it already scanned; cap is the modelled
// capacity of the array part; hash counts the keys ever added to the hash
// part; strMap says whether it has a map for string keys.
type tableInfo struct {
	slots, hw, top int
	cap, hash      int
	strMap         bool
}

// bytes is what a table holding what ti counts takes.
func (ti *tableInfo) bytes() int64 {
	n := tableBytes + arrayBytes*int64(ti.cap)
	if ti.hash > 0 {
		n += hashBaseBytes + hashKeyBytes*int64(ti.hash)
	}
	return n
}

// memoryPerGas is the rate at which what a run builds costs gas: a string
// built costs 1 per started 32 bytes, and tables, closures and the stack
// (build) 1 per 32 bytes of their modelled size. Allocating and then
// collecting memory is work that grows with it.
const memoryPerGas = 32

// build charges for n bytes of memory the run builds and counts them.
func (v *vm) build(n int64) {
	v.charge(uint64(n / memoryPerGas))
	v.alloc(n)
}

// alloc counts n bytes against the memory limit.
func (v *vm) alloc(n int64) {
	v.r.memory += n
	if v.r.memory > v.r.lim.MaxMemory {
		v.fail(KindLimit, nil, "memory limit exceeded (%d bytes)", v.r.lim.MaxMemory)
	}
}

// built charges for a string of n bytes that a builtin is about to build
// (or has built, up to the cap): 1 gas per started 32 bytes, the string
// cap, and the memory.
func (v *vm) built(n int) {
	v.charge(uint64(min(n, v.r.lim.MaxString)+31) / 32)
	if n > v.r.lim.MaxString {
		v.fail(KindLimit, nil, "string of %d bytes exceeds the limit (%d)", n, v.r.lim.MaxString)
	}
	v.alloc(int64(n) + stringBytes)
}

// info returns the slot counts of t, counting a table made outside this
// run's accounting once.
func (v *vm) info(t *lua.LTable) *tableInfo {
	if ti := v.r.tables[t]; ti != nil {
		return ti
	}
	if ti, ok := v.sess.table(t); ok {
		return v.r.track(t, ti) // a copy: border moves top
	}
	n, hash := 0, 0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n++
		if _, ok := arrayKey(k); !ok {
			hash++
		}
	}
	v.charge(uint64(1 + n/8))
	mx := t.MaxN()
	return v.r.track(t, tableInfo{slots: n, hw: mx, top: mx, cap: mx, hash: hash, strMap: hash > 0})
}

// track records a table's slot counts, making the map on first use, and
// returns the record. Records are kept in slabs: a run that makes many
// tables makes few allocations for them.
func (r *run) track(t *lua.LTable, ti tableInfo) *tableInfo {
	if r.tables == nil {
		r.tables = map[*lua.LTable]*tableInfo{}
	}
	if len(r.infos) == cap(r.infos) {
		r.infos = make([]tableInfo, 0, min(max(2*cap(r.infos), 8), 256))
	}
	r.infos = append(r.infos, ti)
	p := &r.infos[len(r.infos)-1]
	r.tables[t] = p
	return p
}

// newTable registers a table that a constructor or a builtin built in this
// run, charging 1 per entry and its long string keys and building its
// memory, and gives each number in it a box of its own (rebox).
func (v *vm) newTable(t *lua.LTable) {
	delete(v.r.tables, t)
	ti := v.info(t)
	v.charge(uint64(ti.slots))
	v.build(ti.bytes())
	v.checkSlots(ti)
	for k, val := t.Next(lua.LNil); k != lua.LNil; k, val = t.Next(k) {
		v.charge(hashCost(k)) // the constructor hashed it
		if n, ok := val.(lua.LNumber); ok {
			t.RawSet(k, rebox(n))
		}
	}
}

func (v *vm) checkSlots(ti *tableInfo) {
	if ti.slots > v.r.lim.MaxTable {
		v.fail(KindLimit, nil, "table has more than %d entries", v.r.lim.MaxTable)
	}
}

func arrayKey(k lua.LValue) (int, bool) {
	n, ok := k.(lua.LNumber)
	if !ok {
		return 0, false
	}
	i := int(n)
	return i, float64(i) == float64(n) && i >= 1 && i < maxArrayIndex
}

// account counts the slots and the memory that storing a non-nil value at
// an absent key adds to t. An array part grows by doubling from
// arrayMinCap; the first string key a store adds to a table without a map
// for them makes one sized for 32 keys.
func (v *vm) account(t *lua.LTable, k lua.LValue) {
	ti := v.info(t)
	i, ok := arrayKey(k)
	if !ok {
		ti.slots++
		v.checkSlots(ti)
		n := int64(hashKeyBytes)
		if ti.hash == 0 {
			n += hashBaseBytes
		}
		if _, s := k.(lua.LString); s && !ti.strMap {
			ti.strMap = true
			n += strMapBytes
		}
		ti.hash++
		v.build(n)
		return
	}
	if i > ti.hw {
		ti.slots += i - ti.hw // the array part grows through every index up to i
		ti.hw = i
		v.checkSlots(ti)
	}
	ti.top = max(ti.top, i)
	if i > ti.cap {
		c := max(2*ti.cap, arrayMinCap)
		for c < i {
			c *= 2
		}
		v.build(arrayBytes * int64(c-ti.cap))
		ti.cap = c
	}
}

// rebox returns x with a box of its own when it is a number. gopher-lua
// boxes the numbers arithmetic makes 32 to an allocation, and one number
// kept keeps its 32; a number stored in a table gets its own 8 bytes.
func rebox(x lua.LValue) lua.LValue {
	if n, ok := x.(lua.LNumber); ok {
		return lua.LValue(n)
	}
	return x
}

// closure charges for a closure that the run just made, closureGas and 1
// per variable it keeps, and counts its memory: the closure, its upvalue
// slots and each variable it keeps, whose number, if it holds one, gets a
// box of its own.
func (v *vm) closure(fn *lua.LFunction) {
	kept := 0
	for i, uv := range fn.Upvalues {
		if i < len(fn.Proto.DbgUpvalues) && isMeter(fn.Proto.DbgUpvalues[i]) {
			continue
		}
		kept++
		if n, ok := uv.Value().(lua.LNumber); ok {
			uv.SetValue(lua.LValue(n))
		}
	}
	v.charge(closureGas + uint64(kept))
	v.build(closureBytes + 8*int64(len(fn.Upvalues)) + upvalueBytes*int64(kept))
}

// stack counts n values a run placed on its VM's stack at once: the stack
// keeps the most it ever held.
func (v *vm) stack(n int) {
	if n > v.r.stack {
		v.build(stackBytes * int64(n-v.r.stack))
		v.r.stack = n
	}
}
