package shielded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits"
	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/zk"
)

// Prefix is the first byte of every storage key the pool owns in the
// instance's store.
const Prefix = 'Z'

var (
	keyTree    = []byte{Prefix, 'T'} // the commitment tree (merkle.Tree encoding, no witnesses)
	keyAnchors = []byte{Prefix, 'A'} // the recent roots: u32 n, n × 32 bytes, oldest first
)

// StorageKeys returns the keys and key prefixes the pool owns, each under
// Prefix: the tree, the anchors, and the nullifiers' prefix.
func StorageKeys() [][]byte { return [][]byte{keyTree, keyAnchors, {Prefix, 'N'}} }

// nullifierKey is Z N nf: the u64 height of the block that spent nf.
func nullifierKey(nf fr.Element) []byte {
	b := nf.Bytes()
	return append([]byte{Prefix, 'N'}, b[:]...)
}

// DefaultWindow is how many recent commitment-tree roots the instance accepts
// as anchors: the roots after the last DefaultWindow blocks that changed the
// tree (and the empty tree's root until the window fills).
const DefaultWindow = 100

// MaxFee is the largest fee accepted. The instance charges no fee for
// shielded transactions, so a fee would leave the pool without going
// anywhere; the circuit's Fee input is kept for a later fee market.
const MaxFee = 0

// Pool checks and commits shielded transactions for one instance. Its
// verifying key (only that: the proving key is the wallet's) is loaded from
// the instance's key cache on first use.
type Pool struct {
	cache  zk.Cache
	window int

	once sync.Once
	vk   *zk.VerifyingKey
	err  error
}

// New returns the pool of an instance whose circuit keys are cached in
// zkDir, accepting the last window roots as anchors.
func New(zkDir string, window int) *Pool {
	return &Pool{cache: zk.Cache{Dir: zkDir}, window: max(window, 1)}
}

var compiled = sync.OnceValues(func() (*zk.Compiled, error) {
	return zk.CompileNamed(circuits.TransferName, &circuits.Transfer{})
})

// Compiled returns the transfer circuit, compiled once per process.
func Compiled() (*zk.Compiled, error) { return compiled() }

func (p *Pool) verifyingKey() (*zk.VerifyingKey, error) {
	p.once.Do(func() {
		cc, err := Compiled()
		if err != nil {
			p.err = err
			return
		}
		p.vk, p.err = p.cache.LoadVerifyingKey(cc)
	})
	return p.vk, p.err
}

// Block is the pool's part in one block, the instance's per-block component
// shape (begin, admit, apply, finish): Begin reads the pool's state as the
// block starts, Admit checks the block's shielded transactions before they
// run, Apply takes each one accepted in phases 1–3, Root is the
// commitment-tree root for the block's header, and Write stores what the
// block changed. Nothing is written before Write.
type Block struct {
	pool     *Pool
	view     kv.Reader
	tree     *merkle.Tree
	anchors  []fr.Element
	seen     map[fr.Element]bool
	admitted map[notes.Hash]*Bundle
	spent    []fr.Element // nullifiers of the applied transactions, in order
	changed  bool
}

// Begin reads the pool's state as of r, the committed state the block runs
// against.
func (p *Pool) Begin(r kv.Reader) (*Block, error) {
	b := &Block{pool: p, view: r, tree: merkle.New(), seen: map[fr.Element]bool{}, admitted: map[notes.Hash]*Bundle{}}
	raw, err := get(r, keyTree)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		if err := b.tree.UnmarshalBinary(raw); err != nil {
			return nil, fmt.Errorf("shielded: stored tree: %w", err)
		}
	}
	if raw, err = get(r, keyAnchors); err != nil {
		return nil, err
	}
	if raw == nil {
		b.anchors = []fr.Element{merkle.EmptyRoot()}
	} else if b.anchors, err = decodeAnchors(raw); err != nil {
		return nil, fmt.Errorf("shielded: stored anchors: %w", err)
	}
	return b, nil
}

// get returns the value under key, nil when there is none.
func get(r kv.Reader, key []byte) ([]byte, error) {
	v, _, err := r.Get(key)
	if err != nil {
		return nil, fmt.Errorf("shielded: %w", err)
	}
	return v, nil
}

func encodeAnchors(a []fr.Element) []byte {
	w := enc.NewWriter(4 + 32*len(a))
	w.U32(uint32(len(a)))
	for _, r := range a {
		b := r.Bytes()
		w.Fixed(b[:])
	}
	return w.Bytes()
}

func decodeAnchors(raw []byte) ([]fr.Element, error) {
	r := enc.NewReader(raw)
	n := r.Count(1<<16, "anchors")
	out := make([]fr.Element, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		var e fr.Element
		if err := e.SetBytesCanonical(r.Fixed(32)); r.Err() == nil && err != nil {
			r.Fail(err)
		}
		out = append(out, e)
	}
	return out, r.Finish()
}

