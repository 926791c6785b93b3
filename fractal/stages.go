package fractal

// The instance's block lifecycle (docs/ARCHITECTURE.md, decision 100): five
// stages, each a method taking a context, that a solo instance runs in order
// in Seal and that a consensus engine calls from its own hooks (CometBFT:
// CheckTx → Check, PrepareProposal → Propose, FinalizeBlock → Execute,
// Commit → Commit):
//
//	Check    one transaction's admission: size, decoding, form, signatures, replay
//	Propose  the next block chosen and ordered from the mempool (encrypted batches fixed)
//	Execute  phases 1–3 with the scheduler: results, receipts, roots; writes nothing
//	Commit   the block in one atomic write
//	Sign     the manifest, through the signer and the guard, inside Commit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// tree is the state tree over the live notes, the outbox and the import
// index (chain.EffectChanges), under prefixTree.
var tree = statetree.New([]byte{prefixTree})

// Sealed is the result of a seal: the block (nil when no transaction was
// accepted) and the receipt of every transaction taken from the queue, in
// queue order, accepted and refused.
type Sealed struct {
	Block    *chain.Block
	Receipts []*phases.Receipt
	// Encrypted reports the encrypted batch this seal fixed, opened or is
	// waiting for; nil when no encrypted batch was involved (encrypted.go).
	Encrypted *EncryptedStatus
	// Taken is how many plaintext transactions the seal took from the
	// queue (and removed from it), so that a caller keeping the queue's
	// depth need not count it again.
	Taken int
}

// Seal runs the block lifecycle once: it proposes up to Config.MaxBlockTxs
// queued transactions in arrival order (or fixes, opens or waits for an
// encrypted batch), executes them through phases 1–3, and commits, in one
// badger transaction, the effects and receipts of the accepted ones, the
// new block, signed, and the state roots, removing every taken transaction
// from the queue. Refused transactions leave no trace but their returned
// receipts. If nothing is queued, Seal returns an empty result and writes
// nothing.
func (in *Instance) Seal(ctx context.Context) (*Sealed, error) {
	if err := in.errValidatorSet("seal"); err != nil {
		return nil, err
	}
	in.lock()
	defer in.mu.Unlock()
	return withinWriteBound(in.cfg.MaxBlockTxs, func(max int) (*Sealed, error) { return in.seal(ctx, max) })
}

// withinWriteBound runs seal with up to max transactions and, while the
// block's writes pass the bound (decision 167), again with half as many;
// the rest stay queued for the next block.
func withinWriteBound[T any](max int, seal func(max int) (T, error)) (T, error) {
	for {
		r, err := seal(max)
		if errors.Is(err, errBlockWritesOverBound) && max > 1 {
			max /= 2
			continue
		}
		if err != nil {
			var none T
			return none, fmt.Errorf("fractal: seal: %w", err)
		}
		return r, nil
	}
}

func (in *Instance) seal(ctx context.Context, max int) (*Sealed, error) {
	// Every stage reads one snapshot; writers are serialized by in.mu, so
	// nothing changes the store before the commit below.
	view := in.db.NewTransaction(false)
	defer view.Discard()
	p, err := in.propose(ctx, view, max)
	if err != nil {
		return nil, err
	}
	if p.nothing() {
		return &Sealed{Encrypted: p.Encrypted}, nil
	}
	c := in.BeginCommit(p)
	defer c.Discard()
	// Each result is written into the commit while later transactions
	// still run.
	x, err := in.execute(ctx, badgerdb.KV{Txn: view}, p, c.Apply)
	if err != nil {
		return nil, err
	}
	if q, ok := p.mempool.(*queuePart); ok {
		x.Taken = len(q.taken)
	}
	return c.Finish(ctx, x, true)
}

// Check is the admission stage for one transaction, given as its canonical
// encoding: what a mempool's CheckTx runs before the transaction may wait
// for a block. It refuses an encoding over max_tx_bytes before decoding
// it, one that does not decode, a transaction that is invalid (constraint
// sanity, limits: phases.Tx.Validate) or not signed by each of its signers,
// and one that was executed (a replay) or is queued, as the committed store
// shows. It changes nothing and takes no lock. Submit runs the same
// checks, those against the store inside its write, under the writers'
// lock, so that one transaction cannot be queued twice.
func (in *Instance) Check(ctx context.Context, raw []byte) (*phases.Tx, error) {
	tx, err := in.checkAlone(ctx, raw)
	if err != nil {
		return nil, err
	}
	id := tx.ID()
	if err := in.db.View(func(txn *badger.Txn) error { return in.checkFresh(badgerdb.KV{Txn: txn}, id) }); err != nil {
		return nil, fmt.Errorf("fractal: check %x: %w", id[:8], err)
	}
	return tx, nil
}

