package release

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fractalvm/fractal/tfhe/dkg"
)

// Follower is a Node that also streams the changes of its encrypted
// batches (the API's Watch stream).
type Follower interface {
	// Follow calls subscribed once no later change can be missed, then
	// changed for each change, until ctx ends or the stream breaks; it
	// returns why it ended.
	Follow(ctx context.Context, subscribed, changed func()) error
}

// ErrNoStream is Follow's error when the node serves no event stream.
var ErrNoStream = errors.New("the node serves no event stream")

// maxBackoff bounds the wait between two attempts to reach a node that
// fails.
const maxBackoff = 30 * time.Second

// streamNews is what the stream's goroutine tells Serve.
type streamNews struct {
	up  bool  // subscribed: follow the stream, step now
	err error // the stream broke (when !up); nil for a change
}

// Serve looks at the node's waiting batch, releases this keyholder's
// shares when it may, and writes a line to log whenever what it finds
// changes: shares released, a batch it waits on with the keyholders not
// yet in, a refusal, a node it cannot reach, the event stream followed or
// lost. It looks again as soon as the node's event stream (when node is a
// Follower) reports a change of the encrypted batches; while the stream is
// down, or after a look that failed, it looks every interval, backing off
// up to 30 s while looks fail. It returns when ctx ends
// (docs/decisions/135).
func (k *Keyholder) Serve(ctx context.Context, node Node, interval time.Duration, log func(string)) {
	news := make(chan streamNews, 16)
	if f, ok := node.(Follower); ok {
		go follow(ctx, f, interval, news)
	}
	say := func(line string) {
		if ctx.Err() == nil {
			log(line)
		}
	}
	following, last, wait := false, "", interval
	for {
		st, err := k.Step(ctx, node)
		if line := k.Describe(st, err); line != last {
			say(line)
			last = line
		}
		if err != nil {
			wait = min(2*wait, max(interval, maxBackoff))
		} else {
			wait = interval
		}
		if !k.await(ctx, news, &following, wait, err == nil, say) {
			return
		}
	}
}

// await waits for the next reason to look: a change on the stream, the
// stream subscribed or broken, or, unless following and quiet, wait. It
// returns false when ctx ends.
func (k *Keyholder) await(ctx context.Context, news <-chan streamNews, following *bool, wait time.Duration, quiet bool, say func(string)) bool {
	var poll <-chan time.Time
	if !*following || !quiet {
		t := time.NewTimer(wait)
		defer t.Stop()
		poll = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-poll:
	case n := <-news:
		switch {
		case n.up && !*following:
			say("following the node's event stream")
			*following = true
		case n.err != nil && (*following || errors.Is(n.err, ErrNoStream)):
			say(fmt.Sprintf("not following the event stream (%v); looking every %v", n.err, wait))
			*following = false
		}
	}
	return true
}

// follow keeps f's stream open until ctx ends, telling news when it is
// subscribed, of each change and of each break; after a break it tries
// again after a wait that starts at the shorter of interval and a second
// and doubles, up to 30 s, while the stream keeps breaking before it is
// subscribed. A node that serves no stream is reported once and not tried
// again.
func follow(ctx context.Context, f Follower, interval time.Duration, news chan<- streamNews) {
	interval = min(interval, time.Second)
	tell := func(n streamNews) {
		select {
		case news <- n:
		case <-ctx.Done():
		}
	}
	wait := interval
	for ctx.Err() == nil {
		up := false
		err := f.Follow(ctx,
			func() { up = true; wait = interval; tell(streamNews{up: true}) },
			func() {
				select {
				case news <- streamNews{}:
				default: // a look is due already
				}
			})
		if ctx.Err() != nil {
			return
		}
		tell(streamNews{err: err})
		if errors.Is(err, ErrNoStream) {
			return
		}
		if !up {
			wait = min(2*wait, maxBackoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Describe is one line for people about a Step's result.
func (k *Keyholder) Describe(s *Step, err error) string {
	if err != nil {
		return "refused or failed: " + err.Error()
	}
	switch s.State {
	case Idle:
		return "no encrypted batch waits for shares"
	case Released:
		return fmt.Sprintf("batch %d: released the shares of keyholder %d for %d payloads; %d of %d in, not yet: %s",
			s.Batch.Number, k.Share.Index, len(s.Batch.PayloadIDs), len(s.Shares), s.Needed, dkg.KeyholderList(s.NotYet(k.Share.PK.N)))
	}
	return fmt.Sprintf("batch %d: this keyholder's shares are in; %d of %d in, not yet: %s",
		s.Batch.Number, len(s.Shares), s.Needed, dkg.KeyholderList(s.NotYet(k.Share.PK.N)))
}
