package chain

import (
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// Hosts are the host functions an instance gives its transactions' Lua code
// (docs/decisions/104-host-function-registry.md): one fixed set for every
// run of a transaction, since the receipts and roots depend on it, so it is
// part of the chain's rules. Sealing, verify's replay and a witness's
// recording get it through the instance (phases.Code); a dispute's referee,
// which has only a witness, gets it from the witness's state. A later host
// function is one more entry here, with its gas schedule in
// docs/formats/transactions.md.
var Hosts = phases.MustHosts(
	phases.HostFunc{Name: smartlua.HostName, Stages: phases.StagePredicate,
		New: func(run phases.HostRun) vp.HostFuncCtx { return smartlua.HostCheck(run.Pool) }},
	phases.HostFunc{Name: FollowName, Stages: phases.StageLookup, New: follow}, // labels.go
)
