package phases

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// feeCode is memCode on a host that charges fees in token (nil: none), for
// blocks made by producer.
type feeCode struct {
	memCode
	token    *FeeToken
	producer keys.PublicKey
}

func (c feeCode) FeeToken() *FeeToken      { return c.token }
func (c feeCode) Producer() keys.PublicKey { return c.producer }

// feeWorld is a world whose host charges fees in the issuer's GOLD (the
// token and sig examples), alice holding a fee note of 10,000,000 at "fee".
type feeWorld struct {
	*world
	code                    feeCode
	issuer, alice, bob, pro keys.PrivateKey
	note                    notes.Note
}

func newFeeWorld(t testing.TB) *feeWorld {
	w := &feeWorld{world: newWorld(t), issuer: testKey(t, 1), alice: testKey(t, 2), bob: testKey(t, 3), pro: testKey(t, 4)}
	w.code = feeCode{memCode: w.world.code, producer: w.pro.Public(),
		token: &FeeToken{Application: w.token, Owner: w.sig, Token: w.issuer.Public().String() + ":GOLD"}}
	w.note = w.gold(w.issuer.Public(), w.alice.Public(), 10_000_000, "fee")
	w.st.put(w.note)
	return w
}

// paying makes tx offer the fee note at price, signed by signers.
func (w *feeWorld) paying(t testing.TB, tx *Tx, price uint64, signers ...keys.PrivateKey) *Tx {
	tx.Fee = &Fee{Note: w.note.StateKey(), Price: price}
	tx.Signers, tx.Signatures = nil, nil
	for _, k := range signers {
		tx.Signers = append(tx.Signers, k.Public())
	}
	return signed(t, tx, signers...)
}

// gold sums the GOLD amounts of every note in st: the token's supply.
func goldSupply(t testing.TB, st *memState) int {
	t.Helper()
	sum := 0
	for _, n := range st.m {
		f := strings.Split(string(n.Value), ":")
		a, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Fatal(err)
		}
		sum += a
	}
	return sum
}

// TestFeePaidWhateverTheOutcome: an accepted transaction and ones refused in
// lookup, calculation and validity each pay gas used × price: the fee note
// is spent, the change goes back to the payer and the fee to the producer,
// in notes of the fee token at keys of their owners; the token's supply
// does not change.
func TestFeePaidWhateverTheOutcome(t *testing.T) {
	// alice mints the issuer's GOLD, the fee token: the token predicate
	// refuses it in validity.
	mint := func(w *feeWorld) *Tx {
		tx := w.mintTx(t, w.alice, w.alice.Public(), 5, 7)
		tx.Calculation = []byte(fmt.Sprintf("return {{application = %q, owner = %q, key = %q, value = %q}}",
			hex.EncodeToString(w.token[:]), hex.EncodeToString(w.sig[:]), w.alice.Public().String()+":minted", w.issuer.Public().String()+":GOLD:5"))
		return tx
	}
	cases := []struct {
		name  string
		tx    func(w *feeWorld) *Tx
		phase Phase
	}{
		{"accepted", func(w *feeWorld) *Tx { return w.mintTx(t, w.issuer, w.alice.Public(), 5, 7) }, PhaseNone},
		{"refused in lookup", func(w *feeWorld) *Tx {
			tx := mint(w)
			tx.Lookup = []byte("local n = 0 for i = 1, 10 do n = n + i end error('no')")
			return tx
		}, PhaseLookup},
		{"refused in calculation", func(w *feeWorld) *Tx {
			tx := mint(w)
			tx.Calculation = []byte("return {{key = 'x'}}")
			return tx
		}, PhaseCalculation},
		{"refused in validity", mint, PhaseValidity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newFeeWorld(t)
			signer := w.alice
			if c.phase == PhaseNone {
				signer = w.issuer
				w.note = w.gold(w.issuer.Public(), w.issuer.Public(), 10_000_000, "fee")
				w.st.put(w.note)
			}
			supply := goldSupply(t, w.st)
			tx := w.paying(t, c.tx(w), 3, signer)
			out, err := Execute(w.st, w.code, w.pool, tx)
			if err != nil {
				t.Fatal(err)
			}
			rc := out.Receipt
			if rc.Phase != c.phase || out.Fee == nil || !out.Committed() ||
				(c.phase == PhaseValidity && !strings.Contains(rc.Reason, ":GOLD: outputs exceed inputs by 5 and the issuer has not signed")) {
				t.Fatalf("receipt %v, fee %+v", rc.Err(), out.Fee)
			}
			gas := rc.Gas.Total()
			payer := signer.Public().String()
			h := idHex(tx)
			wantChange := w.gold(w.issuer.Public(), signer.Public(), 10_000_000-3*int(gas), "")
			wantChange.Key = []byte(payer + ":" + h + ":change")
			wantPaid := w.gold(w.issuer.Public(), w.pro.Public(), 3*int(gas), "")
			wantPaid.Key = []byte(w.pro.Public().String() + ":" + h + ":fee")
			f := out.Fee
			switch {
			case gas == 0 || f.Gas != gas || f.Price != 3 || f.Amount != 3*gas:
				t.Fatalf("fee %+v for gas %d", f, gas)
			case f.Spent.ID() != w.note.ID() || f.Change == nil || f.Change.ID() != wantChange.ID() || f.Paid.ID() != wantPaid.ID():
				t.Fatalf("fee notes %+v", f)
			case rc.Fee == nil || rc.Fee.Amount != f.Amount || rc.Fee.Note.ID != w.note.ID() || rc.Fee.Change.ID != wantChange.ID() || rc.Fee.Paid.ID != wantPaid.ID():
				t.Fatalf("receipt's fee %+v", rc.Fee)
			}
			w.st.commit([]*Outcome{out})
			if got := goldSupply(t, w.st); got != supply+5*boolInt(c.phase == PhaseNone) {
				t.Fatalf("supply %d, was %d", got, supply)
			}
			if n, _ := w.st.Get(w.note.StateKey()); n != nil {
				t.Fatal("the fee note is still live")
			}
		})
	}
}

