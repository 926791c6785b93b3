package wallet

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/sync/errgroup"

	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// SyncReport sums up one sync.
type SyncReport struct {
	From, To uint64 // blocks scanned, inclusive; From > To when none were new
	Found    int    // notes found
	Spent    int    // own notes seen spent
}

// saveEvery is how many blocks a sync scans between saves, so an
// interrupted sync resumes near where it stopped.
const saveEvery = 256

// Chain is what a wallet reads from an instance to sync: its ID, its
// blocks and their transactions. An open *fractal.Instance is one; a node's
// client can be another. Sync checks what it is given (signatures, links,
// the commitment root), so the source need not be trusted.
type Chain interface {
	ID() [32]byte
	Head() (*chain.Block, error)
	Block(height uint64) (*chain.Block, error)
	// Transactions returns b's transactions in block order.
	Transactions(b *chain.Block) ([]*phases.Tx, error)
}

// CompactChain is a Chain that serves compact blocks itself (a node's
// client, in one stream); Sync reads those instead of whole blocks.
type CompactChain interface {
	Chain
	// CompactBlocks calls fn with the compact blocks from..to in order,
	// and stops at fn's first error, which it returns.
	CompactBlocks(from, to uint64, fn func(*CompactBlock) error) error
}

// A CertifiedChain is a validator set's chain served by a source the
// wallet does not trust (a node's client given the set's trust entry,
// decision 166). Its blocks carry no signature: a block is believed once
// the certificate of a commit by the trusted set covers it, directly or
// through the hash links of the blocks after it.
type CertifiedChain interface {
	Chain
	// Trusted is the validator set that certifies the instance's blocks:
	// the user's trust entry's, never the source's word. ID is the entry's
	// instance.
	Trusted() *certify.ValidatorSet
	// Certificate returns the certificate of the block at height
	// (docs/formats/validator-set.md), which may wait for the next
	// consensus block.
	Certificate(height uint64) ([]byte, error)
}

// Sync scans the instance's blocks after the last one the wallet saw, in
// order: it checks each block's signature and link, appends every shielded
// output's commitment to the wallet's tree (tracking the witnesses of the
// notes it can decrypt), marks its notes whose nullifiers appear as spent,
// and checks its tree's root against the block's commitment root. A block
// is applied whole or not at all: on an error the state is the one after
// the previous block. It saves the state every saveEvery blocks and at the
// end. progress, when not nil, is called after each block.
//
// From a CertifiedChain, each save is preceded by the certificate of the
// last block applied, checked against the trusted set: the links from the
// last save to that block make it cover every block in between. When it
// does not check (or any block is refused), the state goes back to the last
// save, so the wallet never holds a root no commit of the set covers.
func (w *Wallet) Sync(in Chain, progress func(done, total uint64)) (*SyncReport, error) {
	cc, certified := in.(CertifiedChain)
	var saved *State // the state at the last certified save
	if certified {
		saved = w.State.clone()
	}
	rep, err := w.sync(in, progress, func(last *chain.Block) error {
		if certified && last != nil {
			if err := certifyBlock(cc, last); err != nil {
				return err
			}
		}
		if err := w.Save(); err != nil {
			return err
		}
		if certified {
			saved = w.State.clone()
		}
		return nil
	})
	if err != nil && certified {
		w.State = saved
	}
	return rep, err
}

// certifyBlock checks the certificate in gives for b against the trusted
// set.
func certifyBlock(in CertifiedChain, b *chain.Block) error {
	cert, err := in.Certificate(b.Height)
	if err == nil {
		err = in.Trusted().Certify(b, cert)
	}
	if err != nil {
		return fmt.Errorf("wallet: sync: block %d is not certified by the trusted validator set: %w", b.Height, err)
	}
	return nil
}

