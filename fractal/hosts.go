package fractal

import (
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
)

// Hosts returns the host functions the instance's Lua code may call
// (chain.Hosts). It implements phases.Code.
func (in *Instance) Hosts() *phases.Hosts { return chain.Hosts }
