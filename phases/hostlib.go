package phases

import (
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// predicateHost adds to g the host functions every validity predicate may
// call besides the transaction's globals. Each is deterministic and charges
// its work to the calling predicate's own gas meter (vp.HostFuncCtx), so a
// predicate's Lua and its host calls share one budget
// (docs/formats/transactions.md, "What the phases do"):
//
//   - smartlua_check(prev, next): next (a note value holding a Smart Lua
//     record) is the verified successor of prev (the spent note's value),
//     or with prev nil a verified initial state; returns the new state hash
//     in hex or raises why not (smartlua.HostCheck, examples/smartlua).
func predicateHost(g map[string]any, pool *vp.Pool) {
	g["smartlua_check"] = smartlua.HostCheck(pool)
}