// sync is Sync; save is called with the last block applied every saveEvery
// blocks and at the end (nil when there was no new block).
func (w *Wallet) sync(in Chain, progress func(done, total uint64), save func(last *chain.Block) error) (*SyncReport, error) {
	st := w.State
	var prev *chain.Block // the last block the wallet accepted
	if st.Next == 0 {
		g, err := in.Block(0)
		if err != nil {
			return nil, fmt.Errorf("wallet: sync: %w", err)
		}
		st.Instance, st.Next, st.Last, prev = in.ID(), 1, g.Hash(), g
	}
	if st.Instance != in.ID() {
		return nil, fmt.Errorf("wallet: sync: the wallet follows instance %x, not %x", st.Instance[:8], in.ID())
	}
	hb, err := in.Head()
	if err != nil {
		return nil, fmt.Errorf("wallet: sync: %w", err)
	}
	head := hb.Height
	rep := &SyncReport{From: st.Next, To: head}
	if st.Next > head {
		return rep, w.Save()
	}
	if prev == nil {
		if prev, err = lastAccepted(in, st); err != nil {
			return rep, err
		}
	}
	exec := prev.Executor // what every block must name, as verify requires
	var last *chain.Block // the last block applied
	blocks := wholeBlocks(in)
	if cc, ok := in.(CompactChain); ok {
		blocks = cc.CompactBlocks
	}
	nfs := w.nullifiers()
	// Three stages: the source (on its own goroutine) lists each block's
	// outputs and queues them in chunks; the triers, one per core, try
	// every queued output with the wallet's key, whatever block it is from,
	// so no core waits for the slowest output of a block; this goroutine
	// applies the blocks in order, each once all its outputs are tried.
	// Each output's result has its own slot, so what is applied does not
	// depend on which trier took which chunk.
	ch := make(chan *pendingBlock, pipelineDepth)
	chunks := make(chan pendingChunk, pipelineDepth*4)
	stop := make(chan struct{})
	var triers errgroup.Group
	for range w.workers() {
		triers.Go(func() error {
			for c := range chunks {
				w.tryAll(c.outs)
				c.tried.Done()
			}
			return nil
		})
	}
	var srcErr error
	go func() {
		defer close(ch)
		defer close(chunks)
		srcErr = blocks(st.Next, head, func(cb *CompactBlock) error {
			p := &pendingBlock{cb: cb}
			var err error
			if p.outs, err = outputs(cb); err != nil {
				return fmt.Errorf("block %d: %w", cb.Header.Height, err)
			}
			for lo, hi := 0, 0; lo < len(p.outs); lo = hi {
				// A chunk ends with a transaction: its outputs may share
				// one ephemeral key, hence one X25519.
				for hi = min(lo+chunkOutputs, len(p.outs)); hi < len(p.outs) && p.outs[hi].tx == p.outs[hi-1].tx; hi++ {
				}
				p.tried.Add(1)
				select {
				case chunks <- pendingChunk{p.outs[lo:hi], &p.tried}:
				case <-stop:
					return errStopped
				}
			}
			select {
			case ch <- p:
				return nil
			case <-stop:
				return errStopped
			}
		})
	}()
	var applyErr error
	for p := range ch {
		if applyErr != nil {
			continue // drain until the source stops
		}
		p.tried.Wait()
		if applyErr = w.scan(in, exec, p.cb, p.outs, nfs, rep); applyErr != nil {
			close(stop)
			continue
		}
		last = p.cb.Header
		h := last.Height
		if (h-rep.From+1)%saveEvery == 0 {
			if applyErr = save(last); applyErr != nil {
				close(stop)
				continue
			}
		}
		if progress != nil {
			progress(h-rep.From+1, head-rep.From+1)
		}
	}
	triers.Wait()
	switch {
	case applyErr != nil:
		return rep, applyErr
	case srcErr != nil:
		return rep, fmt.Errorf("wallet: sync: %w", srcErr)
	}
	return rep, save(last)
}

// wholeBlocks serves compact blocks made from in's whole blocks, checking
// that the transactions given are the ones each block lists.
func wholeBlocks(in Chain) func(from, to uint64, fn func(*CompactBlock) error) error {
	return func(from, to uint64, fn func(*CompactBlock) error) error {
		for h := from; h <= to; h++ {
			b, err := in.Block(h)
			if err != nil {
				return err
			}
			txs, err := in.Transactions(b)
			if err != nil {
				return err
			}
			if len(txs) != len(b.TxIDs) {
				return fmt.Errorf("block %d: %d transactions given for a block of %d", h, len(txs), len(b.TxIDs))
			}
			for i, tx := range txs {
				if tx.ID() != b.TxIDs[i] {
					return fmt.Errorf("block %d: transaction %d given is not the one the block lists", h, i)
				}
			}
			cb, err := Compact(b, txs)
			if err != nil {
				return fmt.Errorf("block %d: %w", h, err)
			}
			if err := fn(cb); err != nil {
				return err
			}
		}
		return nil
	}
}

