package fractal

// A validator-set instance (decision 121): its blocks are chosen, ordered
// and certified by a consensus engine (CometBFT, package fractal/abci),
// which hands each decided block in as raw transactions. The stages are
// the solo instance's: admission of a raw transaction (pending.go),
// ExecuteDecided = Execute after the checks a handed-in block needs, and
// Decision.Commit = Commit without Sign, recording the engine's height.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/vp"
)

// errValidatorSet refuses, on a validator-set instance, what only a solo
// instance does by itself: its blocks, code and mempool come from its
// validators' consensus.
func (in *Instance) errValidatorSet(what string) error {
	if in.validators == nil {
		return nil
	}
	return fmt.Errorf("fractal: %s: this is a validator-set instance: its blocks are made by its validators' consensus, so transactions and code go to a validator (fractal validator submit)", what)
}

// loadValidators reads a validator-set instance's set and checks it
// against the genesis descriptor gen and the genesis block.
func (in *Instance) loadValidators(txn *badger.Txn, gen *chain.Genesis) error {
	raw, err := getValue(txn, metaValidators)
	if err != nil {
		return fmt.Errorf("validator set: %w", err)
	}
	vs, err := certify.DecodeValidatorSet(raw)
	if err != nil {
		return err
	}
	if vs.Hash() != gen.Executor {
		return errors.New("the stored validator set is not the one the genesis descriptor names")
	}
	in.validators, in.pub = vs, vs.Hash()
	g, err := in.blockAt(txn, 0)
	if err != nil {
		return err
	}
	if g.Executor != in.pub {
		return errors.New("the genesis block does not name the instance's validator set")
	}
	return nil
}

// deployMagic starts a consensus transaction that deploys code: on a
// validator set, code reaches every validator's registry through a block,
// never by a local write (which would make one validator's execution
// differ from the others').
const deployMagic = "fractal deploy v1\x00"

// DeployTx returns the consensus transaction deploying src on a
// validator-set instance. Its code is usable from the next block on.
func DeployTx(src []byte) []byte { return append([]byte(deployMagic), src...) }

// deployed returns the code a deploy transaction carries, compiled, with
// its hash; ok is false for any other transaction.
func deployed(raw []byte) (src []byte, h notes.Hash, prog *vp.Program, ok bool, err error) {
	if !bytes.HasPrefix(raw, []byte(deployMagic)) {
		return nil, h, nil, false, nil
	}
	src = raw[len(deployMagic):]
	if len(src) > chain.MaxCodeBytes {
		return nil, h, nil, true, fmt.Errorf("code is %d bytes, limit %d", len(src), chain.MaxCodeBytes)
	}
	h = sha256.Sum256(src)
	prog, err = vp.Compile(chain.CodeName(h), src)
	return src, h, prog, true, err
}

// A DecidedBlock is a block a consensus engine decided: its raw
// transactions in the decided order (transactions, or code deploys), and
// what the engine adds.
type DecidedBlock struct {
	Height uint64   // the engine's height
	Txs    [][]byte // as decided
	// Misbehavior holds records of validator misbehaviour the engine
	// reports with the block, kept in the store for "fractal evidence";
	// opaque to the instance.
	Misbehavior [][]byte
	// Verified reports the transactions (their encodings) whose signatures
	// this process already checked, so that execution does not check them
	// again; nil checks all.
	Verified func(raw []byte) bool
	// Shares are the validators' verified share batches for the encrypted
	// batch waiting before this block, ascending by keyholder (package
	// abci takes them from the block's vote extensions): with k of them
	// the batch opens and runs first (encrypted_decided.go).
	Shares []*tfhe.ShareBatch
}

// A DecidedResult is what became of one raw transaction of a decided
// block: a transaction with its receipt (accepted or refused) and the
// state root after it; a deploy with the hash of its code; or a refusal of
// bytes that are neither (Refused).
type DecidedResult struct {
	Tx       *phases.Tx
	Receipt  *phases.Receipt
	Root     [32]byte // state root after it (an accepted transaction)
	Deploy   bool     // a deploy: Deployed when accepted, else Refused
	Deployed *notes.Hash
	Refused  error // a deploy, an encrypted transaction or undecodable bytes, refused
	// Encrypted is the payload ID of an encrypted transaction fixed into
	// the block's batch.
	Encrypted *[32]byte
	// DKG marks a DKG transaction (epochs_decided.go): Envelope is what it
	// recorded, or Refused says why not.
	DKG      bool
	Envelope *dkg.Envelope
	unrun    bool // Receipt refuses it before it ran
}

