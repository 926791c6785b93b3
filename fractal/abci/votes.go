package abci

// The validators as keyholders (decision 161): ExtendVote, VerifyVoteExtension,
// and the shares' part in PrepareProposal, ProcessProposal and FinalizeBlock.
// None returns an error to CometBFT for anything a validator or proposer
// sent: a failure to make shares gives the empty extension, bad input is
// REJECT.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/libs/protoio"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/tfhe"
)

// voteState is what the App keeps for its shares between the calls of a
// height; reset at each Commit.
type voteState struct {
	shares     map[[32]byte]*tfhe.KeyShare      // this validator's, by key ID (one per epoch it holds)
	shareCache map[[32]byte][]*tfhe.ShareBatch  // valid shares by shares transaction hash
	after      map[string]*fractal.WaitingBatch // batch waiting after a block, by block hash
	blocks     map[string][][]byte              // proposals processed at this height, by hash
}

func (v *voteState) reset() {
	v.shareCache, v.after, v.blocks = map[[32]byte][]*tfhe.ShareBatch{}, map[string]*fractal.WaitingBatch{}, map[string][][]byte{}
}

// AddKeyShare gives this validator its own share of a threshold key
// (HOME/keyholder/epoch-E/share.key): its precommits then carry its
// shares for the batches fixed under that key (decision 162: a batch
// fixed under the key of an epoch that ended still opens with its shares).
func (a *App) AddKeyShare(sk *tfhe.KeyShare) {
	a.mu.Lock()
	if a.shares == nil {
		a.shares = map[[32]byte]*tfhe.KeyShare{}
	}
	a.shares[sk.PK.ID()] = sk
	a.mu.Unlock()
}

// DropKeyShare forgets this validator's share of the key with this ID.
func (a *App) DropKeyShare(id [32]byte) {
	a.mu.Lock()
	delete(a.shares, id)
	a.mu.Unlock()
}

// shareFor is this validator's share of the key with this ID, nil when it
// holds none.
func (a *App) shareFor(id [32]byte) *tfhe.KeyShare {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.shares[id]
}

// keyholderOf returns the keyholder index (1-based position in the stored
// validator set, decision 160) and consensus key of the validator at addr.
func (a *App) keyholderOf(addr []byte) (int, certify.Validator, bool) {
	for i, v := range a.in.Validators().Validators() {
		if bytes.Equal(v.Address(), addr) {
			return i + 1, v, true
		}
	}
	return 0, certify.Validator{}, false
}

// splitShares separates a block's first transaction when it is a shares
// transaction.
func splitShares(txs [][]byte) (tx0 []byte, rest [][]byte) {
	if len(txs) > 0 && isSharesTx(txs[0]) {
		return txs[0], txs[1:]
	}
	return nil, txs
}

// validShares returns, ascending by keyholder, the share batches of ec's
// Commit votes that are valid for w: the extension is for height h−1 and
// w, from the voter's keyholder index, every proof holding. It is a pure
// function of its inputs (and the stored set); results are cached by the
// shares transaction's hash.
func (a *App) validShares(h int64, ec *abcitypes.ExtendedCommitInfo, w *fractal.WaitingBatch) []*tfhe.ShareBatch {
	var out []*tfhe.ShareBatch
	for _, v := range ec.Votes {
		if v.BlockIdFlag != cmtproto.BlockIDFlagCommit || len(v.VoteExtension) == 0 {
			continue
		}
		idx, _, ok := a.keyholderOf(v.Validator.Address)
		if !ok {
			continue
		}
		if e, err := a.checkExtension(h-1, idx, v.VoteExtension, w); err == nil && e != nil {
			out = append(out, e.Shares)
		}
	}
	slices.SortFunc(out, func(x, y *tfhe.ShareBatch) int { return x.Index - y.Index })
	return out
}

// checkExtension checks a non-empty extension of keyholder idx's precommit
// for the block at height h, after which w waits (nil: none waits).
func (a *App) checkExtension(h int64, idx int, raw []byte, w *fractal.WaitingBatch) (*Extension, error) {
	if w == nil {
		return nil, errors.New("an extension with shares, but no encrypted batch waits")
	}
	e, err := DecodeExtension(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case e.Height != h:
		return nil, fmt.Errorf("extension for height %d, the vote is for %d", e.Height, h)
	case e.Batch != w.Record.Hash():
		return nil, fmt.Errorf("extension for another batch than batch %d", w.Record.Number)
	case e.Shares.Index != idx:
		return nil, fmt.Errorf("keyholder %d's shares in validator %d's vote", e.Shares.Index, idx)
	}
	return e, w.CheckShares(e.Shares)
}

