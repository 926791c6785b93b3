package fractal

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// RelayResult says what a relay did.
type RelayResult struct {
	Pending  int               // exports from the source to the destination not imported before
	Imported [][32]byte        // export IDs imported now, in outbox order
	Refused  []*phases.Receipt // receipts of the import transactions the destination refused
}

// Relay moves every pending export of from addressed to to: for each one
// to has not imported, it builds the claim (proven against from's head
// block), queues the import transaction signed by signer on to, and seals
// until the queue is empty. Running it again imports nothing twice: exports
// already imported are skipped, and a repeated claim is refused by the
// import index. It refuses a source whose genesis block is not the one the
// destination's trust file names.
func Relay(ctx context.Context, from, to *Instance, signer keys.PrivateKey) (*RelayResult, error) {
	p, err := to.peer(from.ID())
	if err != nil {
		return nil, fmt.Errorf("fractal: relay: %w", err)
	}
	if p == nil {
		return nil, fmt.Errorf("fractal: relay: instance %x is not in the destination's trust file (fractal peers add)", from.ID())
	}
	g, err := from.Block(0)
	if err != nil {
		return nil, fmt.Errorf("fractal: relay: %w", err)
	}
	if g.Hash() != p.Genesis {
		return nil, fmt.Errorf("fractal: relay: the source's genesis block is %x, the trust file names %x", g.Hash(), p.Genesis)
	}
	dest := to.ID()
	recs, err := from.Exports(&dest)
	if err != nil {
		return nil, fmt.Errorf("fractal: relay: %w", err)
	}
	res := &RelayResult{}
	var txs []*phases.Tx
	ids := map[[32]byte][32]byte{} // tx ID → export ID
	for _, rec := range recs {
		done, err := to.Imported(rec.ID())
		if err != nil {
			return nil, fmt.Errorf("fractal: relay: %w", err)
		}
		if done {
			continue
		}
		c, err := from.ExportClaim(rec)
		if err != nil {
			return nil, fmt.Errorf("fractal: relay: %w", err)
		}
		tx := chain.ImportTx(c, signer.Public())
		if err := tx.Sign(rand.Reader, signer); err != nil {
			return nil, fmt.Errorf("fractal: relay: %w", err)
		}
		txs = append(txs, tx)
		ids[tx.ID()] = rec.ID()
	}
	res.Pending = len(txs)
	if len(txs) == 0 {
		return res, nil
	}
	for i, err := range to.SubmitAll(txs) {
		if err != nil {
			return nil, fmt.Errorf("fractal: relay: export %x: %w", ids[txs[i].ID()], err)
		}
	}
	for {
		s, err := to.Seal(ctx)
		if err != nil {
			return nil, fmt.Errorf("fractal: relay: %w", err)
		}
		if len(s.Receipts) == 0 {
			return res, nil
		}
		for _, rc := range s.Receipts {
			id, ours := ids[rc.TxID]
			switch {
			case !ours:
			case rc.Status == phases.Accepted:
				res.Imported = append(res.Imported, id)
			default:
				res.Refused = append(res.Refused, rc)
			}
		}
	}
}
