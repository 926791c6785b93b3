package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// A receipt survives the trip through its message, field for field.
func TestReceiptRoundTrip(t *testing.T) {
	k, err := notes.ParseStateKey("/" + Hex([32]byte{1}) + "/" + Hex([32]byte{2}) + "/6b")
	if err != nil {
		t.Fatal(err)
	}
	rc := &phases.Receipt{
		TxID: [32]byte{9}, Status: phases.Refused, Phase: phases.PhaseValidity,
		Predicate: phases.Predicate{Role: phases.RoleInput, Index: 2, Code: [32]byte{3}}, Reason: "no",
		Gas: phases.Gas{Lookup: 1, Calculation: 2, Validity: 3}, Inputs: []phases.NoteRef{{ID: [32]byte{4}, Key: k}},
		Outputs: []phases.NoteRef{{ID: [32]byte{5}, Key: k}}, Log: []string{"a", "b"},
	}
	back, err := ToReceipt(Receipt(rc))
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Encode()) != string(rc.Encode()) {
		t.Fatalf("round trip: %+v\nwant %+v", back, rc)
	}
}

func FuzzToReceipt(f *testing.F) {
	raw, _ := proto.Marshal(Receipt(&phases.Receipt{TxID: [32]byte{1}, Status: phases.Accepted}))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m v1.Receipt
		if proto.Unmarshal(raw, &m) != nil {
			return
		}
		rc, err := ToReceipt(&m)
		if err != nil {
			return
		}
		again, err := ToReceipt(Receipt(rc))
		if err != nil || string(again.Encode()) != string(rc.Encode()) {
			t.Fatalf("an accepted receipt does not round-trip: %v", err)
		}
	})
}

func FuzzToCompactBlock(f *testing.F) {
	b := &chain.Block{Height: 1}
	raw, _ := proto.Marshal(CompactBlock(&wallet.CompactBlock{Header: b, Txs: []wallet.CompactTx{{Asset: "x"}}}))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m v1.CompactBlock
		if proto.Unmarshal(raw, &m) != nil {
			return
		}
		cb, err := ToCompactBlock(&m)
		if err != nil {
			return
		}
		for _, tx := range cb.Txs {
			if len(tx.Ciphertexts) != len(tx.Commitments) {
				t.Fatal("accepted a transaction with a ciphertext count unlike its commitments'")
			}
		}
		if again, err := ToCompactBlock(CompactBlock(cb)); err != nil || again.Header.Hash() != cb.Header.Hash() {
			t.Fatalf("an accepted compact block does not round-trip: %v", err)
		}
	})
}
