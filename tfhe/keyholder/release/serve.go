package release

import (
	"context"
	"fmt"
	"time"

	"github.com/fractalvm/fractal/tfhe/dkg"
)

// Serve steps every interval until ctx ends and writes a line to log
// whenever what it finds changes: shares released, a batch it waits on with
// the keyholders not yet in, a refusal, a node it cannot reach. It returns
// when ctx ends.
func (k *Keyholder) Serve(ctx context.Context, node Node, interval time.Duration, log func(string)) {
	last := ""
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if line := k.Describe(k.Step(ctx, node)); line != last && ctx.Err() == nil {
			log(line)
			last = line
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
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