func idHex(tx *Tx) string {
	id := tx.ID()
	return hex.EncodeToString(id[:])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFeeThatCannotBePaid: a transaction whose fee cannot be paid is
// refused at admission, pays nothing and changes nothing; so is a fee
// offered to a host without a fee token.
func TestFeeThatCannotBePaid(t *testing.T) {
	w := newFeeWorld(t)
	token := hex.EncodeToString(w.token[:8])
	mint := func() *Tx { return w.mintTx(t, w.issuer, w.alice.Public(), 5, 9) }
	w.st.put(w.gold(w.issuer.Public(), w.alice.Public(), 10, "small"))
	w.st.put(notes.Note{Application: w.token, Owner: w.sig, Key: []byte(w.alice.Public().String() + ":silver"), Value: []byte(w.bob.Public().String() + ":SILVER:500")})
	cases := []struct {
		name string
		tx   func() *Tx
		code Code
		want string
	}{
		{"no fee token", func() *Tx { return w.paying(t, mint(), 1, w.issuer, w.alice) }, w.world.code, "fee: this instance has no fee token"},
		{"not the signers' note", func() *Tx { return w.paying(t, mint(), 1, w.issuer) }, w.code,
			fmt.Sprintf("fee: fee note %s belongs to %s, who is not a signer", w.note.StateKey(), w.alice.Public())},
		{"too little", func() *Tx { return w.paying(t, mint(), 1_000, w.issuer, w.alice) }, w.code,
			fmt.Sprintf("fee: fee note %s holds 10000000, less than gas limit 1000000 × price 1000 = 1000000000", w.note.StateKey())},
		{"no note there", func() *Tx {
			tx := w.paying(t, mint(), 1, w.issuer, w.alice)
			tx.Fee.Note.Key = []byte("gone")
			return signed(t, tx, w.issuer, w.alice)
		}, w.code, "fee: fee note /" + hex.EncodeToString(w.token[:]) + "/" + hex.EncodeToString(w.sig[:]) + "/676f6e65: no live note there"},
		{"another token", func() *Tx {
			tx := w.paying(t, mint(), 1, w.issuer, w.alice)
			tx.Fee.Note.Key = []byte(w.alice.Public().String() + ":silver")
			return signed(t, tx, w.issuer, w.alice)
		}, w.code, "not an amount of the fee token " + w.issuer.Public().String() + ":GOLD"},
		{"another application", func() *Tx {
			tx := w.paying(t, mint(), 1, w.issuer, w.alice)
			tx.Fee.Note.Application = w.escrow
			return signed(t, tx, w.issuer, w.alice)
		}, w.code, "is not a note of the fee token (application " + token},
		{"change key taken", func() *Tx {
			tx := w.paying(t, mint(), 1, w.issuer, w.alice)
			taken := w.gold(w.issuer.Public(), w.alice.Public(), 1, idHex(tx)+":change")
			w.st.put(taken)
			return tx
		}, w.code, "where the fee's change or payment goes, holds a note"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := c.tx()
			before := w.st.dump()
			out, err := Execute(w.st, c.code, w.pool, tx)
			if err != nil {
				t.Fatal(err)
			}
			if out.Receipt.Phase != PhaseAdmission || !strings.Contains(out.Receipt.Reason, c.want) || out.Fee != nil || out.Receipt.Fee != nil || out.Committed() {
				t.Fatalf("outcome %v, fee %+v; want a refusal %q", out.Receipt.Err(), out.Fee, c.want)
			}
			if !bytes.Equal(w.st.dump(), before) {
				t.Fatal("state changed")
			}
		})
	}
}

