package vp

import (
	lua "github.com/yuin/gopher-lua"
)

// maxInt is the largest integer under the integer rule, 2^53−1.
const maxInt = 1<<53 - 1

// next is SplitMix64 (Steele, Lea and Flood), the sandbox's only source of
// randomness, seeded by Call.Seed.
func (r *run) next() uint64 {
	r.rng += 0x9e3779b97f4a7c15
	z := r.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a uniform value in [0, span) by rejection sampling.
func (r *run) uniform(span uint64) uint64 {
	limit := ^uint64(0) - (^uint64(0)%span+1)%span
	for {
		if x := r.next(); x <= limit {
			return x % span
		}
	}
}

// random is math.random: no argument gives a float in [0,1) (53 random
// bits); (m) an integer in [1,m]; (m,n) an integer in [m,n].
func (v *vm) random(L *lua.LState) int {
	v.charge(1)
	r := v.r
	lo, hi := int64(1), int64(0)
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(float64(r.next()>>11) / (1 << 53)))
		return 1
	case 1:
		hi = v.intArg(L, 1)
	case 2:
		lo, hi = v.intArg(L, 1), v.intArg(L, 2)
	default:
		L.RaiseError("wrong number of arguments to 'random'")
	}
	if lo > hi {
		L.RaiseError("bad argument to 'random' (interval is empty)")
	}
	L.Push(lua.LNumber(lo + int64(r.uniform(uint64(hi-lo)+1))))
	return 1
}

// randomseed restarts the run's generator from an integer seed.
func (v *vm) randomseed(L *lua.LState) int {
	v.charge(1)
	v.r.rng = uint64(v.intArg(L, 1))
	return 0
}

func isInt(n lua.LNumber) bool {
	return float64(n) == float64(int64(n)) && n >= -maxInt && n <= maxInt
}

// mathType is Lua 5.3's math.type under the integer rule: 'integer' for
// integral numbers within ±(2^53−1) (1.0 included), 'float' for other
// numbers, nil for anything else.
func mathType(L *lua.LState) int {
	n, ok := L.CheckAny(1).(lua.LNumber)
	switch {
	case !ok:
		L.Push(lua.LNil)
	case isInt(n):
		L.Push(lua.LString("integer"))
	default:
		L.Push(lua.LString("float"))
	}
	return 1
}

// mathToInteger returns its argument when it is an integer, else nil.
func mathToInteger(L *lua.LState) int {
	if n, ok := L.CheckAny(1).(lua.LNumber); ok && isInt(n) {
		L.Push(n)
	} else {
		L.Push(lua.LNil)
	}
	return 1
}
