package phases

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

func sampleTx(t testing.TB, signers ...keys.PrivateKey) *Tx {
	tx := &Tx{
		Nonce: 9, GasLimit: 50_000,
		Read:        notes.ConstraintSet{mustPattern(t, "*/*/*/6b*")},
		Write:       notes.ConstraintSet{mustPattern(t, "/"+strings.Repeat("ab", 32)+"/*/*")},
		Lookup:      []byte("return {}"),
		Calculation: []byte("return {}"),
		Extradata:   []byte{0, 1, 2},
	}
	for _, k := range signers {
		tx.Signers = append(tx.Signers, k.Public())
	}
	return tx
}

func TestTxRoundTripAndID(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	tx := sampleTx(t, a, b)
	unsignedID := tx.ID()
	signed(t, tx, a, b)
	if tx.ID() != unsignedID {
		t.Fatal("signing changed the ID")
	}
	enc := tx.Encode()
	back, err := DecodeTx(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), enc) || back.ID() != unsignedID {
		t.Fatal("encoding did not round-trip")
	}
	if err := back.VerifySignatures(); err != nil {
		t.Fatal(err)
	}
	tx2 := sampleTx(t, a, b)
	tx2.Nonce++
	if tx2.ID() == unsignedID {
		t.Fatal("nonce does not change the ID")
	}
	// An unsigned transaction decodes with no signatures.
	u, err := DecodeTx(sampleTx(t, a).Encode())
	if err != nil || u.Signatures != nil {
		t.Fatalf("unsigned decode: %v %v", u, err)
	}
}

func TestVerifySignaturesRefusals(t *testing.T) {
	a, b, c := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	cases := []struct {
		name string
		tx   func() *Tx
		want string
	}{
		{"no signers", func() *Tx { return sampleTx(t) }, "transaction lists no signers"},
		{"unsigned", func() *Tx { return sampleTx(t, a) }, "transaction is unsigned"},
		{"signer missing", func() *Tx { return signed(t, sampleTx(t, a, b), a) },
			"signer 2 (" + b.Public().String() + ") has not signed"},
		{"wrong signature", func() *Tx {
			tx := signed(t, sampleTx(t, a, b), a, b)
			tx.Signatures[0][5] ^= 1
			return tx
		}, "signature of signer 1 (" + a.Public().String() + ") does not verify"},
		{"changed after signing", func() *Tx {
			tx := signed(t, sampleTx(t, a), a)
			tx.GasLimit++
			return tx
		}, "signature of signer 1 (" + a.Public().String() + ") does not verify"},
		{"signed by another key", func() *Tx {
			tx := sampleTx(t, a)
			other := signed(t, sampleTx(t, c), c)
			tx.Signatures = other.Signatures
			return tx
		}, "signature of signer 1 (" + a.Public().String() + ") does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tx().VerifySignatures()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if err := sampleTx(t, a).Sign(bytes.NewReader(make([]byte, 64)), c); err == nil ||
		err.Error() != "phases: sign transaction: key "+c.Public().String()+" is not among the signers" {
		t.Fatalf("sign by a non-signer: %v", err)
	}
}

// TestSignAll: a transaction naming no signers gets the keys as its
// signers, in order, and is signed by all; one naming its signers keeps
// them, and a key not among them is refused.
func TestSignAll(t *testing.T) {
	a, b, c := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	rnd := rand.Reader
	tx := sampleTx(t)
	if err := tx.SignAll(rnd, []keys.PrivateKey{b, a}); err != nil {
		t.Fatal(err)
	}
	if len(tx.Signers) != 2 || tx.Signers[0] != b.Public() || tx.Signers[1] != a.Public() || tx.VerifySignatures() != nil {
		t.Fatalf("signers %v, verify %v", tx.Signers, tx.VerifySignatures())
	}
	named := sampleTx(t, a, b)
	if err := named.SignAll(rnd, []keys.PrivateKey{b, a}); err != nil || named.Signers[0] != a.Public() || named.VerifySignatures() != nil {
		t.Fatalf("named signers: %v, %v", err, named.Signers)
	}
	if err := sampleTx(t, a).SignAll(rnd, []keys.PrivateKey{a, c}); err == nil || !strings.Contains(err.Error(), "is not among the signers") {
		t.Fatalf("a key not among the signers: %v", err)
	}
}

func TestDecodeTxRefusals(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	good := signed(t, sampleTx(t, a), a).Encode()
	mutate := func(f func(tx *Tx)) []byte {
		tx := sampleTx(t, a, b)
		f(tx)
		return tx.Encode()
	}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "phases: decode transaction: truncated input"},
		{"version", append([]byte{3}, good[1:]...), "phases: decode transaction: unknown version 3"},
		{"version 1 read as 2", append([]byte{2}, good[1:]...), `phases: decode transaction: fee note: notes: state key: 1 parts, want 4 separated by "/"`},
		{"fee note with provenance", mutate(func(tx *Tx) {
			tx.Fee = &Fee{Price: 1, Note: notes.StateKey{Provenance: [][]byte{{1}}, Key: []byte("k")}}
		}), "phases: transaction: fee note 01/" + strings.Repeat("00", 32) + "/" + strings.Repeat("00", 32) + "/6b has provenance; a fee note is a note of this instance"},
		{"fee note not canonical", func() []byte {
			tx := sampleTx(t, a)
			tx.Fee = &Fee{Price: 1, Note: notes.StateKey{Key: []byte("k")}}
			b := tx.Encode()
			i := bytes.Index(b, []byte(tx.Fee.Note.String()))
			b[i+1] = 'A' // upper-case hex is not the canonical text
			return b
		}(), "phases: decode transaction: fee note: notes: state key: application: character 'A' is not lower-case hex"},
		{"gas price huge", mutate(func(tx *Tx) { tx.Fee = &Fee{Price: MaxGasPrice + 1, Note: notes.StateKey{Key: []byte("k")}} }),
			"phases: transaction: gas price 1000000001 exceeds the limit 1000000000"},
		{"truncated", good[:len(good)-1], "phases: decode transaction: truncated input"},
		{"trailing", append(append([]byte{}, good...), 0), "phases: decode transaction: 1 trailing bytes"},
		{"gas zero", mutate(func(tx *Tx) { tx.GasLimit = 0 }), "phases: transaction: gas limit 0 is outside 1..100000000"},
		{"gas huge", mutate(func(tx *Tx) { tx.GasLimit = MaxGasLimit + 1 }), "phases: transaction: gas limit 100000001 is outside 1..100000000"},
		{"repeated signer", mutate(func(tx *Tx) { tx.Signers[1] = tx.Signers[0] }),
			"phases: transaction: signer 2 (" + a.Public().String() + ") repeats signer 1"},
		{"code not utf-8", mutate(func(tx *Tx) { tx.Lookup = []byte{0xff} }), "phases: transaction: lookup code is not UTF-8 text"},
		{"code too long", mutate(func(tx *Tx) { tx.Calculation = bytes.Repeat([]byte("-"), MaxCode+1) }),
			"phases: decode transaction: calculation code: length 65537 exceeds limit 65536"},
		{"too many signers", mutate(func(tx *Tx) {
			tx.Signers = nil
			for i := 0; i <= MaxSigners; i++ {
				tx.Signers = append(tx.Signers, testKey(t, byte(10+i)).Public())
			}
		}), "phases: decode transaction: signers: count 17 exceeds limit 16"},
		{"short signature", mutate(func(tx *Tx) { tx.Signatures = [][]byte{{1, 2, 3}, nil} }),
			"phases: transaction: signature 1: 3 bytes, want 64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := DecodeTx(tc.b)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, %v; want %q", tx, err, tc.want)
			}
		})
	}
}

