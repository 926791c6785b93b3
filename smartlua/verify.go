package smartlua

import (
	"bytes"
	"fmt"
	"io"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/vp"
)

// ForkError reports a second, different successor of a known state.
type ForkError struct {
	Prev          Hash
	First, Second *Record
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("smartlua: fork: state %s has two successors, %s and %s", e.Prev, e.First.Hash, e.Second.Hash)
}

// Verifier checks records and remembers the states it has trusted and the
// successor it accepted for each, so a chain is checked once and a fork is
// caught whichever branch comes second.
type Verifier struct {
	pool    *vp.Pool
	load    func(Hash) (*Record, error)
	trusted map[Hash][]byte // state bytes of verified records
	succ    map[Hash]*Record
}

// NewVerifier returns a Verifier that reads records with load (usually
// Store.Get).
func NewVerifier(pool *vp.Pool, load func(Hash) (*Record, error)) *Verifier {
	return &Verifier{pool: pool, load: load, trusted: map[Hash][]byte{}, succ: map[Hash]*Record{}}
}

// Trusted returns the verified serialized state named h.
func (v *Verifier) Trusted(h Hash) ([]byte, bool) {
	st, ok := v.trusted[h]
	return st, ok
}

// Verify checks the record named h and its ancestry back to an initial state
// or a state already trusted.
func (v *Verifier) Verify(h Hash) error {
	var chain []*Record
	seen := map[Hash]bool{}
	for cur := h; ; {
		if _, ok := v.trusted[cur]; ok {
			break
		}
		if seen[cur] {
			return fmt.Errorf("smartlua: state %s: ancestry loops", cur)
		}
		seen[cur] = true
		rec, err := v.load(cur)
		if err != nil {
			return err
		}
		chain = append(chain, rec)
		if rec.Transition.Prev == nil {
			break
		}
		cur = *rec.Transition.Prev
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if err := v.Check(chain[i]); err != nil {
			return err
		}
	}
	return nil
}

// Check verifies one record whose previous state is already trusted:
// signatures, re-execution to the same state and hash, and no fork.
func (v *Verifier) Check(rec *Record) error {
	_, err := v.check(rec, Limits().Gas)
	return err
}

// check is Check with the re-execution's gas capped at gas; it returns the
// gas the re-execution used (0 when it did not run).
func (v *Verifier) check(rec *Record, gas uint64) (uint64, error) {
	t := rec.Transition
	fail := func(format string, args ...any) error {
		return fmt.Errorf("smartlua: state %s: %s", rec.Hash, fmt.Sprintf(format, args...))
	}
	if len(rec.Sigs) != len(t.Keys) {
		return 0, fail("%d signatures for %d keys", len(rec.Sigs), len(t.Keys))
	}
	for i, k := range t.Keys {
		if err := keys.Verify(k, rec.Hash[:], rec.Sigs[i]); err != nil {
			return 0, fail("signature %d (key %s): %v", i+1, k, err)
		}
	}
	var prev []byte
	if t.Prev != nil {
		var ok bool
		if prev, ok = v.trusted[*t.Prev]; !ok {
			return 0, fail("previous state %s is not verified", *t.Prev)
		}
		if first := v.succ[*t.Prev]; first != nil && first.Hash != rec.Hash {
			return 0, &ForkError{Prev: *t.Prev, First: first, Second: rec}
		}
	}
	out, err := execute(v.pool, t, prev, gas)
	if err != nil {
		var used uint64
		if out != nil {
			used = out.Result.GasUsed
		}
		return used, fmt.Errorf("smartlua: state %s: re-execution failed: %w", rec.Hash, err)
	}
	used := out.Result.GasUsed
	if !bytes.Equal(out.State, rec.State) {
		return used, fail("stored state differs from re-execution")
	}
	if out.Hash != rec.Hash {
		return used, fail("re-execution gives hash %s", out.Hash)
	}
	v.trust(rec)
	return used, nil
}

func (v *Verifier) trust(rec *Record) {
	v.trusted[rec.Hash] = rec.State
	if p := rec.Transition.Prev; p != nil {
		v.succ[*p] = rec
	}
}

// Sign makes the signatures of a state hash by each of signers, in order.
func Sign(rand io.Reader, h Hash, signers []keys.PrivateKey) ([][]byte, error) {
	sigs := make([][]byte, len(signers))
	for i, k := range signers {
		s, err := k.Sign(rand, h[:])
		if err != nil {
			return nil, fmt.Errorf("smartlua: sign: %w", err)
		}
		sigs[i] = s
	}
	return sigs, nil
}

// Apply makes, signs and stores a new state: an initial one when prev is
// nil, otherwise a successor of the verified state *prev. On any failure
// (the fragment errors, a fork) nothing is stored.
func Apply(store *Store, v *Verifier, rand io.Reader, prev *Hash, fragment []byte, signers []keys.PrivateKey) (*Record, vp.Result, error) {
	t := &Transition{Version: Version, Prev: prev, Fragment: fragment}
	for _, k := range signers {
		t.Keys = append(t.Keys, k.Public())
	}
	var prevState []byte
	if prev != nil {
		if err := v.Verify(*prev); err != nil {
			return nil, vp.Result{}, err
		}
		prevState, _ = v.Trusted(*prev)
	}
	out, err := Execute(v.pool, t, prevState)
	if err != nil {
		var res vp.Result
		if out != nil {
			res = out.Result
		}
		return nil, res, err
	}
	sigs, err := Sign(rand, out.Hash, signers)
	if err != nil {
		return nil, out.Result, err
	}
	rec := &Record{Hash: out.Hash, Transition: t, State: out.State, Sigs: sigs}
	if prev != nil {
		if first := v.succ[*prev]; first != nil && first.Hash != rec.Hash {
			return nil, out.Result, &ForkError{Prev: *prev, First: first, Second: rec}
		}
	}
	if err := store.Put(rec); err != nil {
		return nil, out.Result, err
	}
	v.trust(rec) // made here from a verified state: nothing to re-check
	return rec, out.Result, nil
}

// VerifyStore verifies every record in store and the successor index,
// returning the first failure. progress, when not nil, is called after
// each record with the records verified and their number.
func VerifyStore(store *Store, v *Verifier, progress func(done, total int)) (int, error) {
	hs, err := store.Hashes()
	if err != nil {
		return 0, err
	}
	for i, h := range hs {
		if err := v.Verify(h); err != nil {
			return 0, err
		}
		if progress != nil {
			progress(i+1, len(hs))
		}
	}
	for _, h := range hs {
		rec, err := store.Get(h)
		if err != nil {
			return 0, err
		}
		if rec.Transition.Prev == nil {
			continue
		}
		n, ok, err := store.Next(*rec.Transition.Prev)
		if err != nil {
			return 0, err
		}
		if !ok || n != h {
			return 0, fmt.Errorf("smartlua: successor index of %s does not name %s", *rec.Transition.Prev, h)
		}
	}
	return len(hs), nil
}
