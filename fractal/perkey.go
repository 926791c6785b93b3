package fractal

// The Fae per-key limit (decision 142): a block holds at most one more
// transaction signed by a key than the number of earlier blocks holding a
// transaction signed by that key. Propose keeps it when the configuration
// says so (per_key_limit); the counts live under prefixPerKey, kept by
// every block committed while it is on.

import (
	"encoding/binary"
	"fmt"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// perKeyRead is how many queued transactions Propose looks through, with
// the per-key limit on, for a block of at most max: deferred ones stay at
// the front of the queue, so it reads past them, within a bound.
func perKeyRead(max int) int { return min(4*max, MaxQueueRead) }

func perKeyKey(k keys.PublicKey) []byte { return append([]byte{prefixPerKey}, k[:]...) }

// blocksSignedBy is the stored count of blocks holding a transaction k
// signed (0 for none).
func blocksSignedBy(r kv.Reader, k keys.PublicKey) (uint64, error) {
	raw, ok, err := r.Get(perKeyKey(k))
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, nil
	case len(raw) != 8:
		return 0, fmt.Errorf("per-key count of %s has %d bytes", k, len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

// withinPerKeyLimit keeps, in arrival order, the first max queued
// transactions the per-key limit lets into the next block. A transaction
// any of whose signers has no room left is deferred, and so is every later
// one signed by any of its signers, so that each key's transactions keep
// their order; the others go on (a deferred transaction holds back its own
// keys only). Whether one is kept depends on those before it only, so it
// stops at the max-th: the counts of later signers (Propose reads up to
// four blocks' worth, perKeyRead) are not read from the store.
func withinPerKeyLimit(r kv.Reader, q []queued, max int) ([]queued, error) {
	room := map[keys.PublicKey]uint64{}
	held := map[keys.PublicKey]bool{}
	var out []queued
	for _, e := range q {
		if len(out) == max {
			break
		}
		fits := true
		for _, s := range e.tx.Signers {
			if _, ok := room[s]; !ok {
				n, err := blocksSignedBy(r, s)
				if err != nil {
					return nil, err
				}
				room[s] = n + 1
			}
			fits = fits && !held[s] && room[s] > 0
		}
		if !fits {
			for _, s := range e.tx.Signers {
				held[s] = true
			}
			continue
		}
		for _, s := range e.tx.Signers {
			room[s]--
		}
		out = append(out, e)
	}
	return out, nil
}

// perKeyPart is the per-key counts' part in a block: every key that signed
// a committed transaction (a reward transaction aside: the producer's, not
// a user's) gets one more block.
type perKeyPart struct {
	signed []keys.PublicKey // in order of first signature
	seen   map[keys.PublicKey]bool
}

func (p *perKeyPart) admit(txs []*phases.Tx) []error { return make([]error, len(txs)) }

func (p *perKeyPart) apply(r *TxResult) error {
	if !r.Outcome.Committed() || phases.IsReward(r.Tx) {
		return nil
	}
	for _, s := range r.Tx.Signers {
		if !p.seen[s] {
			p.seen[s] = true
			p.signed = append(p.signed, s)
		}
	}
	return nil
}

func (p *perKeyPart) finish(*chain.Block) {}

func (p *perKeyPart) write(w kv.Store, _ *Execution) error {
	for _, s := range p.signed {
		n, err := blocksSignedBy(w, s)
		if err != nil {
			return err
		}
		if err := w.Set(perKeyKey(s), u64(n+1)); err != nil {
			return err
		}
	}
	return nil
}
