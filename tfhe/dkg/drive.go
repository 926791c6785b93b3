package dkg

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Transport carries one keyholder's envelopes to the others and brings
// theirs, between processes: directly (tfhe/dkg/direct), through a node
// that keeps a mailbox of envelopes, or as transactions of a chain.
// Envelopes prove themselves, so a transport needs no authentication of its
// own and may deliver an envelope twice or from anyone.
type Transport interface {
	// Send hands e to every other keyholder without waiting; a transport
	// keeps trying in the background while the run lasts, and delivers one
	// sender's envelopes to each keyholder in the order they were sent.
	Send(e *Envelope)
	// Received delivers the envelopes that arrive, as received.
	Received() <-chan []byte
}

// DriveOptions tune Drive.
type DriveOptions struct {
	// RoundTimeout is how long a round waits for the other keyholders'
	// messages; the first round's wait also covers the others starting.
	RoundTimeout time.Duration
	// Log, if set, gets one line per event: a round ended (and who did not
	// answer), an envelope refused.
	Log func(line string)
	// Name, if set, names keyholder i in log lines and errors (with its
	// address, say); the default is "keyholder i".
	Name func(i int) string
}

// Drive runs party p to the end against t: it sends p's messages, feeds it
// what arrives, and ends each round when every other keyholder's message is
// in or RoundTimeout has passed, naming who did not answer. It returns p's
// Outcome (with an error saying why p holds no share, if it does not).
func Drive(ctx context.Context, p *Party, t Transport, opt DriveOptions) (*Outcome, error) {
	log := opt.Log
	if log == nil {
		log = func(string) {}
	}
	name := opt.Name
	if name == nil {
		name = func(i int) string { return fmt.Sprintf("keyholder %d", i) }
	}
	e, err := p.Start()
	if err != nil {
		return nil, err
	}
	t.Send(e)
	for !p.Done() {
		round := p.Round()
		start := time.Now()
		timer := time.NewTimer(opt.RoundTimeout)
	wait:
		for len(p.Missing()) > 0 {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, fmt.Errorf("dkg: round %d (%ss): %w", round, round, ctx.Err())
			case raw := <-t.Received():
				if _, _, err := p.Receive(raw); err != nil {
					log("refused: " + err.Error())
				}
			case <-timer.C:
				break wait
			}
		}
		timer.Stop()
		if missing := p.Missing(); len(missing) > 0 {
			names := make([]string, len(missing))
			for i, m := range missing {
				names[i] = name(m)
			}
			log(fmt.Sprintf("round %d (%ss): no %s from %s after %v; going on without", round, round, round, strings.Join(names, ", "), opt.RoundTimeout))
		} else {
			log(fmt.Sprintf("round %d (%ss): every keyholder answered in %v", round, round, time.Since(start).Round(time.Millisecond)))
		}
		out, err := p.Next()
		if err != nil {
			return nil, err
		}
		for _, e := range out {
			t.Send(e)
		}
	}
	return p.Outcome()
}
