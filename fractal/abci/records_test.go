package abci

import (
	"bytes"
	"strings"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
)

func sampleMisbehavior() abcitypes.Misbehavior {
	return abcitypes.Misbehavior{Type: abcitypes.MisbehaviorType_DUPLICATE_VOTE,
		Validator: abcitypes.Validator{Address: bytes.Repeat([]byte{0xab}, 20), Power: 10},
		Height:    5, Time: time.Unix(1_700_000_000, 7).UTC(), TotalVotingPower: 40}
}

// TestMisbehaviorRecord: a record reads back what CometBFT reported; an
// unknown type or version is refused.
func TestMisbehaviorRecord(t *testing.T) {
	raw := EncodeMisbehavior(sampleMisbehavior())
	m, err := DecodeMisbehavior(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Misbehavior{Type: "duplicate vote", Validator: bytes.Repeat([]byte{0xab}, 20), Power: 10, Height: 5, Time: time.Unix(1_700_000_000, 7).UTC(), TotalPower: 40}
	if !bytes.Equal(m.Validator, want.Validator) || m.Type != want.Type || m.Power != 10 || m.Height != 5 || !m.Time.Equal(want.Time) || m.TotalPower != 40 {
		t.Fatalf("%+v", m)
	}
	bad := append([]byte(nil), raw...)
	bad[1] = 9
	if _, err := DecodeMisbehavior(bad); err == nil || !strings.Contains(err.Error(), "unknown type 9") {
		t.Fatalf("type 9: %v", err)
	}
	bad[0], bad[1] = 2, raw[1]
	if _, err := DecodeMisbehavior(bad); err == nil || !strings.Contains(err.Error(), "unknown version 2") {
		t.Fatalf("version 2: %v", err)
	}
}

// TestFirstDifference names the first transaction whose result differs.
func TestFirstDifference(t *testing.T) {
	mine := []TxSummary{{ID: [32]byte{1}, Data: []byte{1}}, {ID: [32]byte{2}, Data: []byte{2}, GasUsed: 5}}
	same := []*abcitypes.ExecTxResult{{Data: []byte{1}}, {Data: []byte{2}, GasUsed: 5}}
	if got := FirstDifference(mine, same); got != "every transaction's result agrees; the app hash differs (the manifest, or the encrypted-mempool and epoch records the block wrote)" {
		t.Fatal(got)
	}
	other := []*abcitypes.ExecTxResult{{Data: []byte{1}}, {Data: []byte{3}, GasUsed: 5}}
	if got := FirstDifference(mine, other); !strings.HasPrefix(got, "transaction 1 (0200") || !strings.HasSuffix(got, "): state root after it 02 here, 03 in the network's") {
		t.Fatal(got)
	}
	if got := FirstDifference(mine, other[:1]); got != "2 results here, 1 in the network's" {
		t.Fatal(got)
	}
}

func FuzzDecodeMisbehavior(f *testing.F) {
	f.Add(EncodeMisbehavior(sampleMisbehavior()))
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeMisbehavior(data) // must not panic
	})
}
