package keyholder

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/dkg/direct"
)

// DKGConfig is one keyholder's part in a DKG between processes.
type DKGConfig struct {
	Instance [32]byte // the instance the key is for
	Epoch    uint64
	Attempt  uint32
	N, K     int // n must be the number of keyholders in Peers (a check against typos)
	Peers    *Peers
	// RoundTimeout is how long each round waits for the others; the first
	// also waits for them to start.
	RoundTimeout time.Duration
	// Log gets a line per event (rounds, who did not answer, refusals).
	Log func(string)
	// Listener, when set, is served instead of a new listener at this
	// keyholder's address in Peers (tests bind port 0 first).
	Listener net.Listener
}

// DKGResult is what a keyholder's DKG wrote into its home.
type DKGResult struct {
	Self    int
	Key     *tfhe.PublicKey
	Outcome *dkg.Outcome
	Dir     string // the epoch folder written
}

// Session returns the DKG session c describes.
func (c *DKGConfig) Session() (*dkg.Session, error) {
	if c.N != len(c.Peers.Keys) {
		return nil, fmt.Errorf("keyholder: n = %d, but the peers file lists %d keyholders", c.N, len(c.Peers.Keys))
	}
	return dkg.NewSession(dkg.Session{Instance: c.Instance, Epoch: c.Epoch, Attempt: c.Attempt, K: c.K, Keys: c.Peers.Keys})
}

// RunDKG runs this keyholder's party of the DKG against the other
// keyholders' endpoints (tfhe/dkg/direct), serving its own at its address
// in the peers file, and writes its share, the key and the transcript into
// HOME/epoch-E; nothing is written when it ends without a share. It refuses
// to start when the epoch's folder exists or this keyholder's key is not in
// the peers file.
func (h *Home) RunDKG(ctx context.Context, c DKGConfig) (*DKGResult, error) {
	s, err := c.Session()
	if err != nil {
		return nil, err
	}
	if err := CheckNew(h.EpochDir(c.Epoch)); err != nil {
		return nil, fmt.Errorf("keyholder: epoch %d: %w (this keyholder already holds a share for it)", c.Epoch, err)
	}
	self := s.Index(h.Key.Public())
	if self == 0 {
		return nil, fmt.Errorf("keyholder: this keyholder's key %s is not in the peers file", h.Key.Public())
	}
	log := c.Log
	if log == nil {
		log = func(string) {}
	}
	ln := c.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", c.Peers.Addrs[self-1]); err != nil {
			return nil, fmt.Errorf("keyholder: DKG endpoint: %w", err)
		}
	}
	t, err := direct.New(s, self, c.Peers.Addrs, ln, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer t.Close()
	p, err := dkg.NewParty(s, h.Key)
	if err != nil {
		return nil, err
	}
	o, err := dkg.Drive(ctx, p, t, dkg.DriveOptions{RoundTimeout: c.RoundTimeout, Log: log,
		Name: func(i int) string { return fmt.Sprintf("keyholder %d (%s)", i, c.Peers.Addrs[i-1]) }})
	// The others may still wait for this keyholder's last messages.
	fctx, cancel := context.WithTimeout(ctx, c.RoundTimeout)
	defer cancel()
	if owed := t.Flush(fctx); owed != nil {
		log(fmt.Sprintf("gave up passing our last messages to %v", owed))
	}
	if err != nil {
		return nil, err
	}
	pk, err := tfhe.KeyFromDKG(tfhe.OriginDKG, o)
	if err != nil {
		return nil, err
	}
	share, err := tfhe.ShareFromDKG(pk, *o.Share)
	if err != nil {
		return nil, err
	}
	if err := h.WriteEpoch(c.Epoch, pk, share, o.Transcript); err != nil {
		return nil, fmt.Errorf("keyholder: %w", err)
	}
	return &DKGResult{Self: self, Key: pk, Outcome: o, Dir: h.EpochDir(c.Epoch)}, nil
}
