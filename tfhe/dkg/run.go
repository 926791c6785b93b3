package dkg

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/fractalvm/fractal/internal/workers"
	"github.com/fractalvm/fractal/keys"
)

// Link carries the envelopes of Run between its parties: Carry is called
// once for each envelope that keyholder by passes to keyholder to (its own
// or, in round 3, a deal it passes on) and returns what arrives (e, another
// envelope, or nil when it is lost). Tests use it to play a keyholder that
// misbehaves or a network that loses messages.
type Link interface {
	Carry(by, to int, e *Envelope) *Envelope
}

// Config describes a DKG run in one process.
type Config struct {
	Instance [32]byte
	Epoch    uint64
	Attempt  uint32
	N, K     int
	// Keys are the keyholders' Fractal keys (index 0 is keyholder 1); nil
	// draws fresh ones. Tests pass them to sign as a misbehaving keyholder.
	Keys []keys.PrivateKey
	// Link carries every envelope; nil is a network that loses nothing.
	Link Link
	// Progress, if set, is called after each keyholder's step (four each).
	Progress func(done, total int)
}

// Result is a DKG run in one process: the outcome most keyholders reached,
// and the shares of all of them.
type Result struct {
	*Outcome
	Shares []Share // sorted by index
	// Refused lists the envelopes keyholders refused on arrival, one line
	// each (they prove nothing and are not in the transcript).
	Refused []string
}

// Run is the DKG among n parties in this process, over an in-memory
// transport whose rounds end when every message has been carried: the
// whole protocol with no network, its messages passing through cfg.Link.
// Whoever calls it holds every share, so outside tests it is only the
// labelled development dealer. Once ctx is done no further step starts and
// Run returns ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	ks := cfg.Keys
	if ks == nil {
		if cfg.N < 2 || cfg.N > MaxKeyholders {
			return nil, fmt.Errorf("dkg: n = %d, want 2..%d", cfg.N, MaxKeyholders)
		}
		for range cfg.N {
			k, err := keys.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			ks = append(ks, k)
		}
	}
	if len(ks) != cfg.N {
		return nil, fmt.Errorf("dkg: %d keys for %d keyholders", len(ks), cfg.N)
	}
	pubs := make([]keys.PublicKey, len(ks))
	for i, k := range ks {
		pubs[i] = k.Public()
	}
	s, err := NewSession(Session{Instance: cfg.Instance, Epoch: cfg.Epoch, Attempt: cfg.Attempt, K: cfg.K, Keys: pubs})
	if err != nil {
		return nil, err
	}
	n := s.N()
	ps := make([]*Party, n)
	for i, k := range ks {
		if ps[i], err = NewParty(s, k); err != nil {
			return nil, err
		}
	}
	res := &Result{}
	var mu sync.Mutex
	steps := 0
	step := func() {
		mu.Lock()
		defer mu.Unlock()
		steps++
		if cfg.Progress != nil {
			cfg.Progress(steps, 4*n)
		}
	}
	out := make([][]*Envelope, n)
	err = workers.Each(ctx, n, func(i int) error {
		e, err := ps[i].Start()
		out[i] = []*Envelope{e}
		step()
		return err
	})
	for r := KindDeal; r <= KindConfirmation && err == nil; r++ {
		// Deliver the round: each recipient, on its own goroutine, takes
		// every other keyholder's envelopes.
		err = workers.Each(ctx, n, func(to int) error {
			for by, es := range out {
				for _, e := range es {
					if by == to {
						continue
					}
					if cfg.Link != nil {
						if e = cfg.Link.Carry(by+1, to+1, e); e == nil {
							continue
						}
					}
					if _, _, err := ps[to].Receive(e.Encode()); err != nil {
						mu.Lock()
						res.Refused = append(res.Refused, fmt.Sprintf("keyholder %d: %v", to+1, err))
						mu.Unlock()
					}
				}
			}
			return nil
		})
		if err != nil {
			break
		}
		err = workers.Each(ctx, n, func(i int) error {
			var err error
			out[i], err = ps[i].Next()
			if r < KindConfirmation {
				step()
			}
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("dkg: %w", err)
	}
	sort.Strings(res.Refused)
	return res, res.collect(ps)
}

// collect takes the outcome the most keyholders reached (the lowest hash
// among equals) and the shares of those that reached it; a holder that did
// not is listed as left out.
func (res *Result) collect(ps []*Party) error {
	outs := make([]*Outcome, len(ps))
	errs := make([]error, len(ps))
	count := map[[32]byte]int{}
	var best [32]byte
	for i, p := range ps {
		outs[i], errs[i] = p.Outcome()
		if errs[i] != nil {
			continue
		}
		h := outs[i].Hash
		count[h]++
		if c := count[h]; c > count[best] || (c == count[best] && bytes.Compare(h[:], best[:]) < 0) {
			best = h
		}
	}
	if count[best] == 0 {
		return errs[0]
	}
	for i, o := range outs {
		if errs[i] == nil && o.Hash == best {
			if res.Outcome == nil {
				c := *o
				c.Share, c.Faults = nil, slices.Clone(o.Faults)
				res.Outcome = &c
			}
			res.Shares = append(res.Shares, *o.Share)
		}
	}
	for i := range ps {
		if contains(res.Holders, i+1) && (errs[i] != nil || outs[i].Hash != best) {
			why := "reached another transcript (it missed messages)"
			if errs[i] != nil {
				why = errs[i].Error()
			}
			res.Faults = append(res.Faults, Fault{i + 1, "left out: " + why})
		}
	}
	sort.SliceStable(res.Faults, func(a, b int) bool { return res.Faults[a].Keyholder < res.Faults[b].Keyholder })
	if len(res.Shares) < res.Session.K {
		return fmt.Errorf("dkg: failed: %d keyholders hold a share of one key, need %d; %s", len(res.Shares), res.Session.K, faultList(res.Faults))
	}
	return nil
}
