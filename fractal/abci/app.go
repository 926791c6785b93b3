// Package abci is Fractal as an ABCI 2.0 application for CometBFT v0.38:
// a validator-set instance (fractal.InitValidatorSet) driven by the
// consensus engine through the block lifecycle's stages (decision 120):
//
//	CheckTx          admission (Instance.CheckPending; a recheck after each block: Instance.Recheck)
//	PrepareProposal  Propose: the next block from the mempool's candidates (Instance.SelectBlock)
//	ProcessProposal  a proposal's check (Instance.CheckProposal): accept or reject, never an error
//	FinalizeBlock    Execute (Instance.ExecuteDecided): one result per transaction, the app hash
//	Commit           Commit (Decision.Commit): one atomic write, unsigned
//	Info, InitChain  what a restarting validator replays from; the genesis checked against the store
//	Query            notes with proofs and export claims, certified by a consensus commit
//
// No error caused by a transaction, a proposal or a query ever reaches
// CometBFT (it would halt consensus on this validator): they become
// refusal codes, REJECT or a query's code. An error is returned only when
// the store fails, after Fatal was told so that the validator stops.
package abci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Result codes of CheckTx and of a transaction in FinalizeBlock. A
// transaction refused in phases 1–3 or in admission has its receipt's
// phase as code (phases.PhaseAdmission … phases.PhaseValidity).
const (
	CodeOK         = abcitypes.CodeTypeOK
	CodeMalformed  = 10 // bytes that are neither a transaction nor a deploy
	CodeDeploy     = 11 // a deploy whose code does not compile or is too large
	CodeRefused    = 12 // CheckTx: refused admission to the mempool
	CodeRecheck    = 13 // CheckTx: dropped from the mempool after a block
	CodeDKG        = 14 // FinalizeBlock: a DKG transaction not recorded (decision 162)
	CodeBadRequest = 20 // Query: bad path or data
	CodeUnknown    = 21 // Query: nothing there
)

// Codespace is the codespace of every non-zero code.
const Codespace = "fractal"

// Certificates finds what certifies the state after a consensus height:
// the signed header of the next height and a commit for it (package
// fractal/validator reads them from CometBFT's block store).
type Certificates interface {
	// Certificate returns the certificate of the state after height h,
	// whose side digest is side (fractal.Instance.DecidedAt), and the
	// height of the header it holds; it waits, within ctx, for that header
	// to be committed.
	Certificate(ctx context.Context, h int64, side [32]byte) ([]byte, int64, error)
}

// Committed is what Commit reports for each block.
type Committed struct {
	Height int64           // the consensus height
	Sealed *fractal.Sealed // the Fractal block made (nil Block when none) and the receipts
	// Unrun are the receipts of the block's transactions refused before
	// they ran (fractal.Decision.Unrun), not among Sealed's.
	Unrun []*phases.Receipt
	// Took is how long the block's execution (FinalizeBlock) and its
	// commit took on this validator: its seal time, for metrics only.
	Took time.Duration
}

// App is the application. Its methods are safe for concurrent use: CometBFT
// calls them from its mempool, consensus and query connections at once
// (proxy.NewConnSyncLocalClientCreator).
type App struct {
	abcitypes.BaseApplication
	in *fractal.Instance

	// Fatal is told about a store failure, after which this validator
	// cannot go on honestly; the validator stops. Nil ignores it.
	Fatal func(error)
	// OnCommit is called after each block is committed. Nil ignores it.
	OnCommit func(Committed)

	mu       sync.Mutex
	pending  map[[32]byte]*fractal.Pending // admitted since the last commit, or kept by its recheck
	previous map[[32]byte]*fractal.Pending // admitted before the last commit and not yet rechecked
	proposed map[[32]byte]bool             // checked in a proposal at this height
	decision *fractal.Decision             // executed by FinalizeBlock, committed by Commit
	executed time.Duration                 // how long FinalizeBlock took to execute decision
	included [][32]byte                    // the hashes of the decision's raw transactions
	results  []heightResults               // the last few heights' results, for a divergence report
	certs    Certificates
	voteState
}

var _ abcitypes.Application = (*App)(nil)

