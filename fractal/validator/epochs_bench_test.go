package validator

import (
	"testing"
	"time"
)

// BenchmarkEpochDKG (make devnet-epochs) is the time an epoch's DKG takes
// on four validators (timeout_commit 1 s, as fractal devnet writes) with
// rounds of W = 5 heights and epochs of 3W+1 = 16, so that DKGs run back
// to back: each iteration waits from round 1's window opening (the
// commit before it) to the block at the end of round 3 deciding the key
// on v0. It reports seconds and heights per DKG.
func BenchmarkEpochDKG(b *testing.B) {
	const window = 5
	tn := newTestnet(b, 4, DevnetOptions{Encrypted: true, EpochBlocks: 3*window + 1, DKGWindow: window,
		TimeoutPropose: 3 * time.Second, TimeoutCommit: time.Second}, nil)
	in := tn.nodes[0].Instance()
	records := func() int {
		rs, err := in.EpochRecords()
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Key == nil {
				b.Fatalf("epoch %d: %s", r.Epoch, r.Failure)
			}
		}
		return len(rs)
	}
	var took time.Duration
	var heights uint64
	for range b.N {
		done := records()
		var start time.Time
		var from uint64
		tn.waitFor(5*time.Minute, "round 1 opens", func() bool {
			st, err := in.Epochs()
			if err != nil {
				b.Fatal(err)
			}
			start, from = time.Now(), st.Height
			return st.Round == 1 && records() == done
		})
		tn.waitFor(5*time.Minute, "the key is decided", func() bool { return records() > done })
		took += time.Since(start)
		heights += tn.decided(0) - from
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/dkg")
	b.ReportMetric(float64(heights)/float64(b.N), "heights/dkg")
}
