package release

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/keyholder/keyholdertest"
)

// pollOnly is a node whose event stream serve does not see: it polls.
type pollOnly struct{ Node }

// BenchmarkOpenThroughNode: one encrypted payload submitted through a
// real node (block time 10 ms) until its batch is opened, with three of
// four keyholders serving. "stream" follows the node's event stream (and
// would poll once an hour); "poll-100ms" only polls, every 100 ms. The
// figure is the time from submission to the outcome being readable.
func BenchmarkOpenThroughNode(b *testing.B) {
	home := filepath.Join(b.TempDir(), "inst")
	in, err := fractal.Init(home, fractal.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	homes, _ := keyholdertest.DKG(b, in.ID(), 1, 4, 3)
	var khs []*Keyholder
	for _, h := range homes[:3] {
		k, err := Open(h, 1)
		if err != nil {
			b.Fatal(err)
		}
		khs = append(khs, k)
	}
	pk := khs[0].Share.PK
	if err := in.AttachThresholdKey(pk); err != nil {
		b.Fatal(err)
	}
	instance := in.ID()
	if err := in.Close(); err != nil {
		b.Fatal(err)
	}
	cfg := nodetest.Config()
	cfg.BlockTime = node.Duration(10 * time.Millisecond)
	n := nodetest.Start(b, home, cfg)
	api, err := DialAPI(n.URL)
	if err != nil {
		b.Fatal(err)
	}
	seq := 0
	for _, c := range []struct {
		name     string
		node     Node
		interval time.Duration
	}{{"stream", api, time.Hour}, {"poll-100ms", pollOnly{api}, 100 * time.Millisecond}} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(b.Context())
			var wg sync.WaitGroup
			for _, k := range khs {
				wg.Add(1)
				go func() { defer wg.Done(); k.Serve(ctx, c.node, c.interval, func(string) {}) }()
			}
			defer func() { cancel(); wg.Wait() }()
			time.Sleep(200 * time.Millisecond) // the keyholders follow the stream
			b.ResetTimer()
			for range b.N {
				seq++
				p, err := tfhe.Seal(pk, []byte("payload "+strconv.Itoa(seq)), fractal.EncryptedContext(instance))
				if err != nil {
					b.Fatal(err)
				}
				id, err := n.Client.SubmitEncrypted(b.Context(), p.Encode())
				if err != nil {
					b.Fatal(err)
				}
				nodetest.WaitFor(b, 30*time.Second, "the batch to open", func() bool {
					o, _, err := n.Client.EncryptedOutcome(b.Context(), id)
					return err == nil && o != nil
				})
			}
		})
	}
}
