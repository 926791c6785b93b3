package wire

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
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

// feeReceipt is an accepted receipt that paid a fee with change and
// labelled its second output.
func feeReceipt(t testing.TB) *phases.Receipt {
	k, err := notes.ParseStateKey("/" + Hex([32]byte{1}) + "/" + Hex([32]byte{2}) + "/6b")
	if err != nil {
		t.Fatal(err)
	}
	return &phases.Receipt{
		TxID: [32]byte{9}, Status: phases.Accepted, Gas: phases.Gas{Lookup: 1, Calculation: 2, Validity: 3},
		Outputs: []phases.NoteRef{{ID: [32]byte{5}, Key: k}, {ID: [32]byte{6}, Key: k}},
		Fee: &phases.FeePaid{Price: 3, Gas: 6, Amount: 18, Note: phases.NoteRef{ID: [32]byte{7}, Key: k},
			Paid: phases.NoteRef{ID: [32]byte{8}, Key: k}, Change: &phases.NoteRef{ID: [32]byte{10}, Key: k}},
		Labels: []phases.OutputLabel{{Output: 2, Label: "change:a"}},
	}
}

// The fee and the labels survive the trip, in the readable fields a
// client of the JSON API sees.
func TestReceiptFeeAndLabelsRoundTrip(t *testing.T) {
	rc := feeReceipt(t)
	m := Receipt(rc)
	if f := m.Fee; f.GasPrice != 3 || f.Gas != 6 || f.Amount != 18 || f.Note.Id != Hex([32]byte{7}) || f.Paid.Id != Hex([32]byte{8}) || f.Change.Id != Hex([32]byte{10}) {
		t.Fatalf("fee message %v", f)
	}
	if len(m.Labels) != 1 || m.Labels[0].Output != 2 || m.Labels[0].Label != "change:a" {
		t.Fatalf("labels %v", m.Labels)
	}
	back, err := ToReceipt(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Encode()) != string(rc.Encode()) {
		t.Fatalf("round trip: %+v\nwant %+v", back, rc)
	}
	rc.Fee.Change = nil
	if back, err = ToReceipt(Receipt(rc)); err != nil || back.Fee.Change != nil || string(back.Encode()) != string(rc.Encode()) {
		t.Fatalf("without change: %v %+v", err, back)
	}
}

// A node's fee or labels that the receipt format would refuse are refused
// where the client reads them, with the reason.
func TestToReceiptRefusesBadFeeAndLabels(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(m *v1.Receipt)
		want  string
	}{
		{"fee does not add up", func(m *v1.Receipt) { m.Fee.Amount = 17 }, "receipt: phases: decode receipt: fee 6 × 3 = 17 does not add up"},
		{"fee without note", func(m *v1.Receipt) { m.Fee.Note = nil }, `receipt: fee: note: note id: "" is not 64 hex digits`},
		{"bad change key", func(m *v1.Receipt) { m.Fee.Change.StateKey = "x" }, "receipt: fee: change: note state key: "},
		{"label past the outputs", func(m *v1.Receipt) { m.Labels[0].Output = 3 }, "receipt: phases: decode receipt: "},
		{"bad label", func(m *v1.Receipt) { m.Labels[0].Label = "a b" }, `receipt: phases: decode receipt: `},
		{"label too long", func(m *v1.Receipt) { m.Labels[0].Label = strings.Repeat("a", phases.MaxLabel+1) }, "receipt: phases: decode receipt: "},
		{"too many labels", func(m *v1.Receipt) {
			for range phases.MaxInputs + 2*phases.MaxOutputs + phases.MaxLogLines {
				m.Labels = append(m.Labels, m.Labels[0])
			}
		}, "receipt: 1027 refs, labels and log lines exceed the receipt format's limits"},
	} {
		m := Receipt(feeReceipt(t))
		c.spoil(m)
		_, err := ToReceipt(m)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q…", c.name, err, c.want)
		}
	}
}

// A transaction's fee offer and gas limit are readable beside its
// encoding.
func TestTransactionFeeOffer(t *testing.T) {
	k := feeReceipt(t).Outputs[0].Key
	tx := &phases.Tx{Nonce: 1, GasLimit: 500, Fee: &phases.Fee{Note: k, Price: 4}}
	m, err := Transaction(tx)
	if err != nil {
		t.Fatal(err)
	}
	if m.GasPrice != 4 || m.FeeNote != k.String() || m.GasLimit != 500 {
		t.Fatalf("fee offer %d %q %d", m.GasPrice, m.FeeNote, m.GasLimit)
	}
}

func FuzzToReceipt(f *testing.F) {
	raw, _ := proto.Marshal(Receipt(&phases.Receipt{TxID: [32]byte{1}, Status: phases.Accepted}))
	f.Add(raw)
	raw, _ = proto.Marshal(Receipt(feeReceipt(f)))
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

// TestChainWaitRoundTrip: where a validator set's waiting batch stands
// comes back as it went; a node's heights out of order are refused.
func TestChainWaitRoundTrip(t *testing.T) {
	for _, c := range []*fractal.ChainWait{{FixedAt: 5, ExpiresAt: 105, Decided: 7, SharesAt: 7}, {FixedAt: 5, ExpiresAt: 6, Decided: 5}} {
		got, err := ToChainWait(ChainWait(c))
		if err != nil || *got != *c {
			t.Fatalf("%+v came back %+v %v", c, got, err)
		}
	}
	if got, err := ToChainWait(nil); got != nil || err != nil {
		t.Fatalf("nil came back %+v %v", got, err)
	}
	for _, m := range []*v1.ChainWait{
		{FixedAt: 0, ExpiresAt: 4, Decided: 1},
		{FixedAt: 5, ExpiresAt: 5, Decided: 5},
		{FixedAt: 5, ExpiresAt: 9, Decided: 4},
		{FixedAt: 5, ExpiresAt: 9, Decided: 6, SharesAt: 7},
		{FixedAt: 5, ExpiresAt: 9, Decided: 6, SharesAt: 5},
	} {
		if _, err := ToChainWait(m); err == nil || !strings.HasPrefix(err.Error(), "chain wait: heights out of order") {
			t.Errorf("%v: %v", m, err)
		}
	}
}
