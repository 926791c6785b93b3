package phases

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// MaxConcurrentMemory bounds the memory, as the sandbox counts it
// (vp.Limits.MaxMemory), that the Lua runs in progress in this process may
// hold together, whatever the number of cores and of transactions or
// predicates running at once (decision 092). Each run reserves its memory
// limit before it starts and gives it back when it ends; a validity
// predicate reserves twice its limit, for its own run and one nested Smart
// Lua step (smartlua_check, hostlib.go), which runs inside it. A run that
// does not fit waits: the budget changes when runs happen, never what they
// compute.
const MaxConcurrentMemory = 512 << 20

// runMemory is the budget every Lua run of the phases reserves from.
var runMemory = newBudget(MaxConcurrentMemory)

// budget is a bound on the bytes reserved at once.
type budget struct {
	sem  *semaphore.Weighted
	size int64
}

func newBudget(size int64) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size}
}

// reserve waits until n bytes fit in the budget and holds them until
// release is given what reserve returned (`defer b.release(b.reserve(n))`;
// a returned closure cost an allocation per run). A goroutine holds at most
// one reservation, so reservations cannot wait on each other.
func (b *budget) reserve(n int64) (held int64) {
	n = min(n, b.size)
	b.sem.Acquire(context.Background(), n) // cannot fail: the context never ends
	return n
}

// release gives back a reservation.
func (b *budget) release(held int64) { b.sem.Release(held) }