// checkAlone is Check without the store: size, decoding, form, limits
// (max_tx_gas too: this is admission) and signatures.
func (in *Instance) checkAlone(ctx context.Context, raw []byte) (*phases.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(raw) > in.cfg.MaxTxBytes {
		return nil, fmt.Errorf("fractal: check: transaction is %d bytes, limit %d", len(raw), in.cfg.MaxTxBytes)
	}
	tx, err := phases.DecodeTx(raw)
	if err != nil {
		return nil, fmt.Errorf("fractal: check: %w", err)
	}
	if _, err = in.admit(tx); err == nil {
		err = in.CheckTxGas(tx)
	}
	if err != nil {
		id := tx.ID()
		return nil, fmt.Errorf("fractal: check %x: %w", id[:8], err)
	}
	return tx, nil
}

// A Proposal is a block to execute: the block it extends, the key its
// manifest names as its producer (the executor's; a validator set's
// proposer), and its transactions in execution order. Propose makes one
// from the mempool; a consensus engine makes one from the transactions it
// decided on.
type Proposal struct {
	Parent   *chain.Block
	Producer keys.PublicKey
	Txs      []*phases.Tx
	// Encrypted reports the encrypted batch Propose fixed or waits for;
	// the proposal then holds no block to execute.
	Encrypted *EncryptedStatus
	// mempool is how the transactions leave the mempool that held them
	// (the queue, or an encrypted batch), nil for transactions handed in.
	mempool blockPart
}

// nothing reports a proposal with nothing to execute or write.
func (p *Proposal) nothing() bool { return len(p.Txs) == 0 && p.mempool == nil }

// Propose is the proposal stage: it chooses the next block from the
// mempool. An encrypted batch waiting for shares comes first: it is opened
// (decrypted, its transactions in slot order) once k shares are in, and
// otherwise waited for, with nothing queued after it running before. A
// payload queued before the first plaintext transaction starts a new
// batch, fixed (signed, through the guard, and stored: decision 075) here.
// Otherwise up to max_block_txs queued transactions in arrival order, cut
// before the first queued payload.
func (in *Instance) Propose(ctx context.Context) (*Proposal, error) {
	if err := in.errValidatorSet("propose"); err != nil {
		return nil, err
	}
	in.lock()
	defer in.mu.Unlock()
	view := in.db.NewTransaction(false)
	defer view.Discard()
	p, err := in.propose(ctx, view, in.cfg.MaxBlockTxs)
	if err != nil {
		return nil, fmt.Errorf("fractal: propose: %w", err)
	}
	return p, nil
}

func (in *Instance) propose(ctx context.Context, view *badger.Txn, max int) (*Proposal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	parent, err := in.headBlock(view)
	if err != nil {
		return nil, err
	}
	return in.proposeOn(ctx, view, badgerdb.KV{Txn: view}, parent, max)
}

// proposeOn is propose over r, the store as the block will see it, whose
// head is parent; view is a read of the store whose queue and encrypted
// mempool are r's (r's own, or, for a pipelined seal, the store's before
// the plain block in flight: decision 186).
func (in *Instance) proposeOn(ctx context.Context, view *badger.Txn, r kv.Reader, parent *chain.Block, max int) (*Proposal, error) {
	p := &Proposal{Producer: in.pub, Parent: parent}
	var err error
	read := max
	if in.cfg.PerKeyLimit {
		read = perKeyRead(max)
	}
	var q []queued
	if in.mem != nil {
		in.mem.mu.RLock()
		q = in.mem.read(read)
		in.mem.mu.RUnlock()
	} else if q, err = readQueue(view, read); err != nil {
		return nil, err
	}
	q, err = in.proposeEncrypted(ctx, view, p, q, max)
	if err != nil || len(q) == 0 {
		return p, err
	}
	if in.cfg.PerKeyLimit {
		if q, err = withinPerKeyLimit(r, q, max); err != nil {
			return nil, err
		}
	}
	q = withinBlockGas(q[:min(len(q), max)], in.cfg.MaxBlockGas)
	if len(q) == 0 {
		return p, nil
	}
	if err := in.proposeReward(ctx, p, p.Parent.Height+1); err != nil {
		return nil, err
	}
	for _, e := range q {
		p.Txs = append(p.Txs, e.tx)
	}
	p.mempool = &queuePart{taken: q, mem: in.newMemPart()}
	return p, nil
}