// refuseUnrun records that tx was refused in admission, before it ran,
// for err.
func (r *DecidedResult) refuseUnrun(tx *phases.Tx, err error) {
	r.Tx, r.unrun = tx, true
	r.Receipt = &phases.Receipt{TxID: tx.ID(), Status: phases.Refused, Phase: phases.PhaseAdmission, Reason: err.Error()}
}

// Unrun returns the receipts of the transactions d refused before they
// ran (in admission, or cut from a block too large for one store write):
// they are not among the receipts of d's block, and a node tells those who
// wait for them.
func (dc *Decision) Unrun() []*phases.Receipt {
	var out []*phases.Receipt
	for i := range dc.Results {
		if r := &dc.Results[i]; r.unrun {
			out = append(out, r.Receipt)
		}
	}
	return out
}

// A Decision is a decided block executed and not yet committed: one result
// per raw transaction and the app hash the block leads to (certify.AppHashOver
// of the head block after it, unchanged when it accepts nothing). Commit
// or Discard it; no other block may be committed in between.
type Decision struct {
	Height  uint64
	Results []DecidedResult
	AppHash [32]byte
	Sealed  *Sealed // the block (nil when nothing was accepted) and receipts
	// Expired is the encrypted batch the block closed as expired (decision
	// 164), with its slots' drop receipts; nil when none.
	Expired *Sealed
	// Epoch is the record of the DKG attempt this block decided (the last
	// height of its round 3), nil for any other block.
	Epoch *EpochRecord

	in      *Instance
	commit  *Commit
	x       *Execution
	deploys []decidedCode
	records [][]byte
	dkg     *decidedDKGPart
	parent  [32]byte // the head manifest's hash before the block
}

type decidedCode struct {
	h    notes.Hash
	src  []byte
	prog *vp.Program
}

// ExecuteDecided is the execution stage for a block a consensus engine
// decided, on a validator-set instance. Each raw transaction is a code
// deploy or a transaction; a transaction is refused in admission, before
// phases 1–3, when it does not decode, breaks the instance's limits
// (max_tx_bytes, max_block_gas: its form is checked as at submission),
// was executed before, or repeats one earlier in the block. The others run
// through Execute against the committed store, their effects streaming
// into the block's write (nothing is committed). Every outcome is a
// result, never an error: an error means the store failed, and this
// validator cannot go on honestly.
//
// A block whose writes pass the bound of one block's writes
// (MaxBlockWriteBytes, MaxBlockWriteEntries: a count of Fractal's own, not
// the store's) is executed again with only the first half of its raw
// transactions, and so on: the others are refused, not run
// (ErrBlockWritesTooLarge), as every validator does at the same point, so
// that one block of large transactions cannot stop the chain (decisions
// 139 and 167).
func (in *Instance) ExecuteDecided(ctx context.Context, d *DecidedBlock) (*Decision, error) {
	if in.validators == nil {
		return nil, errors.New("fractal: execute decided: not a validator-set instance")
	}
	run, keep := len(d.Txs), -1 // keep: the opened batch's slots that run (-1: all)
	for {
		dc, batch, err := in.executeDecided(ctx, d, run, keep)
		switch {
		case !errors.Is(err, errBlockWritesOverBound):
			return dc, err
		case run > 0:
			run /= 2
		case keep != 0 && batch > 0: // the block's own are out: cut the batch it opens
			keep = batch / 2
		default:
			return dc, err
		}
	}
}

// ErrBlockWritesTooLarge refuses the transactions of a decided block past
// the point where its writes stop fitting in one store write.
var ErrBlockWritesTooLarge = errors.New("not run: the block's writes do not fit in one store write with it; submit it again")