// New returns the application over in, a validator-set instance.
func New(in *fractal.Instance) (*App, error) {
	if in.Validators() == nil {
		return nil, errors.New("abci: not a validator-set instance")
	}
	a := &App{in: in, pending: map[[32]byte]*fractal.Pending{}, previous: map[[32]byte]*fractal.Pending{}, proposed: map[[32]byte]bool{}}
	a.voteState.reset()
	return a, nil
}

// SetCertificates gives Query its source of certificates (the node's block
// store exists only once the node is made, after the handshake).
func (a *App) SetCertificates(c Certificates) {
	a.mu.Lock()
	a.certs = c
	a.mu.Unlock()
}

// Info tells a (re)starting CometBFT how far this application got: the
// last decided height it committed and the app hash after it. CometBFT
// replays the blocks after it from its own store.
func (a *App) Info(context.Context, *abcitypes.RequestInfo) (*abcitypes.ResponseInfo, error) {
	h, hash, err := a.in.Decided()
	if err != nil {
		return nil, a.fail(err)
	}
	res := &abcitypes.ResponseInfo{Data: "fractal", Version: "1", AppVersion: 1, LastBlockHeight: int64(h)}
	if h > 0 {
		res.LastBlockAppHash = hash[:]
	}
	return res, nil
}

// InitChain checks that CometBFT's genesis is this instance's: the chain ID
// (certify.ChainID), the validators (their set's hash) and the app state
// (the instance's trust entry and threshold key, as fractal devnet writes
// them: CheckAppState). It returns
// the genesis block's hash as the first app hash. A refusal stops the
// validator at start, before any block.
func (a *App) InitChain(_ context.Context, req *abcitypes.RequestInitChain) (*abcitypes.ResponseInitChain, error) {
	id := a.in.ID()
	if want := certify.ChainID(id); req.ChainId != want {
		return nil, fmt.Errorf("abci: genesis chain ID %q, this instance's is %q", req.ChainId, want)
	}
	vals, err := types.PB2TM.ValidatorUpdates(req.Validators)
	if err != nil {
		return nil, fmt.Errorf("abci: genesis validators: %w", err)
	}
	if got, want := types.NewValidatorSet(vals).Hash(), a.in.Validators().Hash(); !bytes.Equal(got, want[:]) {
		return nil, fmt.Errorf("abci: the genesis validators hash to %X, this instance's set to %X", got, want)
	}
	st, err := CheckAppState(req.AppStateBytes, a.in)
	if err != nil {
		return nil, fmt.Errorf("abci: %w", err)
	}
	return &abcitypes.ResponseInitChain{AppHash: st.Trust.Genesis[:]}, nil
}

// CheckTx admits a transaction into the mempool (fractal's Check stage) or,
// after a block, rechecks one that waits (cheaply: no signature or proof
// again). A refusal is a non-zero code with the reason as log.
func (a *App) CheckTx(ctx context.Context, req *abcitypes.RequestCheckTx) (*abcitypes.ResponseCheckTx, error) {
	h := sha256.Sum256(req.Tx)
	if req.Type == abcitypes.CheckTxType_Recheck {
		a.mu.Lock()
		p := a.previous[h]
		delete(a.previous, h)
		a.mu.Unlock()
		if p != nil {
			if err := a.in.Recheck(ctx, p); err != nil {
				return refuse(CodeRecheck, err), nil
			}
			return a.admitted(h, p), nil
		}
	}
	p, err := a.in.CheckPending(ctx, req.Tx)
	if err != nil {
		return refuse(CodeRefused, err), nil
	}
	return a.admitted(h, p), nil
}

func (a *App) admitted(h [32]byte, p *fractal.Pending) *abcitypes.ResponseCheckTx {
	a.mu.Lock()
	a.pending[h] = p
	a.mu.Unlock()
	return &abcitypes.ResponseCheckTx{Code: CodeOK, GasWanted: int64(p.GasLimit())}
}

func refuse(code uint32, err error) *abcitypes.ResponseCheckTx {
	return &abcitypes.ResponseCheckTx{Code: code, Log: err.Error(), Codespace: Codespace}
}

// verified reports a raw transaction whose signatures this validator
// checked: admitted to its mempool, or in a proposal it checked.
func (a *App) verified(raw []byte) bool {
	h := sha256.Sum256(raw)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[h] != nil || a.previous[h] != nil || a.proposed[h]
}