// Admit checks the shielded transactions among txs, in order, before they
// run, and returns one error per transaction: nil for a transparent one and
// for a shielded one that may run, otherwise the reason to refuse it. A
// shielded transaction is admitted when its bundle parses, it carries the
// pool's code and names the pool's predicate, its fee is acceptable, its two
// nullifiers differ, its root is a recent anchor, its proof verifies against
// its binding hash (all proofs of the block in one batch), and its nullifiers
// were neither spent before nor by a transaction admitted earlier in this
// block.
func (b *Block) Admit(txs []*phases.Tx) []error {
	errs := make([]error, len(txs))
	var idx []int
	var proofs []zk.Proof
	var vectors []fr.Vector
	bundles := make([]*Bundle, len(txs))
	for i, tx := range txs {
		if !IsShielded(tx) {
			continue
		}
		bundles[i], errs[i] = b.precheck(tx)
		if errs[i] != nil {
			continue
		}
		var p zk.Proof
		if err := p.UnmarshalBinary(bundles[i].Proof[:]); err != nil {
			errs[i] = fmt.Errorf("shielded: proof: %w", err)
			continue
		}
		idx, proofs, vectors = append(idx, i), append(proofs, p), append(vectors, bundles[i].Public.Vector())
	}
	if len(idx) > 0 {
		b.verify(idx, proofs, vectors, errs)
	}
	for _, i := range idx {
		if errs[i] != nil {
			continue
		}
		if errs[i] = b.fresh(bundles[i]); errs[i] == nil {
			for _, nf := range bundles[i].Public.Nullifiers {
				b.seen[nf] = true
			}
			b.admitted[txs[i].ID()] = bundles[i]
		}
	}
	return errs
}

// precheck is every check that needs neither the proof nor the nullifier
// set.
func (b *Block) precheck(tx *phases.Tx) (*Bundle, error) {
	bd, err := Parse(tx)
	if err != nil {
		return nil, err
	}
	pub := &bd.Public
	switch {
	case bd.Pool != PoolOwner:
		return nil, fmt.Errorf("shielded: header names pool %x, this instance's pool predicate is %x", bd.Pool[:8], PoolOwner[:8])
	case !bytes.Equal(tx.Lookup, Lookup) || !bytes.Equal(tx.Calculation, Calculation):
		return nil, errors.New("shielded: lookup and calculation code must be the pool's (shielded/lua)")
	case pub.Fee > MaxFee:
		return nil, fmt.Errorf("shielded: fee %d not accepted (this instance takes at most %d)", pub.Fee, MaxFee)
	case pub.Nullifiers[0] == pub.Nullifiers[1]:
		return nil, errors.New("shielded: double spend: both inputs have the same nullifier")
	case !b.isAnchor(pub.Root):
		return nil, fmt.Errorf("shielded: root %x is not one of the %d recent commitment-tree roots (wrong or stale anchor)", rootBytes(pub.Root)[:8], len(b.anchors))
	}
	h, err := BindingHash(tx)
	if err != nil {
		return nil, err
	}
	if pub.Binding != circuits.BindingOf(h) {
		return nil, errors.New("shielded: binding is not this transaction's hash (proof made for another transaction)")
	}
	return bd, nil
}

func rootBytes(e fr.Element) []byte { b := e.Bytes(); return b[:] }

func (b *Block) isAnchor(root fr.Element) bool {
	for _, a := range b.anchors {
		if a == root {
			return true
		}
	}
	return false
}

// verify checks the proofs at idx in one batch, and marks the bad ones.
func (b *Block) verify(idx []int, proofs []zk.Proof, vectors []fr.Vector, errs []error) {
	vk, err := b.pool.verifyingKey()
	if err != nil {
		for _, i := range idx {
			errs[i] = fmt.Errorf("shielded: this instance has no usable circuit keys: %w", err)
		}
		return
	}
	err = zk.BatchVerify(vk, proofs, vectors)
	var be *zk.BatchError
	switch {
	case err == nil:
	case errors.As(err, &be):
		for _, k := range be.Bad {
			errs[idx[k]] = errors.New("shielded: proof does not verify")
		}
	default:
		for _, i := range idx {
			errs[i] = fmt.Errorf("shielded: %w", err)
		}
	}
}

// fresh refuses nullifiers spent before or admitted earlier in the block.
func (b *Block) fresh(bd *Bundle) error {
	for i, nf := range bd.Public.Nullifiers {
		if b.seen[nf] {
			return fmt.Errorf("shielded: double spend: nullifier %d is spent by an earlier transaction in this block", i+1)
		}
		raw, err := get(b.view, nullifierKey(nf))
		if err != nil {
			return err
		}
		if raw != nil {
			return fmt.Errorf("shielded: double spend: nullifier %d was spent in block %d", i+1, binary.BigEndian.Uint64(raw))
		}
	}
	return nil
}

// Apply takes the effects of tx, accepted in phases 1–3: its nullifiers are
// spent and its commitments appended to the tree, in memory. It does
// nothing for a transaction Admit did not admit as shielded.
func (b *Block) Apply(tx *phases.Tx) error {
	bd := b.admitted[tx.ID()]
	if bd == nil {
		return nil
	}
	b.spent = append(b.spent, bd.Public.Nullifiers[:]...)
	for _, cm := range bd.Public.Commitments {
		if _, err := b.tree.Append(cm, false); err != nil {
			return fmt.Errorf("shielded: %w", err)
		}
	}
	b.changed = true
	return nil
}

// Root is the commitment-tree root after the applied transactions: the
// block header's commitment root.
func (b *Block) Root() [32]byte {
	root := b.tree.Root()
	return root.Bytes()
}

// Write stores what the applied transactions changed, as the block at
// height commits: each spent nullifier with the height, and, when the tree
// changed, the tree and its new root as the newest anchor.
func (b *Block) Write(w kv.Writer, height uint64) error {
	for _, nf := range b.spent {
		if err := w.Set(nullifierKey(nf), binary.BigEndian.AppendUint64(nil, height)); err != nil {
			return err
		}
	}
	if !b.changed {
		return nil
	}
	anchors := append(b.anchors, b.tree.Root())
	if n := len(anchors) - b.pool.window; n > 0 {
		anchors = anchors[n:]
	}
	raw, err := b.tree.MarshalBinary()
	if err != nil {
		return err
	}
	if err := w.Set(keyTree, raw); err != nil {
		return err
	}
	return w.Set(keyAnchors, encodeAnchors(anchors))
}