// proposeReward puts the block reward's transaction first in p, the block
// at height, when the instance gives one: the rules' RewardTx, signed by
// the producer (decision 143).
func (in *Instance) proposeReward(ctx context.Context, p *Proposal, height uint64) error {
	r := in.rules.Reward
	if r == nil {
		return nil
	}
	tx := r.RewardTx(p.Producer, height)
	id := tx.ID()
	sig, err := keys.SignChecked(ctx, in.signer, id[:])
	if err != nil {
		return fmt.Errorf("reward transaction: %w", err)
	}
	tx.Signatures = [][]byte{sig}
	tx.MarkVerified()
	p.Txs = append(p.Txs, tx)
	return nil
}

// withinBlockGas cuts q, in arrival order, before the first transaction
// whose gas limit would take the block's total past maxGas; the rest wait
// for later blocks. Check refuses a transaction asking for more than
// maxGas alone, so the first always fits.
func withinBlockGas(q []queued, maxGas uint64) []queued {
	var sum uint64
	for i, e := range q {
		if sum += e.tx.GasLimit; sum > maxGas {
			return q[:max(i, 1)]
		}
	}
	return q
}

// TxResult is one transaction's result as Execute hands it on: its index
// in the block's transactions, the transaction, its outcome (receipt and,
// when accepted, effects) and the state root after it (the root before it
// when refused).
type TxResult struct {
	Index   int
	Tx      *phases.Tx
	Outcome *phases.Outcome
	Root    [32]byte
}

// An Execution is a block executed and not yet written: its unsigned
// manifest (Block, nil when no transaction was accepted) and every
// receipt in block order, with what Commit writes beyond the results (the
// state tree's new nodes, what each component changed).
type Execution struct {
	Sealed
	height uint64
	tree   *statetree.Batch
	parts  []blockPart
}

// Execute is the execution stage: it runs p's transactions through phases
// 1–3 against the committed store (with the scheduler unless the
// configuration says serial; the outcome is the same), after the
// components admitted them (a shielded transaction whose proof, anchor or
// nullifiers the pool refuses gets a refused receipt and does not run, so
// no other transaction sees its effects). It hands every result to emit in
// block order, as soon as it is final, while later transactions still run
// (emit may write it: Commit.Apply), and returns the execution. It writes
// nothing, needs no key, and depends only on the store, p's parent,
// producer and transactions: every executor, replay and referee computes
// the same manifest. A consensus engine runs it for a decided block; no
// other block may be committed between Execute and that block's Commit.
func (in *Instance) Execute(ctx context.Context, p *Proposal, emit func(*TxResult) error) (*Execution, error) {
	view := in.db.NewTransaction(false)
	defer view.Discard()
	x, err := in.execute(ctx, badgerdb.KV{Txn: view}, p, emit)
	if err != nil {
		return nil, fmt.Errorf("fractal: execute: %w", err)
	}
	return x, nil
}