// executeDecided is ExecuteDecided running only d's first run raw
// transactions (the rest are refused with ErrBlockWritesTooLarge) and the
// first keep slots of the batch it opens, if any, that would run (-1: all;
// the rest are dropped, batchPart.cut). It also returns how many of the
// batch's slots ran.
func (in *Instance) executeDecided(ctx context.Context, d *DecidedBlock, run, keep int) (*Decision, int, error) {
	view := in.db.NewTransaction(false)
	defer view.Discard()
	p := &Proposal{Producer: in.pub}
	var err error
	if p.Parent, err = in.headBlock(view); err != nil {
		return nil, 0, fmt.Errorf("fractal: execute decided: %w", err)
	}
	dc := &Decision{Height: d.Height, Results: make([]DecidedResult, len(d.Txs)), in: in, records: d.Misbehavior, parent: p.Parent.Hash()}
	pos := make([]int, 0, len(d.Txs)) // the index in d.Txs of each of p.Txs, -1 for an opened batch's
	seen := make(map[notes.Hash]bool, len(d.Txs))
	enc, err := in.openDecided(view, d, p, seen, keep)
	if err != nil {
		return nil, 0, fmt.Errorf("fractal: execute decided block %d: %w", d.Height, err)
	}
	if enc.expire != nil {
		dc.Expired = &Sealed{Encrypted: enc.expire.status(BatchExpired), Receipts: expiredReceipts(enc.expire.batch, enc.expire.pk.K)}
	}
	if dc.dkg, err = in.planDKG(view, d.Height); err != nil {
		return nil, 0, fmt.Errorf("fractal: execute decided block %d: %w", d.Height, err)
	}
	batch := len(p.Txs) // the opened batch's slots that run come first
	for range p.Txs {
		pos = append(pos, -1)
	}
	for i, raw := range d.Txs {
		r := &dc.Results[i]
		if enc.result(i, r) { // the block's batch is fixed whatever fits (votes.go makes shares for it)
			continue
		}
		if body, ok := dkgBody(raw); ok {
			// Cut like a transaction: a round's envelopes (up to 2 × 3 of
			// 32 KiB per keyholder) can pass the bound alone (decision 176).
			r.DKG = true
			if i >= run {
				r.Refused = ErrBlockWritesTooLarge
			} else {
				r.Envelope, r.Refused = dc.dkg.take(view, body)
			}
			continue
		}
		if i >= run {
			if tx, err := phases.DecodeTx(raw); err == nil { // a deploy does not decode
				r.refuseUnrun(tx, ErrBlockWritesTooLarge)
			}
			r.Refused = ErrBlockWritesTooLarge
			continue
		}
		if src, h, prog, ok, err := deployed(raw); ok {
			if r.Deploy, r.Refused = true, err; err == nil {
				r.Deployed = &h
				dc.deploys = append(dc.deploys, decidedCode{h, src, prog})
			}
			continue
		}
		tx, err := in.decodeDecided(view, raw, seen)
		if tx == nil {
			r.Refused = err
			continue
		}
		r.Tx = tx
		if err != nil {
			r.refuseUnrun(tx, err)
			continue
		}
		if d.Verified != nil && d.Verified(raw) {
			tx.MarkVerified()
		}
		p.Txs, pos = append(p.Txs, tx), append(pos, i)
	}
	if err := dc.dkg.finish(view); err != nil {
		return nil, batch, fmt.Errorf("fractal: execute decided block %d: %w", d.Height, err)
	}
	dc.Epoch = dc.dkg.record
	dc.commit = in.BeginCommit(p)
	side := newSideLog()
	dc.commit.w.side = side
	dc.x, err = in.execute(ctx, badgerdb.KV{Txn: view}, p, func(res *TxResult) error {
		if pos[res.Index] < 0 { // its outcome is recorded with its batch
			return dc.commit.Apply(res)
		}
		r := &dc.Results[pos[res.Index]]
		r.Receipt, r.Root = &res.Outcome.Receipt, res.Root
		return dc.commit.Apply(res)
	})
	if err == nil {
		err = dc.writeAll(view, side)
	}
	if err != nil {
		dc.commit.Discard()
		return nil, batch, fmt.Errorf("fractal: execute decided block %d: %w", d.Height, err)
	}
	return dc, batch, nil
}