// TestTxFeeFormat: a transaction without a fee keeps version 1, its
// encoding and its ID (the golden ID below was computed before fees
// existed); one with a fee is version 2, round-trips in binary and JSON, and
// its fee is covered by the ID.
func TestTxFeeFormat(t *testing.T) {
	a := testKey(t, 1)
	tx := sampleTx(t, a)
	if id := tx.ID(); hex.EncodeToString(id[:]) != "2cc0c1d1092f756da975cd39f851ef2b0cc710840e6c0ad817786c9ffdb4fb94" || tx.Encode()[0] != TxVersion {
		t.Fatalf("a transaction without a fee changed: version %d, ID %x", tx.Encode()[0], id)
	}
	fee := &Fee{Note: notes.StateKey{Application: notes.Hash{1}, Owner: notes.Hash{2}, Key: []byte("k")}, Price: 3}
	paying := sampleTx(t, a)
	paying.Fee = fee
	signed(t, paying, a)
	b := paying.Encode()
	if b[0] != TxVersionFee || paying.ID() == tx.ID() {
		t.Fatalf("version %d, ID %x", b[0], paying.ID())
	}
	back, err := DecodeTx(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), b) || back.Fee.Price != fee.Price || !back.Fee.Note.Equal(fee.Note) || back.VerifySignatures() != nil {
		t.Fatalf("fee round trip: %+v", back.Fee)
	}
	dearer := *paying
	dearer.Fee = &Fee{Note: fee.Note, Price: 4}
	if dearer.ID() == paying.ID() || dearer.VerifySignatures() == nil {
		t.Fatal("the price is not covered by the ID")
	}
	j, err := paying.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"fee_note":"/0100000000000000000000000000000000000000000000000000000000000000/0200000000000000000000000000000000000000000000000000000000000000/6b","gas_price":3`) {
		t.Fatalf("JSON: %s", j)
	}
	fromJSON, err := ParseJSON(bytes.NewReader(j), "")
	if err != nil || !bytes.Equal(fromJSON.Encode(), b) {
		t.Fatalf("JSON round trip: %v", err)
	}
}

func FuzzDecodeTx(f *testing.F) {
	a := testKey(f, 1)
	f.Add(signed(f, sampleTx(f, a), a).Encode())
	withFee := sampleTx(f, a)
	withFee.Fee = &Fee{Note: notes.StateKey{Key: []byte("fee")}, Price: 2}
	f.Add(signed(f, withFee, a).Encode())
	f.Add(sampleTx(f).Encode())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTx(b)
		if err != nil {
			return
		}
		// Whatever decodes is canonical and survives the JSON form.
		if !bytes.Equal(tx.Encode(), b) {
			t.Fatal("decoded transaction re-encodes differently")
		}
		j, err := tx.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseJSON(bytes.NewReader(j), "")
		if err != nil {
			t.Fatalf("own JSON refused: %v", err)
		}
		if !bytes.Equal(back.Encode(), b) {
			t.Fatal("JSON round trip changed the transaction")
		}
	})
}
