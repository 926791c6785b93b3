package fractal

import (
	"testing"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/smartlua"
)

// TestEveryRunHasTheInstanceHosts: a block whose predicate calls a host
// function (smartlua_check) is reproduced by every other run of it:
// verify's replay re-executes it to the same roots, and a dispute's
// referee, from a witness alone, re-executes it to the block's root. A run
// without the instance's host functions would refuse it.
func TestEveryRunHasTheInstanceHosts(t *testing.T) {
	if got := chain.Hosts.Names(phases.StagePredicate); len(got) != 1 || got[0] != smartlua.HostName {
		t.Fatalf("predicate host functions %v", got)
	}
	if got := chain.Hosts.Names(phases.StageLookup | phases.StageCalculation); len(got) != 1 || got[0] != chain.FollowName {
		t.Fatalf("lookup and calculation host functions %v", got)
	}
	c := newChainFixture(t)
	init := c.initialBalances(t)
	next := c.record(t, init, "transfer('"+seedPub2+"', 3)", c.k1)
	if rc := c.seal(t, c.step(false, smartlua.EncodeRecord(init), 1_000_000)); rc.Err() != nil {
		t.Fatal(rc.Err())
	}
	tx := c.step(true, smartlua.EncodeRecord(next), 1_000_000)
	if rc := c.seal(t, tx); rc.Err() != nil || rc.Gas.Validity == 0 {
		t.Fatalf("%v, validity gas %d", rc.Err(), rc.Gas.Validity)
	}
	if _, err := c.in.Verify(t.Context(), nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	head, err := c.in.Head()
	if err != nil {
		t.Fatal(err)
	}
	parent, err := c.in.Block(head.Height - 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.in.Witness(head.Height, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.Execute(parent, head, parent.StateRoot, tx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Receipt.Status != phases.Accepted || res.Root != head.Roots[0] {
		t.Fatalf("referee: %v, root %x; want accepted with the block's root %x", res.Receipt.Err(), res.Root, head.Roots[0])
	}
}