// checkExtendedCommit checks a proposal's shares transaction against the
// block's last commit: the same round and votes (addresses, powers, flags,
// in order), so that no Commit vote's extension is left out; every
// extension of a Commit vote signed by its validator over
// CanonicalVoteExtension{extension, h−1, round, chain ID}; none on other
// votes.
func (a *App) checkExtendedCommit(h int64, ec *abcitypes.ExtendedCommitInfo, lc abcitypes.CommitInfo) error {
	if ec.Round != lc.Round || len(ec.Votes) != len(lc.Votes) {
		return fmt.Errorf("the shares transaction holds %d votes of round %d, the last commit %d of round %d", len(ec.Votes), ec.Round, len(lc.Votes), lc.Round)
	}
	chainID := certify.ChainID(a.in.ID())
	for i, v := range ec.Votes {
		l := lc.Votes[i]
		if !bytes.Equal(v.Validator.Address, l.Validator.Address) || v.Validator.Power != l.Validator.Power || v.BlockIdFlag != l.BlockIdFlag {
			return fmt.Errorf("vote %d differs from the last commit's", i)
		}
		if v.BlockIdFlag != cmtproto.BlockIDFlagCommit {
			if len(v.VoteExtension) != 0 || len(v.ExtensionSignature) != 0 {
				return fmt.Errorf("vote %d: an extension on a vote that is not a commit", i)
			}
			continue
		}
		_, val, ok := a.keyholderOf(v.Validator.Address)
		if !ok {
			return fmt.Errorf("vote %d: validator %X is not in the set", i, v.Validator.Address)
		}
		msg, err := protoio.MarshalDelimited(&cmtproto.CanonicalVoteExtension{Extension: v.VoteExtension, Height: h - 1, Round: int64(ec.Round), ChainId: chainID})
		if err != nil {
			return err
		}
		if !val.CometKey().VerifySignature(msg, v.ExtensionSignature) {
			return fmt.Errorf("vote %d: the extension's signature does not hold", i)
		}
	}
	return nil
}

// sharesOf returns the valid share batches a block's shares transaction
// carries for the batch waiting before it (nil when none waits or tx0 is
// nil or malformed), cached by the transaction's hash.
func (a *App) sharesOf(h int64, tx0 []byte) ([]*tfhe.ShareBatch, error) {
	if tx0 == nil {
		return nil, nil
	}
	key := sha256.Sum256(tx0)
	a.mu.Lock()
	got, ok := a.shareCache[key]
	a.mu.Unlock()
	if ok {
		return got, nil
	}
	w, err := a.in.Waiting()
	if err != nil || w == nil {
		return nil, err
	}
	ec, err := DecodeSharesTx(tx0)
	if err != nil {
		return nil, nil
	}
	got = a.validShares(h, ec, w)
	a.mu.Lock()
	a.shareCache[key] = got
	a.mu.Unlock()
	return got, nil
}

// proposeShares is PrepareProposal's first transaction: when a batch
// waits, every vote of the last commit with its extension and signature
// (CometBFT checked the signatures; the shares are checked by everyone
// when the block is processed and executed). It returns nil when no batch
// waits.
func (a *App) proposeShares(req *abcitypes.RequestPrepareProposal) ([]byte, error) {
	w, err := a.in.Waiting()
	if err != nil || w == nil {
		return nil, err
	}
	return EncodeSharesTx(&req.LocalLastCommit)
}

// checkProposalShares is ProcessProposal's check of the shares: when a
// batch waits, tx[0] must be a shares transaction matching the last commit
// (checkExtendedCommit); when none waits there must be none. Another
// shares transaction further in the block is refused.
func (a *App) checkProposalShares(req *abcitypes.RequestProcessProposal) error {
	tx0, rest := splitShares(req.Txs)
	if slices.ContainsFunc(rest, isSharesTx) {
		return errors.New("a shares transaction that is not the first")
	}
	w, err := a.in.Waiting()
	if err != nil {
		return err
	}
	switch {
	case w == nil && tx0 != nil:
		return errors.New("a shares transaction, but no encrypted batch waits")
	case w == nil:
		return nil
	case tx0 == nil:
		return fmt.Errorf("encrypted batch %d waits, and the proposal carries no shares transaction", w.Record.Number)
	}
	ec, err := DecodeSharesTx(tx0)
	if err != nil {
		return err
	}
	if err := a.checkExtendedCommit(req.Height, ec, req.ProposedLastCommit); err != nil {
		return err
	}
	_, err = a.sharesOf(req.Height, tx0)
	return err
}

