package release

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/internal/nodetest"
)

// pollOnly is a node whose event stream serve does not see: it polls.
type pollOnly struct{ Node }

// BenchmarkOpenThroughNode: one encrypted payload submitted through a
// real node (block time 10 ms) until its batch is opened, with three of
// four keyholders serving. "stream" follows the node's event stream (and
// would poll once an hour); "poll-100ms" only polls, every 100 ms. The
// figure is the time from submission to the outcome being readable.
func BenchmarkOpenThroughNode(b *testing.B) {
	ki := newKeyedInstance(b)
	khs := ki.khs[:3]
	cfg := nodetest.Config()
	cfg.BlockTime = node.Duration(10 * time.Millisecond)
	n := nodetest.Start(b, ki.home, cfg)
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
				id := ki.submit(b, n, "payload "+strconv.Itoa(seq))
				nodetest.WaitFor(b, 30*time.Second, "the batch to open", opened(b, n, id))
			}
		})
	}
}
