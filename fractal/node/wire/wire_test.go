package wire

import (
	"reflect"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"google.golang.org/protobuf/proto"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
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

// compactOf is a compact block of one transaction of each bundle version,
// two outputs each, with recognisable bytes.
func compactOf() *wallet.CompactBlock {
	cm := []fr.Element{fr.NewElement(1), fr.NewElement(2)}
	sealed := make([][shielded.SealedSize]byte, 2)
	sealed[0][0], sealed[1][143] = 3, 4
	return &wallet.CompactBlock{Header: &chain.Block{Height: 1}, Txs: []wallet.CompactTx{
		{ID: [32]byte{1}, Asset: "x", Nullifiers: cm, Commitments: cm, Ciphertexts: shielded.Ciphertexts{
			Version: shielded.BundleV1, EPKs: [][32]byte{{5}, {6}}, Sealed: sealed}},
		{ID: [32]byte{2}, Asset: "y", Nullifiers: cm, Commitments: cm, Ciphertexts: shielded.Ciphertexts{
			Version: shielded.BundleV2, EPKs: [][32]byte{{7}}, Tags: []byte{8, 9}, Sealed: sealed}},
	}}
}

// TestCompactBlockVersions: a compact block carries a version-1
// transaction as before (176-byte ciphertexts, no ephemeral key field) and
// a version-2 one with its ephemeral key once, its view tags and 144-byte
// sealed notes; both read back as they were. A version-2 transaction of
// the wrong shape is refused with what is wrong.
func TestCompactBlockVersions(t *testing.T) {
	cb := compactOf()
	m := CompactBlock(cb)
	t1, t2 := m.Transactions[0], m.Transactions[1]
	if len(t1.Ciphertexts[0]) != 176 || t1.Ciphertexts[1][0] != 6 || len(t1.EphemeralKey) != 0 || len(t1.ViewTags) != 0 {
		t.Fatalf("version-1 transaction: ciphertexts of %d bytes, ephemeral key %x, tags %x", len(t1.Ciphertexts[0]), t1.EphemeralKey, t1.ViewTags)
	}
	if len(t2.Ciphertexts[0]) != 144 || t2.EphemeralKey[0] != 7 || string(t2.ViewTags) != "\x08\x09" {
		t.Fatalf("version-2 transaction: ciphertexts of %d bytes, ephemeral key %x, tags %x", len(t2.Ciphertexts[0]), t2.EphemeralKey, t2.ViewTags)
	}
	back, err := ToCompactBlock(m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Txs, cb.Txs) {
		t.Fatalf("read back %+v, want %+v", back.Txs, cb.Txs)
	}
	for _, c := range []struct {
		name string
		f    func(*v1.CompactShieldedTransaction)
		want string
	}{
		{"short ephemeral key", func(x *v1.CompactShieldedTransaction) { x.EphemeralKey = x.EphemeralKey[:31] }, "an ephemeral key of 31 bytes, want 32"},
		{"view tags without an ephemeral key", func(x *v1.CompactShieldedTransaction) { x.EphemeralKey = nil }, "an ephemeral key of 0 bytes, want 32"},
		{"one view tag for two outputs", func(x *v1.CompactShieldedTransaction) { x.ViewTags = x.ViewTags[:1] }, "version-2 ciphertexts of 2 outputs with 1 ephemeral keys, 1 view tags"},
		{"a version-1 ciphertext", func(x *v1.CompactShieldedTransaction) { x.Ciphertexts[1] = make([]byte, 176) }, "a version-2 ciphertext of 176 bytes, want 144"},
	} {
		m := CompactBlock(compactOf())
		c.f(m.Transactions[1])
		if _, err := ToCompactBlock(m); err == nil || !strings.Contains(err.Error(), "compact block 1, transaction 1: "+c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzToCompactBlock(f *testing.F) {
	b := &chain.Block{Height: 1}
	raw, _ := proto.Marshal(CompactBlock(&wallet.CompactBlock{Header: b, Txs: []wallet.CompactTx{{Asset: "x"}}}))
	f.Add(raw)
	raw, _ = proto.Marshal(CompactBlock(compactOf()))
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
			if err := tx.Ciphertexts.Check(len(tx.Commitments)); err != nil {
				t.Fatalf("accepted a transaction whose ciphertexts do not fit its commitments: %v", err)
			}
		}
		if again, err := ToCompactBlock(CompactBlock(cb)); err != nil || again.Header.Hash() != cb.Header.Hash() || !reflect.DeepEqual(again.Txs, cb.Txs) {
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
