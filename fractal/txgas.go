package fractal

// The admission cap on one transaction's gas limit, max_tx_gas (decision
// 170): one check and one message on every path a transaction enters
// (Submit, Simulate, EstimateGas, CheckPending for a consensus mempool),
// never in execution, so that validators with other caps still agree on
// every block.

import (
	"errors"
	"fmt"
	"time"

	"github.com/fractalvm/fractal/phases"
)

// DefaultMaxTxGas is max_tx_gas until SetMaxTxGas changes it (a node sets
// its node-config.json's).
const DefaultMaxTxGas = 10_000_000

// ErrGasCap is what errors.Is finds in a refusal of a gas limit over a cap
// the chain or the node sets (max_block_gas, max_tx_gas, a node's
// simulate_gas_limit): a fault of the transaction given this instance's
// configuration, not of its form (the node answers failed_precondition).
var ErrGasCap = errors.New("gas limit over a cap")

// GasCapError refuses a gas limit over a cap; its message is the reason.
type GasCapError struct{ Reason string }

func (e *GasCapError) Error() string        { return e.Reason }
func (e *GasCapError) Is(target error) bool { return target == ErrGasCap }

// overGasCap is a *GasCapError with a formatted reason.
func overGasCap(format string, args ...any) error {
	return &GasCapError{Reason: fmt.Sprintf(format, args...)}
}

// worstNsPerGas is the slowest calibrated operation's time per unit of gas
// (make calibrate, decision 090), rounded up.
const worstNsPerGas = 134

// GasTime is the longest a transaction with gas limit g may run.
func GasTime(g uint64) time.Duration { return time.Duration(g * worstNsPerGas) }

// SetMaxTxGas sets max_tx_gas, the largest gas limit admission accepts
// (0 restores DefaultMaxTxGas). It is this process's policy, not the
// chain's: nothing stored or executed depends on it.
func (in *Instance) SetMaxTxGas(g uint64) { in.maxTxGas.Store(g) }

// MaxTxGas returns max_tx_gas.
func (in *Instance) MaxTxGas() uint64 {
	if g := in.maxTxGas.Load(); g != 0 {
		return g
	}
	return DefaultMaxTxGas
}

// CheckTxGas refuses a transaction whose gas limit is over max_tx_gas: one
// transaction runs for up to its limit times the worst nanoseconds per gas
// while its block waits for it.
func (in *Instance) CheckTxGas(tx *phases.Tx) error {
	max := in.MaxTxGas()
	if tx.GasLimit <= max {
		return nil
	}
	return overGasCap("gas limit %d is over max_tx_gas %d (one transaction would hold its block for up to %v); lower it, or ask the node's operator (node-config.json)",
		tx.GasLimit, max, GasTime(tx.GasLimit).Round(time.Millisecond))
}