// execute is Execute against view, the store's state after p.Parent (the
// instance's committed store, or a replay's).
func (in *Instance) execute(ctx context.Context, view kv.Reader, p *Proposal, emit func(*TxResult) error) (*Execution, error) {
	if p.Parent == nil {
		return nil, errors.New("the proposal names no parent block")
	}
	x := &Execution{height: p.Parent.Height + 1, tree: tree.Begin(view, p.Parent.StateRoot)}
	b := &chain.Block{Instance: in.id, Height: x.height, Prev: p.Parent.Hash(), Executor: p.Producer}
	var err error
	if x.parts, err = in.beginParts(view, p); err != nil {
		return nil, err
	}
	txs := p.Txs
	errs := make([]error, len(txs))
	for _, part := range x.parts {
		for i, err := range part.admit(txs) {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	result := func(i int, o *phases.Outcome) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := &TxResult{Index: i, Tx: txs[i], Outcome: o, Root: x.tree.Root()}
		if o.Committed() {
			id := o.Receipt.TxID // txs[i].ID(), as every outcome's receipt names its transaction: not hashed again
			if r.Root, err = x.tree.Apply(chain.EffectChanges(o)); err != nil {
				return fmt.Errorf("transaction %x: %w", id[:8], err)
			}
			b.TxIDs, b.Roots = append(b.TxIDs, id), append(b.Roots, r.Root)
		}
		for _, part := range x.parts {
			if err := part.apply(r); err != nil {
				return fmt.Errorf("transaction %x: %w", r.Tx.ID(), err)
			}
		}
		x.Receipts = append(x.Receipts, &o.Receipt)
		if emit != nil {
			return emit(r)
		}
		return nil
	}
	code := blockCode{in, chain.BlockContext{Rules: in.rules, ProducerKey: p.Producer, Height: x.height}}
	if err := in.runPhases(view, code, txs, errs, result); err != nil {
		return nil, err
	}
	if len(b.TxIDs) > 0 {
		b.TxsHash = chain.TxsHash(b.TxIDs)
		b.StateRoot = b.Roots[len(b.Roots)-1]
		for _, part := range x.parts {
			part.finish(b)
		}
		x.Block = b
	}
	return x, nil
}

// runPhases runs the transactions admission let through (errs[i] == nil)
// through phases 1–3 with code and hands every outcome, the admission
// refusals' included, to result in block order (phases.ExecuteBlockFunc).
func (in *Instance) runPhases(view kv.Reader, code phases.Code, txs []*phases.Tx, errs []error, result func(i int, o *phases.Outcome) error) error {
	run := make([]*phases.Tx, 0, len(txs))
	var pos []int // the index in txs of each of run
	for i, tx := range txs {
		if errs[i] == nil {
			run, pos = append(run, tx), append(pos, i)
		}
	}
	next := 0 // the first index of txs not yet handed on
	// refusedUpTo hands on the admission refusals before index end.
	refusedUpTo := func(end int) error {
		for ; next < end; next++ {
			rc := phases.Receipt{TxID: txs[next].ID(), Status: phases.Refused, Phase: phases.PhaseAdmission, Reason: errs[next].Error()}
			if err := result(next, &phases.Outcome{Receipt: rc}); err != nil {
				return err
			}
		}
		return nil
	}
	ran := func(k int, o *phases.Outcome) error {
		if err := refusedUpTo(pos[k]); err != nil {
			return err
		}
		next++
		return result(pos[k], o)
	}
	st := snapshot{view}
	if in.cfg.Serial {
		outs, err := phases.ExecuteSerial(st, code, in.pool, run)
		for k := 0; err == nil && k < len(outs); k++ {
			err = ran(k, outs[k])
		}
		if err != nil {
			return err
		}
	} else if err := phases.ExecuteBlockFunc(st, code, in.pool, run, ran); err != nil {
		return err
	}
	return refusedUpTo(len(txs))
}

// A Commit is the commit stage of one block: one badger write transaction
// that takes each result as Execute hands it on (Apply) and, with the rest
// of the block, lands in one atomic write (Finish).
type Commit struct {
	in     *Instance
	txn    *badger.Txn
	w      *boundedWrite // every write of the block goes through it
	height uint64
	// stateWritten is set once WriteState wrote the execution's state
	// before Finish.
	stateWritten bool
}

// BeginCommit starts the commit of the block p proposes. Discard it when
// Finish is not reached.
func (in *Instance) BeginCommit(p *Proposal) *Commit {
	txn := in.db.NewTransaction(true)
	return &Commit{in: in, txn: txn, w: &boundedWrite{Store: badgerdb.KV{Txn: txn}}, height: p.Parent.Height + 1}
}

// Apply writes one result: a committed transaction's effects (an accepted
// one's inputs deleted and outputs written, the fee any paid), the
// transaction under its ID (the replay index) and its receipt. A refused
// one that paid no fee writes nothing (decision 080 as amended by 140).
func (c *Commit) Apply(r *TxResult) error {
	o := r.Outcome
	if !o.Committed() {
		return nil
	}
	id := o.Receipt.TxID // r.Tx.ID(), not hashed again
	if err := writeNotes(c.w, o); err != nil {
		return fmt.Errorf("transaction %x: %w", id[:8], err)
	}
	var height [8]byte
	binary.BigEndian.PutUint64(height[:], c.height)
	if err := c.w.Set(hashKey(prefixTx, id), r.Tx.EncodeAfter(height[:])); err != nil {
		return err
	}
	return c.w.Set(hashKey(prefixReceipt, id), o.Receipt.Encode())
}

// Finish writes the rest of the executed block x: the state tree's new
// nodes, what each component changed (the mempool's part removes the
// block's transactions from it), and, when a transaction was accepted, the
// head and the block; then it commits, in one atomic write. When sign is
// set the block is signed (Sign) last, once everything else is in the
// write, so a commit that fails earlier wastes no signature; a validator
// set, whose blocks a consensus commit certifies, finishes unsigned.
func (c *Commit) Finish(ctx context.Context, x *Execution, sign bool) (*Sealed, error) {
	if err := c.WriteState(x); err != nil {
		return nil, err
	}
	b := x.Block
	if b == nil {
		if err := c.commit(x); err != nil {
			return nil, err
		}
		return &x.Sealed, nil
	}
	hw := headWrites(b)
	for _, kv := range hw[:2] {
		if err := c.w.Set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	store := func() error {
		if err := c.w.Set(hw[2][0], b.Encode()); err != nil { // signed by now
			return err
		}
		return c.commit(x)
	}
	var err error
	if sign {
		err = c.in.Sign(ctx, b, store)
	} else {
		err = store()
	}
	if err != nil {
		return nil, err
	}
	return &x.Sealed, nil
}

// commit commits the block's write and tells the parts that keep memory
// (committer) that it is in.
func (c *Commit) commit(x *Execution) error {
	if err := c.txn.Commit(); err != nil {
		return err
	}
	for _, part := range x.parts {
		if p, ok := part.(committer); ok {
			p.committed()
		}
	}
	return nil
}

// A committer is a block part that keeps memory beyond the store (the
// memory queue) and updates it once its block's write is committed.
type committer interface{ committed() }

// headWrites are what Finish writes for a block b that accepted a
// transaction, once its state is in: the head, the state root and the block
// record (whose size its signature does not change).
func headWrites(b *chain.Block) [][2][]byte {
	return [][2][]byte{{metaHead, u64(b.Height)}, {metaRoot, b.StateRoot[:]}, {seqKey(prefixBlock, b.Height), b.Encode()}}
}

// WriteState writes x's state (writeState) into the commit, once: a
// caller that must learn whether the block's writes fit in one store write
// before it answers (a validator, decided.go) calls it before Finish.
func (c *Commit) WriteState(x *Execution) error {
	if c.stateWritten {
		return nil
	}
	if err := x.writeState(c.w); err != nil {
		return err
	}
	c.stateWritten = true
	return nil
}

// Discard abandons the commit; after Finish it does nothing.
func (c *Commit) Discard() { c.txn.Discard() }

// writeState writes what x changed beyond its results' notes: the state
// tree's new nodes (only the final root's: decision 058) and each
// component's changes. A commit and a replay both write it.
func (x *Execution) writeState(w kv.Store) error {
	if _, err := x.tree.Commit(w); err != nil {
		return err
	}
	for _, part := range x.parts {
		if err := part.write(w, x); err != nil {
			return err
		}
	}
	return nil
}

// writeNotes deletes the notes a committed outcome spends and writes
// those it creates (phases.Outcome.Effects). Phases 1–3 already checked
// that the spent notes are live and the new keys free; the checks here
// guard the store against a disagreement.
func writeNotes(w kv.Store, o *phases.Outcome) error {
	var err error
	o.Effects(func(n *notes.Note, created bool) {
		if err == nil {
			err = writeNote(w, n, created)
		}
	})
	return err
}

func writeNote(w kv.Store, n *notes.Note, created bool) error {
	sk := n.StateKey()
	k := noteKeyOf(&sk)
	raw, ok, err := w.Get(k)
	switch {
	case err != nil:
		return err
	case created && ok:
		return fmt.Errorf("output key %s is occupied", k[1:])
	case created:
		return w.Set(k, n.Encode())
	case !ok:
		return fmt.Errorf("input %s is not live", k[1:])
	case string(raw) != string(n.Encode()):
		return fmt.Errorf("input %s differs from the live note", k[1:])
	}
	return w.Delete(k)
}

// Sign is the sign stage: it signs b's manifest through the instance's
// signer and stores it with store, which must make it durable (commit the
// write that holds it), under the double-sign guard: the guard is checked
// against the committed store, b is recorded as being signed (synced), the
// signer signs, store runs, and b is recorded as signed (decisions 095,
// 102). b must name this instance's executor as its producer.
func (in *Instance) Sign(ctx context.Context, b *chain.Block, store func() error) error {
	return in.signBlock(ctx, b, store, in.signGuarded)
}

// signBlock signs b through sign (signGuarded, or signBegun when the guard
// is told later that b is stored) and stores it with store.
func (in *Instance) signBlock(ctx context.Context, b *chain.Block, store func() error, sign func(context.Context, guard.Kind, guard.Block, []byte, func([]byte) error) error) error {
	if b.Executor != in.pub {
		return fmt.Errorf("sign block %d: it names producer %s, this executor is %s", b.Height, keys.PublicKey(b.Executor), in.pub)
	}
	return sign(ctx, guard.Blocks, guard.Block{Height: b.Height, Hash: b.Hash()}, b.SignedMessage(), func(sig []byte) error {
		copy(b.Signature[:], sig)
		return store()
	})
}
