// Package release is a keyholder's share release: it follows the encrypted
// batch an instance has waiting for shares and hands in this keyholder's
// decryption shares, with their proofs, for each batch whose order the
// executor has fixed and signed. The keyholder checks the signed batch
// record before any share leaves: the executor's signature, its instance,
// that it is sealed to this keyholder's key, that the payloads are the ones
// it names; and it keeps a log of what it released, so that it never
// answers two different batches under one number nor a second executor
// (docs/decisions/134). The instance is reached through a Node: the node's
// API (API) or, in tests, anything that serves the same two calls.
package release

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// Node is an instance as a keyholder sees it.
type Node interface {
	// Pending returns the batch waiting for keyholder shares, or nil.
	Pending(ctx context.Context) (*Batch, error)
	// SubmitShares hands in one keyholder's share batch (tfhe tag 0x06)
	// for the waiting batch and returns the keyholders whose shares are in.
	SubmitShares(ctx context.Context, raw []byte) ([]int, error)
}

// Batch is a batch waiting for shares, as a node reports it.
type Batch struct {
	Record   []byte   // the executor-signed batch record (chain.EncryptedBatch)
	Payloads [][]byte // the payloads' encodings, in slot order
	Shares   []int    // keyholders whose shares are in
	Needed   int
}

// Keyholder releases one keyholder's shares of one epoch's key.
type Keyholder struct {
	Share    *tfhe.KeyShare
	Instance [32]byte // the instance the key was made for (its DKG session's)
	log      *Log
}

// Open reads keyholder home h's share of epoch e, the instance its DKG
// was for, and the log of what it released.
func Open(h *keyholder.Home, e uint64) (*Keyholder, error) {
	sk, err := h.Share(e)
	if err != nil {
		return nil, err
	}
	t, err := h.Transcript(e)
	if err != nil {
		return nil, err
	}
	if t.Session.ID() != sk.PK.Session {
		return nil, fmt.Errorf("release: epoch %d: the transcript is of another DKG than the share", e)
	}
	l, err := OpenLog(h.EpochDir(e))
	if err != nil {
		return nil, err
	}
	return &Keyholder{Share: sk, Instance: t.Session.Instance, log: l}, nil
}

// State is what a Step found.
type State int

// The states of a Step.
const (
	Idle     State = iota // no batch waits for shares
	Released              // this keyholder's shares went in now
	Already               // its shares were in already
)

// Step is one look at the instance and what came of it.
type Step struct {
	State  State
	Batch  *chain.EncryptedBatch
	Shares []int // keyholders whose shares are in
	Needed int
}

// NotYet lists the keyholders of an n-keyholder key whose shares are not in.
func (s *Step) NotYet(n int) []int {
	var out []int
	for i := 1; i <= n; i++ {
		if !slices.Contains(s.Shares, i) {
			out = append(out, i)
		}
	}
	return out
}

// Step looks at the batch waiting for shares and, when it may, releases
// this keyholder's shares for it. An error is a refusal (the batch is left
// waiting, this keyholder's shares not given) or a failure to reach the
// node; neither changes the log.
func (k *Keyholder) Step(ctx context.Context, node Node) (*Step, error) {
	p, err := node.Pending(ctx)
	if err != nil || p == nil {
		return &Step{State: Idle}, err
	}
	b, err := k.check(p)
	if err != nil {
		return nil, err
	}
	st := &Step{State: Already, Batch: b, Shares: p.Shares, Needed: p.Needed}
	if slices.Contains(p.Shares, k.Share.Index) {
		return st, nil
	}
	// The batch goes into the log before any share leaves: a crash after
	// this leaves a record of a release that may not have happened, never
	// the other way round.
	if err := k.log.Record(b); err != nil {
		return nil, err
	}
	payloads := make([]*tfhe.Payload, len(p.Payloads))
	for i, raw := range p.Payloads {
		if payloads[i], err = tfhe.DecodePayload(raw); err != nil {
			return nil, fmt.Errorf("release: batch %d slot %d: %w", b.Number, i, err)
		}
	}
	sb, err := tfhe.PartDecBatch(ctx, k.Share, payloads)
	if err != nil {
		return nil, fmt.Errorf("release: batch %d: %w", b.Number, err)
	}
	if st.Shares, err = node.SubmitShares(ctx, sb.Encode()); err != nil {
		return nil, fmt.Errorf("release: batch %d: %w", b.Number, err)
	}
	st.State = Released
	return st, nil
}

// check verifies a waiting batch before any share is made for it.
func (k *Keyholder) check(p *Batch) (*chain.EncryptedBatch, error) {
	b, err := chain.DecodeEncryptedBatch(p.Record)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("release: batch %d: %s", b.Number, fmt.Sprintf(format, args...))
	}
	if err := b.Verify(); err != nil {
		return nil, refuse("%v", err)
	}
	if b.Instance != k.Instance {
		return nil, refuse("of instance %x, this keyholder's key is for instance %x", b.Instance[:8], k.Instance[:8])
	}
	if id := k.Share.PK.ID(); b.Key != id {
		return nil, refuse("sealed to key %x, this keyholder's share is of key %x (another epoch's keyholders must answer)", b.Key[:8], id[:8])
	}
	if len(p.Payloads) != len(b.PayloadIDs) {
		return nil, refuse("%d payloads for %d slots", len(p.Payloads), len(b.PayloadIDs))
	}
	for i, raw := range p.Payloads {
		if sha256.Sum256(raw) != b.PayloadIDs[i] {
			return nil, refuse("slot %d: the payload is not the one the record names", i)
		}
	}
	if err := k.log.Check(b); err != nil {
		return nil, refuse("%v", err)
	}
	return b, nil
}
