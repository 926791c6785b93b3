package fractal

import (
	"bytes"
	"context"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// FuzzDKGTx: any bytes after the DKG magic are refused by the decoder or
// decode to an envelope that encodes back to the same bytes; CheckTx's
// admission, in round 1's window of a validator set with epochs, never
// panics and admits only an envelope of the DKG's session that decodes
// to the same bytes.
func FuzzDKGTx(f *testing.F) {
	ef := newEpochFixture(f)
	for h := uint64(2); h <= 6; h++ {
		decide(f, ef.in, h, nil)
	}
	st, err := ef.in.Epochs()
	if err != nil || st.Round != 1 {
		f.Fatalf("status %+v %v", st, err)
	}
	p, err := dkg.NewParty(st.Session, ef.ks[0])
	if err != nil {
		f.Fatal(err)
	}
	deal, err := p.Start()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(DKGTx(deal.Encode()))
	f.Add(DKGTx(deal.Encode()[:40]))
	f.Add([]byte(dkgTxMagic + "\x02"))
	sid := st.Session.ID()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if e, err := DecodeDKGTx(raw); err == nil && !bytes.Equal(DKGTx(e.Encode()), raw) {
			t.Fatalf("%x decodes and encodes back to %x", raw, DKGTx(e.Encode()))
		}
		pd, err := ef.in.CheckPending(context.Background(), raw)
		if err != nil || pd.DKG == nil {
			return
		}
		if pd.DKG.Session != sid || !bytes.Equal(DKGTx(pd.DKG.Encode()), raw) {
			t.Fatalf("admitted %x as %+v", raw, pd.DKG)
		}
	})
}

// FuzzDecodeEpochRecord: any bytes are refused or decode to a record that
// encodes back to the same bytes.
func FuzzDecodeEpochRecord(f *testing.F) {
	f.Add((&EpochRecord{Epoch: 2, Qual: []int{1, 2}, Faults: []dkg.Fault{{Keyholder: 3, Reason: "deal left out"}}, Failure: "x"}).Encode())
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := DecodeEpochRecord(raw)
		if err != nil {
			return
		}
		if again := r.Encode(); !bytes.Equal(again, raw) {
			t.Fatalf("record %x encodes back to %x", raw, again)
		}
	})
}

// FuzzDecodeEpochRules: any bytes are refused or decode to rules that
// encode back to the same bytes.
func FuzzDecodeEpochRules(f *testing.F) {
	f.Add((&EpochRules{Blocks: 30, Window: 4, Keyholders: []keys.PublicKey{{1}, {2}}}).Encode())
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := DecodeEpochRules(raw)
		if err != nil {
			return
		}
		if again := r.Encode(); !bytes.Equal(again, raw) {
			t.Fatalf("rules %x encode back to %x", raw, again)
		}
	})
}
