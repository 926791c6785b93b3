package node

import (
	"sync"
	"time"
)

// bucket is a token bucket: up to size tokens, refilled at size per
// period. A size of 0 gives nothing.
type bucket struct {
	mu     sync.Mutex
	size   float64
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(size int64, period time.Duration) *bucket {
	return &bucket{size: float64(size), rate: float64(size) / period.Seconds(), tokens: float64(size), last: time.Now(), now: time.Now}
}

// take takes n tokens if the bucket holds them.
func (b *bucket) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.size, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if float64(n) > b.tokens {
		return false
	}
	b.tokens -= float64(n)
	return true
}
