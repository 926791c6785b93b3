package dkg

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// MaxKeyholders bounds n.
const MaxKeyholders = 256

const sessionDomain = "fractal/tfhe/dkg-session/v1\x00"

// Session names one run of the DKG: the instance the key is for, the
// epoch, the attempt (a run that failed is repeated with the next one, so
// that none of its messages can be replayed into the new run), the
// threshold k, and the keyholders in order. Keyholder i (1-based) is
// Keys[i-1]: it signs its messages with that Fractal key, its shares are
// encrypted to it, and its share of the key is the joint polynomial's value
// at i. Every message carries the session's ID, so a message from another
// instance, epoch, attempt, keyholder list or threshold is refused.
type Session struct {
	Instance [32]byte
	Epoch    uint64
	Attempt  uint32
	K        int
	Keys     []keys.PublicKey

	id  [32]byte
	pts []*edwards25519.Point // the keys' Edwards points (deal encryption)
}

// NewSession checks spec and returns the session with its ID: 2 ≤ k ≤ n ≤
// MaxKeyholders, distinct keys, each a valid Fractal public key whose
// Edwards point lies in the prime-order subgroup (a point with a small-order
// component would let a dealer learn a recipient's secret modulo 8).
func NewSession(spec Session) (*Session, error) {
	n, k := len(spec.Keys), spec.K
	if n < 2 || n > MaxKeyholders {
		return nil, fmt.Errorf("dkg: n = %d, want 2..%d", n, MaxKeyholders)
	}
	if k < 2 || k > n {
		return nil, fmt.Errorf("dkg: k = %d, want 2..n (with k = 1 any one keyholder decrypts alone)", k)
	}
	s := &Session{Instance: spec.Instance, Epoch: spec.Epoch, Attempt: spec.Attempt, K: k, Keys: slices.Clone(spec.Keys)}
	seen := map[keys.PublicKey]int{}
	for i, pub := range s.Keys {
		if j, ok := seen[pub]; ok {
			return nil, fmt.Errorf("dkg: keyholders %d and %d have the same key %s", j, i+1, pub)
		}
		seen[pub] = i + 1
		p, err := pub.EdwardsPoint()
		if err == nil && !group.InSubgroup(p) {
			err = group.ErrSmallOrder
		}
		if err != nil {
			return nil, fmt.Errorf("dkg: key of keyholder %d (%s): %w", i+1, pub, err)
		}
		s.pts = append(s.pts, p)
	}
	w := enc.NewWriter(64 + 32*n)
	w.Fixed([]byte(sessionDomain))
	s.write(w)
	s.id = sha256.Sum256(w.Bytes())
	return s, nil
}

// N is the number of keyholders.
func (s *Session) N() int { return len(s.Keys) }

// ID is SHA-256 over a domain string and the session's encoding.
func (s *Session) ID() [32]byte { return s.id }

// Index returns pub's keyholder number, or 0 when pub takes no part.
func (s *Session) Index(pub keys.PublicKey) int {
	for i, k := range s.Keys {
		if k == pub {
			return i + 1
		}
	}
	return 0
}

// write appends instance ‖ u64 epoch ‖ u32 attempt ‖ u32 k ‖ u32 n ‖
// n × key.
func (s *Session) write(w *enc.Writer) {
	w.Fixed(s.Instance[:])
	w.U64(s.Epoch)
	w.U32(s.Attempt)
	w.U32(uint32(s.K))
	w.U32(uint32(len(s.Keys)))
	for _, k := range s.Keys {
		w.Fixed(k[:])
	}
}

// readSession reads what write wrote and checks it with NewSession.
func readSession(r *enc.Reader) (*Session, error) {
	var spec Session
	r.Into(spec.Instance[:])
	spec.Epoch = r.U64()
	spec.Attempt = r.U32()
	spec.K = int(r.U32())
	spec.Keys = make([]keys.PublicKey, r.Count(MaxKeyholders, "keyholders"))
	for i := range spec.Keys {
		r.Into(spec.Keys[i][:])
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return NewSession(spec)
}

var errSession = errors.New("envelope from another session")