// pipelineDepth is how many blocks may wait, their outputs queued or
// tried, to be applied.
const pipelineDepth = 8

// chunkOutputs is about how many outputs a trier takes at once (a block
// of 16 shielded transactions has 32); a chunk ends with a transaction.
const chunkOutputs = 8

// pendingBlock is a block whose outputs are queued to be tried; tried ends
// when every chunk of them is.
type pendingBlock struct {
	cb    *CompactBlock
	outs  []output
	tried sync.WaitGroup
}

// pendingChunk is some consecutive outputs of one pending block.
type pendingChunk struct {
	outs  []output
	tried *sync.WaitGroup
}

// workers is how many triers a sync runs.
func (w *Wallet) workers() int {
	if w.Workers > 0 {
		return w.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// errStopped stops the source once applying failed.
var errStopped = errors.New("stopped")

// lastAccepted reads again the last block the wallet accepted (st.Next−1),
// which must hash to st.Last: the executor it names is the one every
// block after it must name.
func lastAccepted(in Chain, st *State) (*chain.Block, error) {
	b, err := in.Block(st.Next - 1)
	if err != nil {
		return nil, fmt.Errorf("wallet: sync: %w", err)
	}
	if b.Hash() != st.Last {
		return nil, fmt.Errorf("wallet: sync: block %d: the source's is not the one this wallet saw (the instance's chain changed)", st.Next-1)
	}
	return b, nil
}

// scan checks and applies one block whose outputs outs are tried
// already; its errors name the block. exec is the executor (or validator
// set) of the instance's blocks.
func (w *Wallet) scan(in Chain, exec [32]byte, cb *CompactBlock, outs []output, nfs map[fr.Element]int, rep *SyncReport) error {
	h := cb.Header.Height
	if h != w.State.Next {
		return fmt.Errorf("wallet: sync: block %d: the source sent height %d", w.State.Next, h)
	}
	if err := checkBlock(in, exec, cb.Header); err != nil {
		return fmt.Errorf("wallet: sync: block %d: %w", h, err)
	}
	if cb.Header.Prev != w.State.Last {
		return fmt.Errorf("wallet: sync: block %d: does not follow the last block this wallet saw (the instance's chain changed)", h)
	}
	if err := w.applyDecrypted(cb, outs, nfs, rep); err != nil {
		return fmt.Errorf("wallet: sync: block %d: %w", h, err)
	}
	return nil
}

// apply applies block b with its committed transactions txs (see
// applyDecrypted).
func (w *Wallet) apply(b *chain.Block, txs []*phases.Tx, nfs map[fr.Element]int, rep *SyncReport) error {
	cb, err := Compact(b, txs)
	if err != nil {
		return err
	}
	outs, err := outputs(cb)
	if err != nil {
		return err
	}
	w.tryAll(outs)
	return w.applyDecrypted(cb, outs, nfs, rep)
}

// outputs lists a block's outputs in block order, not yet tried.
func outputs(cb *CompactBlock) ([]output, error) {
	var outs []output
	for t := range cb.Txs {
		tx := &cb.Txs[t]
		if err := tx.Ciphertexts.Check(len(tx.Commitments)); err != nil {
			return nil, fmt.Errorf("shielded transaction %x: %w", tx.ID, err)
		}
		for j := range tx.Commitments {
			outs = append(outs, output{tx: t, j: j, cm: tx.Commitments[j], ct: &tx.Ciphertexts})
		}
	}
	return outs, nil
}

// applyDecrypted applies one block, whose outputs outs are tried
// already (tryAll), to a copy of the state and replaces the state with the
// copy only when the whole block applied, so an error part-way (a full
// tree, a root that disagrees) leaves no half-applied block for a later
// save to record. nfs maps the nullifier of every owned note to its index
// (see nullifiers); the block's new notes join it only with the block. The
// block's commitments are appended in one batch.
//
// A decrypted note whose nullifier the wallet already knows (the same note
// sent twice: two outputs with one commitment, or a ciphertext replayed to
// the wallet) is not counted again: its commitment is appended untracked,
// since only one copy can ever be spent.
func (w *Wallet) applyDecrypted(cb *CompactBlock, outs []output, nfs map[fr.Element]int, rep *SyncReport) error {
	b := cb.Header
	st := w.State
	if len(cb.Txs) > 0 {
		st = w.State.clone()
	}
	added := map[fr.Element]int{}
	owned := func(nf fr.Element) (int, bool) {
		if i, ok := nfs[nf]; ok {
			return i, true
		}
		i, ok := added[nf]
		return i, ok
	}
	first := st.Tree.Size()
	leaves := make([]fr.Element, len(outs))
	track := make([]bool, len(outs))
	var found, spent int
	for k, next := 0, 0; next < len(cb.Txs); next++ {
		// A transaction's nullifiers are revealed before its outputs are
		// appended.
		for _, nf := range cb.Txs[next].Nullifiers {
			if i, ok := owned(nf); ok && !st.Notes[i].Spent {
				st.Notes[i].Spent = true
				if pos := st.Notes[i].Position; pos >= first {
					track[pos-first] = false // found in this block: never tracked
				} else {
					st.Tree.Forget(pos)
				}
				spent++
			}
		}
		for ; k < len(outs) && outs[k].tx == next; k++ {
			o := &outs[k]
			leaves[k] = o.cm
			if !o.mine {
				continue
			}
			nf := noteNullifier(w.Keys, o.note)
			if _, known := owned(nf); known {
				continue
			}
			added[nf] = len(st.Notes)
			track[k] = true
			st.Notes = append(st.Notes, Owned{Note: o.note, Position: first + uint64(k), Height: b.Height, Name: cb.Txs[next].Asset})
			found++
		}
	}
	if _, err := st.Tree.AppendBatch(leaves, func(k int) bool { return track[k] }); err != nil {
		return err
	}
	if root := st.Tree.Root(); root.Bytes() != b.CommitmentRoot {
		return errors.New("the wallet's commitment tree disagrees with the block's commitment root")
	}
	st.Next, st.Last = b.Height+1, b.Hash()
	w.State = st
	maps.Copy(nfs, added)
	rep.Found += found
	rep.Spent += spent
	return nil
}

// output is one shielded output of a block and what decrypting it gave.
type output struct {
	tx   int // index of its transaction in the block
	j    int // index of the output in its transaction
	cm   fr.Element
	ct   *shielded.Ciphertexts // its transaction's
	note note.Note
	mine bool // decrypted to a note of this wallet with a value
}

// tryAll tries each output with the wallet's key. Consecutive outputs
// under one ephemeral key (a version-2 transaction's) share one X25519.
func (w *Wallet) tryAll(outs []output) {
	var t trial
	for k := range outs {
		o := &outs[k]
		n, err := w.Keys.open(&t, o.ct, o.j, o.cm)
		o.note, o.mine = n, err == nil && n.Value > 0
	}
}

// validatorSet is what a validator-set instance's chain adds
// (*fractal.Instance): the set whose commits certify its unsigned blocks.
type validatorSet interface {
	Validators() *certify.ValidatorSet
}

// checkBlock checks that b is of the instance and names exec, the
// executor (or validator set) of the block the wallet last accepted, as
// every block of an instance does (verify requires it): a source cannot
// sign a block with a key of its own. Then b's executor signature, or, on
// a validator-set instance, that b names its validator set unsigned: the
// set read in this process (a validator's own store, whose consensus
// checked every block), or the trusted one of a CertifiedChain, whose
// certificates Sync checks at each save.
func checkBlock(in Chain, exec [32]byte, b *chain.Block) error {
	var set *certify.ValidatorSet
	if v, ok := in.(validatorSet); ok {
		set = v.Validators()
	}
	if c, ok := in.(CertifiedChain); ok {
		set = c.Trusted()
	}
	switch {
	case b.Instance != in.ID():
		id := in.ID()
		return fmt.Errorf("the block belongs to instance %x, not %x", b.Instance[:8], id[:8])
	case b.Executor != exec:
		return fmt.Errorf("the block names executor %x, the instance's blocks name %x", b.Executor[:8], exec[:8])
	case set == nil && b.Signature == [64]byte{}:
		return errors.New("the block carries no signature: it is a validator set's, and the wallet needs the set's trust entry to check it")
	case set == nil:
		return chain.VerifyBlock(b)
	case b.Executor != set.Hash():
		h := set.Hash()
		return fmt.Errorf("the block names validator set %x, not the trusted %x", b.Executor[:8], h[:8])
	case b.Signature != [64]byte{}:
		return errors.New("the block of a validator set carries a signature; its signature field must be zero")
	}
	return nil
}
