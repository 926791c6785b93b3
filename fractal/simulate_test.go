package fractal

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/phases"
)

// TestSimulateGivesTheCommittedGas: a simulation reports exactly the
// receipt (gas of every phase included) that sealing the same transaction
// on the same state then stores, signed or not yet signed, and writes
// nothing.
func TestSimulateGivesTheCommittedGas(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	f.commit(t, f.mint(f.allow, f.signed, f.alice, "coin", f.alice.Public().String()))
	tx := f.move(f.allow, f.signed, f.alice, "coin", "paid", f.bob.Public().String(), "change", f.alice.Public().String())
	unsigned := *tx
	unsigned.Signatures = nil
	before := dumpStore(t, f.in)
	var sims [][]byte
	for i, c := range []*phases.Tx{tx, &unsigned} {
		rc, _, err := f.in.Simulate(context.Background(), c, i == 1)
		if err != nil {
			t.Fatal(err)
		}
		if rc.Err() != nil || rc.Gas.Lookup == 0 || rc.Gas.Validity == 0 {
			t.Fatalf("simulation: %+v", rc)
		}
		sims = append(sims, rc.Encode())
	}
	if dumpStore(t, f.in) != before {
		t.Fatal("Simulate changed the store")
	}
	if !bytes.Equal(sims[0], sims[1]) {
		t.Fatal("the unsigned transaction simulates differently from the signed one")
	}
	f.commit(t, tx)
	stored, err := f.in.Receipt(tx.ID())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.Encode(), sims[0]) {
		t.Fatalf("committed receipt %+v differs from the simulation", stored)
	}
}

// TestSimulateRefusals: a transaction that admission would refuse is an
// error with the reason; one that the phases would refuse simulates to a
// refused receipt with the reason; nothing is written either way.
func TestSimulateRefusals(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	done := f.mint(f.allow, f.allow, f.alice, "once", "1")
	f.commit(t, done)
	badSig := f.mint(f.allow, f.allow, f.alice, "w", "1")
	badSig.Signatures[0][3] ^= 1
	cases := []struct {
		name  string
		tx    *phases.Tx
		phase phases.Phase // PhaseAdmission: an error
		want  string
	}{
		{"predicate refuses", f.mint(f.deny, f.allow, f.alice, "k", "1"), phases.PhaseValidity, fmt.Sprintf("application predicate %x: returned false", f.deny[:8])},
		{"spends a note that is gone", f.move(f.allow, f.allow, f.alice, "never", "g", "1"), phases.PhaseLookup, "no live note at"},
		{"replayed", done, phases.PhaseAdmission, "already executed in block 1"},
		{"bad signature", badSig, phases.PhaseAdmission, "does not verify"},
		{"no signers", f.sign(f.mint(f.allow, f.allow, f.alice, "n", "1")), phases.PhaseAdmission, "transaction lists no signers"},
		{"gas limit over the block's", func() *phases.Tx {
			tx := f.mint(f.allow, f.allow, f.alice, "g", "1")
			tx.GasLimit = phases.MaxGasLimit + 1
			return tx
		}(), phases.PhaseAdmission, "gas limit 100000001 is outside 1..100000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dumpStore(t, f.in)
			rc, _, err := f.in.Simulate(context.Background(), c.tx, false)
			if c.phase == phases.PhaseAdmission {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("simulation: %+v %v, want the error %q", rc, err, c.want)
				}
			} else if err != nil || rc.Status != phases.Refused || rc.Phase != c.phase || !strings.Contains(rc.Reason, c.want) || rc.TxID != c.tx.ID() {
				t.Fatalf("simulation: %+v %v, want refused in %s: %q", rc, err, c.phase, c.want)
			}
			if dumpStore(t, f.in) != before {
				t.Fatal("Simulate changed the store")
			}
		})
	}
}