// PrepareProposal is the Propose stage: the mempool's candidates, in
// order, within max_block_txs, max_block_gas and CometBFT's byte budget
// measured as CometBFT measures it.
func (a *App) PrepareProposal(_ context.Context, req *abcitypes.RequestPrepareProposal) (*abcitypes.ResponsePrepareProposal, error) {
	budget := req.MaxTxBytes
	tx0, err := a.proposeShares(req)
	if err != nil {
		return nil, a.fail(err)
	}
	var txs [][]byte
	// The shares first (decision 161); more than the block holds cannot be
	// proposed (CometBFT would halt), and the others reject the proposal.
	if size := types.ComputeProtoSizeForTxs([]types.Tx{tx0}); tx0 != nil && size <= budget {
		budget -= size
		txs = [][]byte{tx0}
	}
	txs = append(txs, a.in.SelectBlock(req.Txs, func(raw []byte) bool {
		size := types.ComputeProtoSizeForTxs([]types.Tx{raw})
		if size > budget {
			return false
		}
		budget -= size
		return true
	})...)
	return &abcitypes.ResponsePrepareProposal{Txs: txs}, nil
}

// ProcessProposal accepts a proposal every validator can execute as
// decided (Instance.CheckProposal) and rejects any other.
func (a *App) ProcessProposal(_ context.Context, req *abcitypes.RequestProcessProposal) (*abcitypes.ResponseProcessProposal, error) {
	if err := a.checkProposalShares(req); err != nil {
		return &abcitypes.ResponseProcessProposal{Status: abcitypes.ResponseProcessProposal_REJECT}, nil
	}
	_, rest := splitShares(req.Txs)
	if err := a.in.CheckProposal(rest, a.verified); err != nil {
		return &abcitypes.ResponseProcessProposal{Status: abcitypes.ResponseProcessProposal_REJECT}, nil
	}
	a.mu.Lock()
	a.blocks[string(req.Hash)] = req.Txs
	for _, raw := range req.Txs {
		a.proposed[sha256.Sum256(raw)] = true
	}
	a.mu.Unlock()
	return &abcitypes.ResponseProcessProposal{Status: abcitypes.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock is the Execute stage for the decided block: one result per
// transaction (code, the state root after it as data, gas), the
// misbehaviour CometBFT reports kept for the commit, and the app hash of
// the head manifest after the block. Nothing is committed before Commit.
func (a *App) FinalizeBlock(ctx context.Context, req *abcitypes.RequestFinalizeBlock) (*abcitypes.ResponseFinalizeBlock, error) {
	a.mu.Lock()
	if a.decision != nil { // a block executed and never committed: CometBFT moved on
		a.decision.Discard()
		a.decision = nil
	}
	a.mu.Unlock()
	var records [][]byte
	for _, m := range req.Misbehavior {
		records = append(records, EncodeMisbehavior(m))
	}
	tx0, txs := splitShares(req.Txs)
	shares, err := a.sharesOf(req.Height, tx0)
	if err != nil {
		return nil, a.fail(err)
	}
	start := time.Now()
	dc, err := a.in.ExecuteDecided(ctx, &fractal.DecidedBlock{Height: uint64(req.Height), Txs: txs, Misbehavior: records, Verified: a.verified, Shares: shares})
	if err != nil {
		return nil, a.fail(err)
	}
	executed := time.Since(start)
	res := &abcitypes.ResponseFinalizeBlock{AppHash: dc.AppHash[:]}
	var tx0Result *abcitypes.ExecTxResult
	if tx0 != nil {
		tx0Result = sharesResult(shares)
		res.TxResults = append(res.TxResults, tx0Result)
	}
	for i := range dc.Results {
		res.TxResults = append(res.TxResults, txResult(&dc.Results[i]))
	}
	if b := dc.Sealed; b != nil && b.Block != nil {
		h := b.Block.Hash()
		res.Events = []abcitypes.Event{{Type: "fractal.block", Attributes: []abcitypes.EventAttribute{
			{Key: "height", Value: fmt.Sprint(b.Block.Height)}, {Key: "hash", Value: hex.EncodeToString(h[:])}}}}
	}
	if e := dc.Expired; e != nil {
		res.Events = append(res.Events, abcitypes.Event{Type: "fractal.expired", Attributes: []abcitypes.EventAttribute{
			{Key: "batch", Value: fmt.Sprint(e.Encrypted.Batch.Number)}, {Key: "payloads", Value: fmt.Sprint(len(e.Receipts))}}})
	}
	if r := dc.Epoch; r != nil {
		res.Events = append(res.Events, epochEvent(r))
	}
	included := make([][32]byte, len(req.Txs))
	for i, raw := range req.Txs {
		included[i] = sha256.Sum256(raw)
	}
	a.mu.Lock()
	a.decision, a.included, a.executed = dc, included, executed
	a.remember(req.Height, dc, tx0Result)
	a.mu.Unlock()
	return res, nil
}

// txResult is one transaction's ExecTxResult. Its code, data and gas are
// what CometBFT hashes into the next header (LastResultsHash): the data
// of an accepted transaction is the state root after it, so that
// validators that disagree can name the first transaction they differ on.
func txResult(r *fractal.DecidedResult) *abcitypes.ExecTxResult {
	switch {
	case r.Deployed != nil:
		return &abcitypes.ExecTxResult{Code: CodeOK, Data: r.Deployed[:], Events: []abcitypes.Event{{Type: "fractal.deploy",
			Attributes: []abcitypes.EventAttribute{{Key: "code", Value: hex.EncodeToString(r.Deployed[:])}}}}}
	case r.Deploy:
		return &abcitypes.ExecTxResult{Code: CodeDeploy, Log: r.Refused.Error(), Codespace: Codespace}
	case r.DKG && r.Envelope == nil:
		return &abcitypes.ExecTxResult{Code: CodeDKG, Log: r.Refused.Error(), Codespace: Codespace}
	case r.DKG:
		return &abcitypes.ExecTxResult{Code: CodeOK, Events: []abcitypes.Event{{Type: "fractal.dkg", Attributes: []abcitypes.EventAttribute{
			{Key: "kind", Value: r.Envelope.Kind.String()}, {Key: "keyholder", Value: fmt.Sprint(r.Envelope.From)}}}}}
	case r.Encrypted != nil:
		return &abcitypes.ExecTxResult{Code: CodeOK, Events: []abcitypes.Event{{Type: "fractal.encrypted",
			Attributes: []abcitypes.EventAttribute{{Key: "payload", Value: hex.EncodeToString(r.Encrypted[:])}}}}}
	case r.Tx == nil:
		return &abcitypes.ExecTxResult{Code: CodeMalformed, Log: r.Refused.Error(), Codespace: Codespace}
	}
	rc := r.Receipt
	out := &abcitypes.ExecTxResult{GasWanted: int64(r.Tx.GasLimit), GasUsed: int64(rc.Gas.Total()), Events: []abcitypes.Event{{Type: "fractal.tx",
		Attributes: []abcitypes.EventAttribute{{Key: "id", Value: hex.EncodeToString(rc.TxID[:])}, {Key: "status", Value: rc.Status.String()}}}}}
	if rc.Status == phases.Accepted {
		out.Data = r.Root[:]
		return out
	}
	out.Code, out.Log, out.Codespace = uint32(rc.Phase), rc.Reason, Codespace
	return out
}

// epochEvent names what a DKG attempt decided: the epoch, the attempt, and
// the key made with the height it takes force, or why none was.
func epochEvent(r *fractal.EpochRecord) abcitypes.Event {
	attrs := []abcitypes.EventAttribute{{Key: "epoch", Value: fmt.Sprint(r.Epoch)}, {Key: "attempt", Value: fmt.Sprint(r.Attempt)}}
	if r.Key == nil {
		attrs = append(attrs, abcitypes.EventAttribute{Key: "failure", Value: r.Failure})
	} else {
		id := r.Key.ID()
		attrs = append(attrs, abcitypes.EventAttribute{Key: "key", Value: hex.EncodeToString(id[:])}, abcitypes.EventAttribute{Key: "start", Value: fmt.Sprint(r.Start)})
	}
	return abcitypes.Event{Type: "fractal.epoch", Attributes: attrs}
}

// Commit is the Commit stage: the block's one atomic write. The mempool's
// waiting transactions are rechecked after it (CheckTx), each against the
// new state.
func (a *App) Commit(ctx context.Context, _ *abcitypes.RequestCommit) (*abcitypes.ResponseCommit, error) {
	a.mu.Lock()
	dc, took := a.decision, a.executed
	a.decision = nil
	a.mu.Unlock()
	if dc == nil {
		return nil, a.fail(errors.New("commit without a finalized block"))
	}
	start := time.Now()
	s, err := dc.Commit(ctx)
	if err != nil {
		return nil, a.fail(err)
	}
	took += time.Since(start)
	a.mu.Lock()
	a.afterCommit()
	a.voteState.reset()
	a.mu.Unlock()
	if a.OnCommit != nil {
		a.OnCommit(Committed{Height: int64(dc.Height), Sealed: s, Unrun: dc.Unrun(), Took: took})
	}
	return &abcitypes.ResponseCommit{}, nil
}

// afterCommit readies the admitted transactions for the rechecks that
// follow a commit, which move them back to pending. The block's own are
// dropped: CometBFT removes them from its mempool without a recheck, so
// nothing else would. The caller holds a.mu.
func (a *App) afterCommit() {
	for _, h := range a.included {
		delete(a.pending, h)
		delete(a.previous, h)
	}
	for h, p := range a.pending {
		a.previous[h] = p
	}
	a.pending, a.proposed, a.included = map[[32]byte]*fractal.Pending{}, map[[32]byte]bool{}, nil
}

// fail tells Fatal about err and returns it: the store failed.
func (a *App) fail(err error) error {
	if a.Fatal != nil {
		a.Fatal(err)
	}
	return err
}

// Query paths.
const (
	// PathProve answers with the query proof (chain.QueryProof, certified)
	// of the state key given as data in its text form.
	PathProve = "/fractal/prove"
	// PathClaim answers with the claim (chain.Claim, certified) of the
	// export whose 32-byte ID is the data.
	PathClaim = "/fractal/claim"
)

// Query serves proofs and claims, each with the certificate of a
// consensus commit, so that anyone holding the instance's validator set
// checks them offline. The response's height is the certificate's header.
func (a *App) Query(ctx context.Context, req *abcitypes.RequestQuery) (*abcitypes.ResponseQuery, error) {
	bad := func(code uint32, err error) (*abcitypes.ResponseQuery, error) {
		return &abcitypes.ResponseQuery{Code: code, Log: err.Error(), Codespace: Codespace}, nil
	}
	var value []byte
	var height int64
	var err error
	switch req.Path {
	case PathProve:
		k, perr := notes.ParseStateKey(string(req.Data))
		if perr != nil {
			return bad(CodeBadRequest, perr)
		}
		qp, perr := a.in.Prove(k)
		if perr != nil {
			return bad(CodeUnknown, perr)
		}
		if qp.Certificate, height, err = a.certificate(ctx, qp.Block.Height); err == nil {
			value = qp.Encode()
		}
	case PathClaim:
		if len(req.Data) != 32 {
			return bad(CodeBadRequest, fmt.Errorf("a claim query's data is a 32-byte export ID, not %d bytes", len(req.Data)))
		}
		c, cerr := a.in.ClaimFor([32]byte(req.Data))
		if cerr != nil {
			return bad(CodeUnknown, cerr)
		}
		if c.Certificate, height, err = a.certificate(ctx, c.Manifest.Height); err == nil {
			value = c.Encode()
		}
	default:
		return bad(CodeBadRequest, fmt.Errorf("unknown query path %q (%s, %s)", req.Path, PathProve, PathClaim))
	}
	if err != nil {
		return bad(CodeUnknown, err)
	}
	return &abcitypes.ResponseQuery{Code: CodeOK, Key: req.Data, Value: value, Height: height}, nil
}

// certificate returns the certificate of the instance's block at height:
// a commit of the consensus header after the block that made it.
func (a *App) certificate(ctx context.Context, height uint64) ([]byte, int64, error) {
	a.mu.Lock()
	certs := a.certs
	a.mu.Unlock()
	if certs == nil {
		return nil, 0, errors.New("no certificates yet: the node is starting")
	}
	at, side, err := a.in.DecidedAt(height)
	if err != nil {
		return nil, 0, err
	}
	return certs.Certificate(ctx, int64(at), side)
}