// writeAll writes into the block's write all that Commit will commit but
// the head and the block record (headWrites, whose room it checks): the
// execution's state and the epochs' records (the side log folds their side
// records into the side digest), then the side digest, the engine's height
// as the last decided one, the height at which the block (if any) was made
// with the side digest after it, the misbehaviour records and the deployed
// code, so that a block whose writes pass the bound is found before the
// app hash is answered. It sets dc.AppHash.
func (dc *Decision) writeAll(view *badger.Txn, side *sideLog) error {
	if err := dc.dkg.write(dc.commit.w); err != nil {
		return err
	}
	if err := dc.commit.WriteState(dc.x); err != nil {
		return err
	}
	prev, err := sideDigest(view)
	if err != nil {
		return err
	}
	digest := side.fold(prev, dc.Height)
	head := dc.parent
	writes := [][2][]byte{{metaDecided, u64(dc.Height)}}
	if digest != prev {
		writes = append(writes, [2][]byte{metaSide, digest[:]})
	}
	if b := dc.x.Block; b != nil {
		head = b.Hash()
		at := u64(dc.Height)
		if digest != ([32]byte{}) {
			at = append(at, digest[:]...)
		}
		writes = append(writes, [2][]byte{decidedKey(decidedBlock, u64(b.Height)), at})
	}
	for i, rec := range dc.records {
		writes = append(writes, [2][]byte{decidedKey(decidedMisbehavior, u64(dc.Height), binary.BigEndian.AppendUint32(nil, uint32(i))), rec})
	}
	for _, d := range dc.deploys {
		writes = append(writes, [2][]byte{hashKey(prefixCode, d.h), d.src})
	}
	for _, kv := range writes {
		if err := dc.commit.w.Set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	dc.AppHash = certify.AppHashOver(head, digest)
	if b := dc.x.Block; b != nil {
		return dc.commit.w.room(headWrites(b))
	}
	return nil
}

// decodeDecided decodes one raw transaction of a decided block and runs
// the checks a block handed in needs before it may run (a solo
// instance's queue only holds transactions that passed them): nil and the
// reason for bytes that do not decode; the transaction and the reason
// when its form breaks the instance's limits, it was executed in an
// earlier block, or it repeats one of this block (seen).
func (in *Instance) decodeDecided(view *badger.Txn, raw []byte, seen map[notes.Hash]bool) (*phases.Tx, error) {
	if len(raw) > in.cfg.MaxTxBytes {
		return nil, fmt.Errorf("transaction is %d bytes, limit %d", len(raw), in.cfg.MaxTxBytes)
	}
	tx, err := phases.DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	id := tx.ID()
	if _, err := in.checkForm(tx); err != nil {
		return tx, err
	}
	if seen[id] {
		return tx, errors.New("replayed transaction: it appears earlier in this block")
	}
	seen[id] = true
	return tx, checkExecuted(badgerdb.KV{Txn: view}, id)
}

// checkExecuted refuses a transaction ID that an earlier block executed.
func checkExecuted(r kv.Reader, id notes.Hash) error {
	raw, ok, err := r.Get(hashKey(prefixTx, id))
	switch {
	case err != nil:
		return err
	case !ok:
		return nil
	case len(raw) < 8:
		return fmt.Errorf("transaction index entry has %d bytes", len(raw))
	}
	return &ReplayError{Height: binary.BigEndian.Uint64(raw)}
}

// Commit is the commit stage of the decision: with the block's effects,
// the engine's height as the last decided one, the height at which the
// block (if any) was made, the misbehaviour records and the deployed code
// (written by ExecuteDecided), it writes the head and the block, in one
// atomic write, unsigned (the engine's commit certifies it).
func (dc *Decision) Commit(ctx context.Context) (*Sealed, error) {
	c, in := dc.commit, dc.in
	s, err := c.Finish(ctx, dc.x, false)
	if err != nil {
		c.Discard()
		return nil, fmt.Errorf("fractal: commit decided block %d: %w", dc.Height, err)
	}
	for _, d := range dc.deploys {
		in.code.cache.Put(d.h, d.prog)
	}
	dc.Sealed = s
	return s, nil
}

// Discard abandons the decision.
func (dc *Decision) Discard() { dc.commit.Discard() }

// Decided returns the height of the last block a consensus engine
// decided and this validator-set instance committed (0 before the first),
// and the app hash after it (certify.AppHashOver): what the engine asks of an application that
// restarts, to replay the blocks it lacks.
func (in *Instance) Decided() (uint64, [32]byte, error) {
	var height uint64
	var hash [32]byte
	err := in.db.View(func(txn *badger.Txn) (err error) {
		if height, err = decidedHeight(txn); err != nil {
			return err
		}
		b, err := in.headBlock(txn)
		if err != nil {
			return err
		}
		side, err := sideDigest(txn)
		hash = certify.AppHashOver(b.Hash(), side)
		return err
	})
	if err != nil {
		return 0, hash, fmt.Errorf("fractal: decided: %w", err)
	}
	return height, hash, nil
}

// decidedHeight is the last committed consensus height (0 before any).
func decidedHeight(txn *badger.Txn) (uint64, error) {
	raw, err := getValue(txn, metaDecided)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(raw) != 8:
		return 0, fmt.Errorf("last decided height has %d bytes", len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

// DecidedAt returns the height of the consensus block that made block
// height of this validator-set instance (0 for genesis) and the side
// digest after it (zero without side records): the header of the next
// consensus block carries their app hash (certify.AppHashOver), so a commit
// of that header certifies the block, and so does one of any later header
// before the next block while no side record is written.
func (in *Instance) DecidedAt(height uint64) (uint64, [32]byte, error) {
	var at uint64
	var side [32]byte
	if height == 0 {
		return 0, side, nil
	}
	err := in.db.View(func(txn *badger.Txn) error {
		raw, err := getValue(txn, decidedKey(decidedBlock, u64(height)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("no decided block made block %d", height)
		}
		if err != nil {
			return err
		}
		switch len(raw) {
		case 8 + 32:
			side = [32]byte(raw[8:])
		case 8:
		default:
			return fmt.Errorf("decided height of block %d has %d bytes", height, len(raw))
		}
		at = binary.BigEndian.Uint64(raw)
		return nil
	})
	if err != nil {
		return 0, side, fmt.Errorf("fractal: %w", err)
	}
	return at, side, nil
}

// MisbehaviorRecord is one record of validator misbehaviour a consensus
// engine reported with the block at Height.
type MisbehaviorRecord struct {
	Height uint64 // the engine's height of the block that reported it
	Record []byte // as the engine's adapter encoded it
}

// Misbehavior returns every misbehaviour record stored, in the order of
// the blocks that reported them.
func (in *Instance) Misbehavior() ([]MisbehaviorRecord, error) {
	var out []MisbehaviorRecord
	err := in.db.View(func(txn *badger.Txn) error {
		return badgerdb.KV{Txn: txn}.Scan(decidedKey(decidedMisbehavior), func(k, v []byte) error {
			if len(k) != 2+8+4 {
				return fmt.Errorf("misbehaviour key %x is malformed", k)
			}
			out = append(out, MisbehaviorRecord{Height: binary.BigEndian.Uint64(k[2:]), Record: append([]byte(nil), v...)})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: misbehaviour: %w", err)
	}
	return out, nil
}

// SelectBlock is the Propose stage for a consensus engine: of candidates
// (raw transactions from its mempool, in arrival order) the ones the next
// block takes, in order. It skips what does not decode and what repeats
// an earlier candidate, and stops before the first that would take the
// block past max_block_txs transactions, past max_block_gas of gas limits
// (decision 093), or that fits refuses (the engine's own byte budget).
func (in *Instance) SelectBlock(candidates [][]byte, fits func(raw []byte) bool) [][]byte {
	var out [][]byte
	var gas uint64
	seen := make(map[notes.Hash]bool, len(candidates))
	for _, raw := range candidates {
		if len(out) == in.cfg.MaxBlockTxs {
			break
		}
		var g uint64
		// An encrypted transaction takes no gas here: its transaction runs
		// when its batch opens.
		if _, _, _, ok, _ := deployed(raw); !ok && !isEncryptedTx(raw) && !isDKGTx(raw) {
			tx, err := phases.DecodeTx(raw)
			if err != nil || seen[tx.ID()] {
				continue
			}
			seen[tx.ID()], g = true, tx.GasLimit
		}
		if gas+g > in.cfg.MaxBlockGas || !fits(raw) {
			break
		}
		gas += g
		out = append(out, raw)
	}
	return out
}

// CheckProposal is the check of a block another validator proposed
// (CometBFT's ProcessProposal): nil when every validator can execute it
// as decided. It refuses more than max_block_txs transactions, gas limits
// adding up past max_block_gas, a deploy whose code does not compile, and
// a transaction that does not decode, breaks the instance's limits,
// repeats one of the block, was executed before, or is not signed by each
// of its signers (checked for those verified does not report). It writes
// nothing.
func (in *Instance) CheckProposal(txs [][]byte, verified func(raw []byte) bool) error {
	if len(txs) > in.cfg.MaxBlockTxs {
		return fmt.Errorf("fractal: proposal of %d transactions, max_block_txs %d", len(txs), in.cfg.MaxBlockTxs)
	}
	var gas uint64
	var unverified []*phases.Tx
	var at []int
	seen := make(map[notes.Hash]bool, len(txs))
	err := in.db.View(func(view *badger.Txn) error {
		for i, raw := range txs {
			if isEncryptedTx(raw) || isDKGTx(raw) {
				continue // checked when executed: a bad one is refused alone
			}
			if _, _, _, ok, err := deployed(raw); ok {
				if err != nil {
					return fmt.Errorf("transaction %d: deploy: %w", i, err)
				}
				continue
			}
			tx, err := in.decodeDecided(view, raw, seen)
			if err != nil {
				return fmt.Errorf("transaction %d: %w", i, err)
			}
			if gas += tx.GasLimit; gas > in.cfg.MaxBlockGas {
				return fmt.Errorf("gas limits add up past max_block_gas %d at transaction %d", in.cfg.MaxBlockGas, i)
			}
			if verified == nil || !verified(raw) {
				unverified, at = append(unverified, tx), append(at, i)
			}
		}
		return nil
	})
	if err == nil {
		for k, e := range phases.VerifyAll(unverified) {
			if e != nil {
				err = fmt.Errorf("transaction %d: %w", at[k], e)
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("fractal: proposal: %w", err)
	}
	return nil
}