// TestFeeNoteStaysOutsideTheTransaction: the fee note cannot be one of the
// transaction's inputs, nor can an output take a key the fee writes; each
// is refused, and pays.
func TestFeeNoteStaysOutsideTheTransaction(t *testing.T) {
	w := newFeeWorld(t)
	spend := w.transferTx(t, w.alice, []notes.Note{w.note}, w.bob.Public(), 10, 3)
	spend = w.paying(t, spend, 1, w.alice)
	out, err := Execute(w.st, w.code, w.pool, spend)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("refused in lookup: input 1 at %s is the transaction's fee note", w.note.StateKey()); out.Receipt.Err() == nil || out.Receipt.Err().Error() != want || out.Fee == nil {
		t.Fatalf("got %v, fee %+v; want %q", out.Receipt.Err(), out.Fee, want)
	}
	// The calculation knows its own ID (txid), so it can aim at the key the
	// fee's change goes to.
	squat := w.mintTx(t, w.issuer, w.alice.Public(), 5, 4)
	squat.Calculation = []byte(fmt.Sprintf("return {{application = %q, owner = %q, key = %q .. ':' .. txid .. ':change', value = 'x'}}",
		hex.EncodeToString(w.token[:]), hex.EncodeToString(w.sig[:]), w.alice.Public().String()))
	squat = w.paying(t, squat, 1, w.issuer, w.alice)
	out, err = Execute(w.st, w.code, w.pool, squat)
	if err != nil {
		t.Fatal(err)
	}
	if out.Receipt.Phase != PhaseCalculation || !strings.HasSuffix(out.Receipt.Reason, hex.EncodeToString([]byte(":"+idHex(squat)+":change"))+": the key is kept for the transaction's fee") || out.Fee == nil {
		t.Fatalf("got %v, fee %+v", out.Receipt.Err(), out.Fee)
	}
}

