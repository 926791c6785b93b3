package fractal

import (
	"context"
	"errors"
	"testing"

	"github.com/fractalvm/fractal/tfhe/dkg"
)

// TestDKGEnvelopesCutWithTheBlock: a DKG envelope past the point where a
// decided block's writes stop fitting is refused like a transaction there
// (ErrBlockWritesTooLarge, not recorded) and recorded by a later block.
// Before, envelopes were recorded whatever fitted: up to 2 × 3 envelopes
// of 32 KiB per keyholder and up to 256 keyholders could pass the bound of
// one block's writes alone (decision 176: 85 faulty keyholders of 256 in
// one round-3 block), and no cut could bring the block back under it, so
// every validator's FinalizeBlock failed: the chain stopped.
func TestDKGEnvelopesCutWithTheBlock(t *testing.T) {
	f := newEpochFixture(t)
	for h := uint64(2); h <= 6; h++ {
		decide(t, f.in, h, nil)
	}
	st, err := f.in.Epochs()
	if err != nil || st.Round != 1 {
		t.Fatalf("status at 6: %+v %v", st, err)
	}
	p, err := dkg.NewParty(st.Session, f.ks[0])
	if err != nil {
		t.Fatal(err)
	}
	deal, err := p.Start()
	if err != nil {
		t.Fatal(err)
	}
	raw := DKGTx(deal.Encode())
	dc := decide(t, f.in, 7, nil, append(megabyteTxs(f.fixture), raw)...)
	r := dc.Results[len(dc.Results)-1]
	if !r.DKG || r.Envelope != nil || !errors.Is(r.Refused, ErrBlockWritesTooLarge) {
		t.Fatalf("an envelope after the cut: recorded %v, refused %v; want refused with %v", r.Envelope != nil, r.Refused, ErrBlockWritesTooLarge)
	}
	if got, err := f.in.DKGEnvelopes(st.Session.ID()); err != nil || len(got) != 0 {
		t.Fatalf("envelopes recorded after the cut: %d %v", len(got), err)
	}
	if _, err := f.in.CheckPending(context.Background(), raw); err != nil {
		t.Fatalf("the envelope sent again: %v", err)
	}
	if r := decide(t, f.in, 8, nil, raw).Results[0]; r.Envelope == nil || r.Refused != nil {
		t.Fatalf("the envelope in the next block: %+v", r)
	}
	if got, err := f.in.DKGEnvelopes(st.Session.ID()); err != nil || len(got) != 1 || got[0].Hash() != deal.Hash() {
		t.Fatalf("envelopes recorded: %d %v, want the deal", len(got), err)
	}
}
