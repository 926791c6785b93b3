package abci

import (
	"bytes"
	"fmt"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/notes"
)

// keptHeights is how many heights' results the application remembers for
// a divergence report: a validator learns that it diverged at height h when
// the others' header of h+1 arrives.
const keptHeights = 16

// TxSummary is what one transaction's result was on this validator: its
// ID (zero for a deploy or undecodable bytes) and the consensus-critical
// part of its ExecTxResult.
type TxSummary struct {
	ID        notes.Hash
	Code      uint32
	Data      []byte
	GasWanted int64
	GasUsed   int64
}

type heightResults struct {
	height int64
	txs    []TxSummary
}

// remember keeps dc's results for height, after the shares
// transaction's when the block has one (decision 161). Caller holds mu.
func (a *App) remember(height int64, dc *fractal.Decision, shares *abcitypes.ExecTxResult) {
	hr := heightResults{height: height}
	if shares != nil {
		hr.txs = append(hr.txs, TxSummary{Code: shares.Code})
	}
	for i := range dc.Results {
		r := &dc.Results[i]
		e := txResult(r)
		s := TxSummary{Code: e.Code, Data: e.Data, GasWanted: e.GasWanted, GasUsed: e.GasUsed}
		if r.Tx != nil {
			s.ID = r.Tx.ID()
		}
		hr.txs = append(hr.txs, s)
	}
	if len(a.results) == keptHeights {
		a.results = a.results[1:]
	}
	a.results = append(a.results, hr)
}

// Results returns this validator's results at height, false when it does
// not remember them.
func (a *App) Results(height int64) ([]TxSummary, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, hr := range a.results {
		if hr.height == height {
			return hr.txs, true
		}
	}
	return nil, false
}

// FirstDifference compares this validator's results at one height with
// the network's (ExecTxResults as another validator's block_results
// reports them) transaction by transaction, as fractal verify compares a
// replay with the stored block: it names the first transaction whose
// code, state root (data) or gas differ, or says that the results agree
// (then the app hash alone differs: a write beside the transactions, such
// as a batch record or an epoch record, decision 174).
func FirstDifference(mine []TxSummary, theirs []*abcitypes.ExecTxResult) string {
	if len(mine) != len(theirs) {
		return fmt.Sprintf("%d results here, %d in the network's", len(mine), len(theirs))
	}
	for i, m := range mine {
		t := theirs[i]
		what := ""
		switch {
		case m.Code != t.Code:
			what = fmt.Sprintf("code %d here, %d in the network's", m.Code, t.Code)
		case !bytes.Equal(m.Data, t.Data):
			what = fmt.Sprintf("state root after it %x here, %x in the network's", m.Data, t.Data)
		case m.GasWanted != t.GasWanted || m.GasUsed != t.GasUsed:
			what = fmt.Sprintf("gas %d/%d here, %d/%d in the network's", m.GasUsed, m.GasWanted, t.GasUsed, t.GasWanted)
		default:
			continue
		}
		return fmt.Sprintf("transaction %d (%x): %s", i, m.ID, what)
	}
	return "every transaction's result agrees; the app hash differs (the manifest, or the encrypted-mempool and epoch records the block wrote)"
}
