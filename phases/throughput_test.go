package phases

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// TestMarkVerified: a transaction marked verified is admitted without its
// signatures being checked again; an unmarked one, or one changed after
// the mark (signatures included), is checked, in Execute and in both block
// executors.
func TestMarkVerified(t *testing.T) {
	w := newWorld(t)
	alice, bob := testKey(t, 1), testKey(t, 2)
	held := w.gold(alice.Public(), alice.Public(), 100, "held")
	w.st.put(held)
	// Signed by bob in alice's place: the signature does not verify.
	forged := func() *Tx {
		tx := w.transferTx(t, alice, []notes.Note{held}, bob.Public(), 30, 1)
		other := w.transferTx(t, bob, []notes.Note{held}, bob.Public(), 30, 1)
		tx.Signatures = other.Signatures
		return tx
	}
	refusal := "signature of signer 1 (" + alice.Public().String() + ") does not verify"
	for _, c := range []struct {
		name string
		tx   func() *Tx
		want string // "" for accepted
	}{
		{"unmarked", forged, refusal},
		{"marked", func() *Tx { tx := forged(); tx.MarkVerified(); return tx }, ""},
		{"signature changed after the mark", func() *Tx {
			tx := w.transferTx(t, alice, []notes.Note{held}, bob.Public(), 30, 1)
			tx.MarkVerified()
			tx.Signatures = forged().Signatures
			return tx
		}, refusal},
		{"field changed after the mark", func() *Tx {
			tx := forged()
			tx.MarkVerified()
			tx.GasLimit++
			return tx
		}, refusal},
	} {
		for _, run := range []struct {
			name string
			f    func(*Tx) (*Outcome, error)
		}{
			{"Execute", func(tx *Tx) (*Outcome, error) { return Execute(w.st, w.code, w.pool, tx) }},
			{"ExecuteSerial", func(tx *Tx) (*Outcome, error) {
				outs, err := ExecuteSerial(w.st, w.code, w.pool, []*Tx{tx})
				if err != nil {
					return nil, err
				}
				return outs[0], nil
			}},
			{"ExecuteBlock", func(tx *Tx) (*Outcome, error) {
				outs, err := ExecuteBlock(w.st, w.code, w.pool, []*Tx{tx})
				if err != nil {
					return nil, err
				}
				return outs[0], nil
			}},
		} {
			out, err := run.f(c.tx())
			if err != nil {
				t.Fatal(err)
			}
			rc := out.Receipt
			switch {
			case c.want == "" && rc.Status != Accepted:
				t.Errorf("%s, %s: refused: %v", c.name, run.name, rc.Err())
			case c.want != "" && (rc.Status != Refused || rc.Phase != PhaseAdmission || rc.Reason != c.want):
				t.Errorf("%s, %s: got %v %v %q, want admission refusal %q", c.name, run.name, rc.Status, rc.Phase, rc.Reason, c.want)
			}
		}
	}
}

// TestPredicatesCannotChangeWhatOthersSee: a predicate that changes a note
// it was given is refused (the tables are shared by all predicates of the
// transaction and read-only), with the same receipt from the serial and
// the scheduled executor, and the state unchanged.
func TestPredicatesCannotChangeWhatOthersSee(t *testing.T) {
	for _, c := range []struct{ name, src string }{
		{"assign a field", `inputs[1].value = "x" return true`},
		{"insert into outputs", `table.insert(outputs, inputs[1]) return true`},
		{"change the note asked about", `if note then note.key = "x" end return true`},
		{"sort signers", `table.sort(signers) return true`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			alice, bob := testKey(t, 1), testKey(t, 2)
			meddler := w.code.deploy(t, "meddler", []byte(c.src))
			n := notes.Note{Application: w.token, Owner: meddler, Key: []byte(alice.Public().String() + ":m"), Value: []byte(alice.Public().String() + ":GOLD:5")}
			w.st.put(n)
			k := n.StateKey()
			tx := signed(t, &Tx{
				Nonce: 1, GasLimit: 1_000_000,
				Read:        notes.ConstraintSet{notes.ExactPattern(k)},
				Write:       notes.ConstraintSet{notes.ExactPattern(k), w.ownerPrefix(bob.Public())},
				Lookup:      []byte(fmt.Sprintf("return {%q}", k.String())),
				Calculation: []byte(fmt.Sprintf("local n = inputs[1] return {{application = n.application, owner = %q, key = %q, value = n.value}}", fmt.Sprintf("%x", w.sig), bob.Public().String()+":m")),
				Signers:     []keys.PublicKey{alice.Public()},
			}, alice)
			before := w.st.dump()
			serial, err := ExecuteSerial(w.st, w.code, w.pool, []*Tx{tx})
			if err != nil {
				t.Fatal(err)
			}
			block, err := ExecuteBlock(w.st, w.code, w.pool, []*Tx{tx})
			if err != nil {
				t.Fatal(err)
			}
			rc := serial[0].Receipt
			if rc.Status != Refused || rc.Phase != PhaseValidity || rc.Predicate.Role != RoleInput ||
				!strings.Contains(rc.Reason, "cannot modify a read-only table passed by the host") {
				t.Fatalf("got %v %v %v %q", rc.Status, rc.Phase, rc.Predicate, rc.Reason)
			}
			if !bytes.Equal(rc.Encode(), block[0].Receipt.Encode()) {
				t.Fatalf("serial and scheduled receipts differ:\n%+v\n%+v", rc, block[0].Receipt)
			}
			if !bytes.Equal(before, w.st.dump()) {
				t.Fatal("state changed")
			}
		})
	}
}
