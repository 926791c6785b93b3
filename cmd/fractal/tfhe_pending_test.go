package main

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
)

// TestPendingOnAValidatorSet: tfhe pending on a validator set's waiting
// batch (decision 164) says that it waits for shares, its key, the height
// that fixed it, k and n, the height it expires at and the blocks left,
// and the keyholders whose valid shares the last shares transaction
// carried, or that none came yet; as text and as JSON.
func TestPendingOnAValidatorSet(t *testing.T) {
	b := &chain.EncryptedBatch{Number: 2, Key: [32]byte{0xab, 0xcd}, PayloadIDs: [][32]byte{{0x01}}}
	waiting := &fractal.EncryptedStatus{Batch: b, State: fractal.BatchWaiting, Needed: 3, Shares: []int{1, 2},
		Chain: &fractal.ChainWait{FixedAt: 12, ExpiresAt: 18, Decided: 14, SharesAt: 14}}
	fresh := &fractal.EncryptedStatus{Batch: b, State: fractal.BatchWaiting, Needed: 3, Shares: []int{},
		Chain: &fractal.ChainWait{FixedAt: 12, ExpiresAt: 18, Decided: 12}}
	key := "abcd000000000000000000000000000000000000000000000000000000000000"
	slot := "  slot 0 payload 0100000000000000000000000000000000000000000000000000000000000000\n"
	for _, c := range []struct {
		name string
		st   *fractal.EncryptedStatus
		json bool
		want string
	}{
		{"shares of k−1", waiting, false, "encrypted batch 2 waits for shares: 1 payloads fixed at height 12, key " + key + ", k 3 of n 4\n" +
			"expires at height 18 unless k keyholders' shares open it: 4 blocks after height 14\n" +
			"the shares transaction at height 14 carried valid shares of keyholders 1, 2 (2 of 3 needed)\n" + slot},
		{"no shares yet", fresh, false, "encrypted batch 2 waits for shares: 1 payloads fixed at height 12, key " + key + ", k 3 of n 4\n" +
			"expires at height 18 unless k keyholders' shares open it: 6 blocks after height 12\n" +
			"no shares transaction for it yet\n" + slot},
		{"json", waiting, true, `{
  "batch": {
    "batch": 2,
    "state": "waiting",
    "payloads": [
      "0100000000000000000000000000000000000000000000000000000000000000"
    ],
    "commitment": "` + commitmentHex(b) + `",
    "shares": [
      1,
      2
    ],
    "needed": 3
  },
  "not_yet": [
    3,
    4
  ],
  "queued": 0,
  "chain": {
    "key": "` + key + `",
    "n": 4,
    "fixed_at": 12,
    "expires_at": 18,
    "decided": 14,
    "blocks_left": 4,
    "shares_at": 14
  }
}
`},
		{"none waits", nil, false, "no encrypted batch is waiting for shares\n0 encrypted transactions queued\n"},
	} {
		var out bytes.Buffer
		cmd := &cobra.Command{}
		cmd.SetOut(&out)
		flagJSON = c.json
		err := emitPending(cmd, c.st, 4, 0)
		flagJSON = false
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, out.String(), c.want)
		}
	}
}

func commitmentHex(b *chain.EncryptedBatch) string {
	c := b.Commitment()
	return hex.EncodeToString(c[:])
}