// ExtendVote is this validator's extension for its precommit of block
// req.Height: its share batch for the encrypted batch waiting after that
// block, or the empty extension when none waits, it holds no share, or
// anything fails (an error here would halt consensus).
func (a *App) ExtendVote(ctx context.Context, req *abcitypes.RequestExtendVote) (*abcitypes.ResponseExtendVote, error) {
	empty := &abcitypes.ResponseExtendVote{}
	tx0, rest := splitShares(req.Txs)
	shares, err := a.sharesOf(req.Height, tx0)
	if err != nil {
		return empty, nil
	}
	w, err := a.in.BatchAfter(uint64(req.Height), rest, shares)
	if err != nil || w == nil {
		return empty, nil
	}
	sk := a.shareFor(w.Key.ID()) // the share of the key the batch names
	if sk == nil {
		return empty, nil
	}
	sb, err := tfhe.PartDecBatch(ctx, sk, w.Payloads)
	if err != nil {
		return empty, nil
	}
	a.rememberAfter(req.Hash, w)
	return &abcitypes.ResponseExtendVote{VoteExtension: EncodeExtension(&Extension{Height: req.Height, Batch: w.Record.Hash(), Shares: sb})}, nil
}

// rememberAfter keeps the batch waiting after the block with hash h, for the
// other validators' extensions of their precommits for it.
func (a *App) rememberAfter(h []byte, w *fractal.WaitingBatch) {
	a.mu.Lock()
	a.after[string(h)] = w
	a.mu.Unlock()
}

// VerifyVoteExtension checks another validator's extension for its
// precommit of block req.Height: ACCEPT the empty extension (a validator
// that cannot make shares still votes; its shares are then missing), or a
// share batch from its keyholder index for the batch waiting after that
// block whose every proof holds; REJECT anything else. For a block this
// validator did not process it checks the form only.
func (a *App) VerifyVoteExtension(_ context.Context, req *abcitypes.RequestVerifyVoteExtension) (*abcitypes.ResponseVerifyVoteExtension, error) {
	accept := &abcitypes.ResponseVerifyVoteExtension{Status: abcitypes.ResponseVerifyVoteExtension_ACCEPT}
	reject := &abcitypes.ResponseVerifyVoteExtension{Status: abcitypes.ResponseVerifyVoteExtension_REJECT}
	if len(req.VoteExtension) == 0 {
		return accept, nil
	}
	idx, _, ok := a.keyholderOf(req.ValidatorAddress)
	if !ok {
		return reject, nil
	}
	a.mu.Lock()
	w, known := a.after[string(req.Hash)]
	a.mu.Unlock()
	if !known {
		if txs, seen := a.processedBlock(req.Hash); seen {
			tx0, rest := splitShares(txs)
			shares, err := a.sharesOf(req.Height, tx0)
			if err == nil {
				w, err = a.in.BatchAfter(uint64(req.Height), rest, shares)
			}
			if err != nil {
				return reject, nil
			}
			a.rememberAfter(req.Hash, w)
			known = true
		}
	}
	if !known {
		if _, err := DecodeExtension(req.VoteExtension); err != nil {
			return reject, nil
		}
		return accept, nil
	}
	if _, err := a.checkExtension(req.Height, idx, req.VoteExtension, w); err != nil {
		return reject, nil
	}
	return accept, nil
}

// processedBlock returns the transactions of the proposal with hash h this
// validator processed at the current height.
func (a *App) processedBlock(h []byte) ([][]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	txs, ok := a.blocks[string(h)]
	return txs, ok
}

// sharesResult is the result of a block's shares transaction: code OK, the
// number of valid share batches it carried as an event; it runs nothing.
func sharesResult(shares []*tfhe.ShareBatch) *abcitypes.ExecTxResult {
	var who []byte
	for i, sb := range shares {
		if i > 0 {
			who = append(who, ',')
		}
		who = fmt.Appendf(who, "%d", sb.Index)
	}
	return &abcitypes.ExecTxResult{Code: CodeOK, Events: []abcitypes.Event{{Type: "fractal.shares",
		Attributes: []abcitypes.EventAttribute{{Key: "keyholders", Value: string(who)}}}}}
}
