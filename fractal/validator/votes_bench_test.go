package validator

import (
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/phases"
)

// BenchmarkEncryptedLatency (make devnet-latency) is the latency an
// encrypted transfer adds on four validators with a threshold key
// (timeout_commit 1 s, as fractal devnet writes): each iteration hands a
// plain transfer to v0 and waits for its receipt there, then an encrypted
// one, ordered at a height and opened at the next with the precommits'
// shares. It reports both, submit to receipt, in ms.
func BenchmarkEncryptedLatency(b *testing.B) {
	tn := newTestnet(b, 4, DevnetOptions{Encrypted: true, TimeoutPropose: 3 * time.Second, TimeoutCommit: time.Second}, nil)
	pk, id := tn.devn.ThresholdKey, tn.devn.Trust.ID
	w := tn.mintedWorld(0)
	in := tn.nodes[0].Instance()
	// timed hands raw to v0 and waits for tx's receipt there.
	timed := func(raw []byte, tx *phases.Tx) time.Duration {
		start := time.Now()
		tn.submit(0, raw)
		for {
			if rc, err := in.Receipt(tx.ID()); err == nil && rc != nil {
				if rc.Status != phases.Accepted {
					b.Fatalf("refused: %s", rc.Reason)
				}
				return time.Since(start)
			}
			if time.Since(start) > time.Minute {
				b.Fatal("no receipt after a minute")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var plain, encrypted time.Duration
	at := "coin"
	b.ResetTimer()
	for i := range b.N {
		next := "p" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		tx := w.tx(b, at, next, "1")
		plain += timed(tx.Encode(), tx)
		at, next = next, "e"+next[1:]
		tx = w.tx(b, at, next, "1")
		p, err := fractal.EncryptTx(pk, id, tx)
		if err != nil {
			b.Fatal(err)
		}
		encrypted += timed(fractal.EncryptedTx(p.Encode()), tx)
		at = next
	}
	b.StopTimer()
	b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "plain-ms/tx")
	b.ReportMetric(float64(encrypted.Milliseconds())/float64(b.N), "encrypted-ms/tx")
}