// TestFeeScheduledEqualsSerial: random blocks whose transactions pay fees
// from a few shared fee notes (so some cannot pay, a fee note being spent
// earlier in the block) and scan the payers' notes, where fees write: the
// scheduled outcomes are byte for byte the serial ones.
func TestFeeScheduledEqualsSerial(t *testing.T) {
	w := newFeeWorld(t)
	payers := []keys.PrivateKey{w.alice, w.bob, w.issuer}
	yes := w.world.code.deploy(t, "yes", []byte("return true"))
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 2))
		base := newMemState()
		var feeNotes []notes.Note
		for i, p := range payers {
			for j := range 2 {
				n := w.gold(w.issuer.Public(), p.Public(), 200+r.IntN(2000), fmt.Sprintf("f%d%d", i, j))
				base.put(n)
				feeNotes = append(feeNotes, n)
			}
		}
		txs := make([]*Tx, 30)
		for i := range txs {
			p := payers[r.IntN(len(payers))]
			scanned := payers[r.IntN(len(payers))]
			tx := &Tx{Nonce: uint64(i), GasLimit: uint64(50 + r.IntN(400)),
				Read:        notes.ConstraintSet{w.ownerPrefix(scanned.Public())},
				Write:       notes.ConstraintSet{notes.ExactPattern(notes.StateKey{Application: yes, Owner: yes, Key: []byte(fmt.Sprint("o", i))})},
				Lookup:      []byte(fmt.Sprintf("local n = #scan(%q) return {}", w.ownerPrefix(scanned.Public()).String())),
				Calculation: []byte(fmt.Sprintf("return {{application = %[1]q, owner = %[1]q, key = 'o%[2]d', value = 'v'}}", hex.EncodeToString(yes[:]), i)),
				Fee:         &Fee{Note: feeNotes[r.IntN(len(feeNotes))].StateKey(), Price: uint64(r.IntN(3))},
				Signers:     []keys.PublicKey{p.Public()},
			}
			if r.IntN(4) == 0 {
				tx.Lookup = []byte("error('no')")
			}
			tx.MarkVerified()
			txs[i] = tx
		}
		serial, err := ExecuteSerial(base, w.code, w.pool, txs)
		if err != nil {
			t.Fatal(err)
		}
		paid, unpaid := 0, 0
		for _, o := range serial {
			if o.Fee != nil {
				paid++
			} else if o.Receipt.Phase == PhaseAdmission {
				unpaid++
			}
		}
		if paid == 0 || unpaid == 0 {
			t.Fatalf("seed %d: %d paid, %d could not pay; the workload must mix both", seed, paid, unpaid)
		}
		want := encodeOutcomes(serial)
		for run := range 3 {
			outs, err := ExecuteBlock(base, w.code, w.pool, txs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(encodeOutcomes(outs), want) {
				t.Fatalf("seed %d run %d: scheduled outcomes differ from serial", seed, run)
			}
		}
	}
}

// TestLabels: calculation code labels outputs and the receipt lists them;
// labels that collide or are malformed refuse the transaction.
func TestLabels(t *testing.T) {
	w := newWorld(t)
	yes := w.code.deploy(t, "yes", []byte("return true"))
	k := testKey(t, 1)
	note := func(key, label string) string {
		l := ""
		if label != "" {
			l = ", label = " + label
		}
		return fmt.Sprintf("{application = %[1]q, owner = %[1]q, key = %[2]q, value = 'v'%[3]s}", hex.EncodeToString(yes[:]), key, l)
	}
	run := func(outs ...string) *Outcome {
		tx := signed(t, &Tx{Nonce: 1, GasLimit: 100_000, Write: notes.ConstraintSet{notes.AnyPattern()},
			Calculation: []byte("return {" + strings.Join(outs, ", ") + "}"), Signers: []keys.PublicKey{k.Public()}}, k)
		out, err := Execute(w.st, w.code, w.pool, tx)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := run(note("a", "'pay'"), note("b", ""), note("c", "'change.1'"))
	accepted(t, out)
	if got := fmt.Sprint(out.Receipt.Labels); got != "[{1 pay} {3 change.1}]" {
		t.Fatalf("labels %s", got)
	}
	if got := fmt.Sprint(out.Labelled()); !strings.Contains(got, "pay /") || !strings.HasSuffix(got, "/63}]") {
		t.Fatalf("labelled %s", got)
	}
	for _, c := range []struct {
		outs []string
		want string
	}{
		{[]string{note("a", "'x'"), note("b", "'x'")}, `output 2: label "x" repeats output 1's`},
		{[]string{note("a", "''")}, "output 1: empty label"},
		{[]string{note("a", "'a b'")}, `output 1: label "a b" holds a character outside A-Z a-z 0-9 _ . : -`},
		{[]string{note("a", "'"+strings.Repeat("x", MaxLabel+1)+"'")}, "output 1: label of 65 bytes, limit 64"},
		{[]string{note("a", "7")}, "output 1: label: want a string, got a number"},
	} {
		out := run(c.outs...)
		if err := out.Receipt.Err(); err == nil || err.Error() != "refused in calculation: "+c.want {
			t.Fatalf("got %v, want %q", err, c.want)
		}
	}
}
