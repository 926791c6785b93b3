package phases

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// Fees (docs/decisions/140-fees.md). A transaction may offer a fee: a fee
// note of the instance's fee token, owned by one of its signers and outside
// its inputs, and a gas price. Before phase 1 the note must be payable
// (live, of the fee token, its owner among the signers, holding at least
// gas limit × price); otherwise the transaction is refused and, having paid
// nothing, leaves no trace. Whatever phases 1–3 then decide, the fee for
// the gas used is charged: the fee note is spent, the change goes back to
// the payer in a new note, and the fee goes to the block's producer in
// another, both notes of the fee token written by the host itself (no
// predicate runs for them: the transfer conserves the token by
// construction). An outcome that paid a fee is committed even when
// refused (Outcome.Committed), with its receipt.

// Fee is what a transaction offers for its gas: the fee note, named by its
// state key, and the price of one gas in units of the fee token.
type Fee struct {
	Note  notes.StateKey
	Price uint64
}

func (f *Fee) validate() error {
	switch {
	case f == nil:
		return nil
	case f.Price > MaxGasPrice:
		return fmt.Errorf("gas price %d exceeds the limit %d", f.Price, MaxGasPrice)
	case len(f.Note.Provenance) != 0:
		return fmt.Errorf("fee note %s has provenance; a fee note is a note of this instance", f.Note)
	}
	if err := f.Note.Validate(); err != nil {
		return fmt.Errorf("fee note: %w", err)
	}
	return nil
}

// MaxFeeAmount is the largest amount a fee-token note holds: the token
// example's largest amount (15 decimal digits).
const MaxFeeAmount = 999_999_999_999_999

// FeeToken is an instance's fee token: the notes of one application and
// owner predicate whose values are "<Token>:<amount>" (the token example's
// format, examples/token: an amount of 1 to 15 decimal digits, at least 1)
// and whose keys start with their owner's public key and ":" (the sig
// predicate's layout, examples/sig). The host reads and writes these notes
// itself to move fees, so the application and owner it is configured with
// must follow those two rules.
type FeeToken struct {
	Application notes.Hash
	Owner       notes.Hash
	Token       string // "<issuer public key>:<SYMBOL>"
}

// Validate checks the token's name as the token example writes it: a
// standard-base64 public key, ":", a symbol of 1 to 16 of A-Z and 0-9.
func (t *FeeToken) Validate() error {
	issuer, symbol, ok := strings.Cut(t.Token, ":")
	if !ok || len(symbol) < 1 || len(symbol) > 16 || strings.Trim(symbol, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		return fmt.Errorf("fee token %q is not <issuer key>:<SYMBOL>", t.Token)
	}
	if _, err := keys.ParsePublicKey(issuer); err != nil {
		return fmt.Errorf("fee token %q: issuer: %w", t.Token, err)
	}
	return nil
}

// Fees is implemented by a Code whose host charges fees: its fee token
// (nil for none) and the key that the fees of the block being run go to.
// A transaction naming a fee note is refused at admission by a host
// without a fee token.
type Fees interface {
	FeeToken() *FeeToken
	Producer() keys.PublicKey
}

// FeeCharge is the fee a transaction paid: Gas (what it used, at most its
// limit) × Price = Amount. The fee note (Spent) is deleted; Change (nil
// when the fee took all of it) returns the rest to the payer and Paid
// gives the fee to the producer. Phase 4 commits it after the
// transaction's own effects, if it has any.
type FeeCharge struct {
	Price, Gas, Amount uint64
	Spent              notes.Note
	Change             *notes.Note
	Paid               notes.Note
}

// Committed reports whether phase 4 commits the outcome: an accepted one,
// and a refused one that paid a fee.
func (o *Outcome) Committed() bool { return o.Receipt.Committed() }

// Committed reports whether the receipt is of a committed transaction: an
// accepted one, or a refused one that paid a fee.
func (r *Receipt) Committed() bool { return r.Status == Accepted || r.Fee != nil }

// Effects calls fn for each note a committed outcome deletes (created
// false) or writes (created true), in the order phase 4 applies them: the
// transaction's inputs, its outputs (an output may take a spent input's
// key), then its fee's note, change and payment. A refused outcome has
// only its fee's.
func (o *Outcome) Effects(fn func(n *notes.Note, created bool)) {
	for i := range o.Spent {
		fn(&o.Spent[i], false)
	}
	for i := range o.Created {
		fn(&o.Created[i], true)
	}
	if f := o.Fee; f != nil {
		fn(&f.Spent, false)
		if f.Change != nil {
			fn(f.Change, true)
		}
		fn(&f.Paid, true)
	}
}

// owner is the public key, in standard base64, that a fee-token note's
// key names: its first 44 bytes, before a ':'.
func feeOwner(key []byte) (string, bool) {
	if len(key) < 45 || key[44] != ':' {
		return "", false
	}
	return string(key[:44]), true
}

// Payable returns the amount of n, the live note at tx's fee note (nil when
// there is none), when tx may pay its fee with it: a note of the fee token
// owned by one of tx's signers and holding at least gas limit × price.
// Otherwise the error says why.
func (t *FeeToken) Payable(tx *Tx, n *notes.Note) (uint64, error) {
	k := tx.Fee.Note
	if k.Application != t.Application || k.Owner != t.Owner {
		return 0, fmt.Errorf("fee note %s is not a note of the fee token (application %x, owner %x)", k, t.Application[:8], t.Owner[:8])
	}
	if n == nil {
		return 0, fmt.Errorf("fee note %s: no live note there", k)
	}
	amount, ok := t.amountOf(n.Value)
	if !ok {
		return 0, fmt.Errorf("fee note %s holds %q, not an amount of the fee token %s", k, clip(string(n.Value), 200), t.Token)
	}
	owner, ok := feeOwner(n.Key)
	if !ok {
		return 0, fmt.Errorf("fee note %s: its key does not start with '<owner public key>:'", k)
	}
	if !signedBy(tx, owner) {
		return 0, fmt.Errorf("fee note %s belongs to %s, who is not a signer", k, owner)
	}
	if cost := tx.GasLimit * tx.Fee.Price; amount < cost {
		return 0, fmt.Errorf("fee note %s holds %d, less than gas limit %d × price %d = %d", k, amount, tx.GasLimit, tx.Fee.Price, cost)
	}
	return amount, nil
}

func signedBy(tx *Tx, key string) bool {
	for _, s := range tx.Signers {
		if s.String() == key {
			return true
		}
	}
	return false
}

// amountOf reads "<Token>:<amount>" as the token example does.
func (t *FeeToken) amountOf(v []byte) (uint64, bool) {
	digits, ok := strings.CutPrefix(string(v), t.Token+":")
	if !ok || len(digits) < 1 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	amount, err := strconv.ParseUint(digits, 10, 64)
	return amount, err == nil && amount >= 1
}

// note is a note of the fee token holding amount at key.
func (t *FeeToken) note(key string, amount uint64) notes.Note {
	return notes.Note{Application: t.Application, Owner: t.Owner, Key: []byte(key), Value: []byte(t.Token + ":" + strconv.FormatUint(amount, 10))}
}

// feeKeys are the state keys where the fee of transaction id, paid with a
// note of payer, puts the change and the payment to producer. The
// transaction ID makes them unique; the transaction cannot create notes
// there itself (feeOutputs).
func (t *FeeToken) feeKeys(id notes.Hash, payer string, producer keys.PublicKey) (change, paid notes.StateKey) {
	h := hex.EncodeToString(id[:])
	change = notes.StateKey{Application: t.Application, Owner: t.Owner, Key: []byte(payer + ":" + h + ":change")}
	paid = notes.StateKey{Application: t.Application, Owner: t.Owner, Key: []byte(producer.String() + ":" + h + ":fee")}
	return change, paid
}

// feeRun is a transaction's payable fee, found before phase 1.
type feeRun struct {
	token        *FeeToken
	note         notes.Note
	amount       uint64
	change, paid notes.StateKey
}

// feeToken returns the host's fee token and producer, or the refusal of a
// transaction that offers a fee to a host without one.
func feeToken(code Code) (*FeeToken, keys.PublicKey, error) {
	if f, ok := code.(Fees); ok {
		if t := f.FeeToken(); t != nil {
			return t, f.Producer(), nil
		}
	}
	return nil, keys.PublicKey{}, errors.New("this instance has no fee token")
}

// payable runs before phase 1: a transaction offering a fee must be able
// to pay it, and the keys its change and payment go to must be free; if
// not, it is refused at admission and pays nothing.
func (x *execution) payable() (*Outcome, error) {
	if x.tx.Fee == nil {
		return nil, nil
	}
	refuse := func(err error) (*Outcome, error) {
		return x.refuse(PhaseAdmission, Predicate{}, "fee: "+err.Error()), nil
	}
	t, producer, err := feeToken(x.code)
	if err != nil {
		return refuse(err)
	}
	n, err := x.st.Get(x.tx.Fee.Note)
	if err != nil {
		return nil, err
	}
	amount, err := t.Payable(x.tx, n)
	if err != nil {
		return refuse(err)
	}
	payer, _ := feeOwner(n.Key)
	f := &feeRun{token: t, note: *n, amount: amount}
	f.change, f.paid = t.feeKeys(x.id, payer, producer)
	for _, k := range []notes.StateKey{f.change, f.paid} {
		live, err := x.st.Get(k)
		if err != nil {
			return nil, err
		}
		if live != nil {
			return refuse(fmt.Errorf("%s, where the fee's change or payment goes, holds a note", k))
		}
	}
	x.fee = f
	return nil, nil
}

// feeInputs refuses, after lookup, an input that is the fee note: the fee
// is paid outside the transaction's inputs.
func (x *execution) feeInputs() (*Outcome, error) {
	for i := range x.inputs {
		if x.fee != nil && x.inputs[i].StateKey().Equal(x.tx.Fee.Note) {
			return x.refuse(PhaseLookup, Predicate{}, fmt.Sprintf("input %d at %s is the transaction's fee note", i+1, x.tx.Fee.Note)), nil
		}
	}
	return nil, nil
}

// feeOutputs refuses, after calculation, an output at a key the fee's
// change or payment goes to. (One at the fee note's key is refused as a
// key a live note holds.)
func (x *execution) feeOutputs() (*Outcome, error) {
	for i := range x.outputs {
		if k := x.outputs[i].StateKey(); x.fee != nil && (k.Equal(x.fee.change) || k.Equal(x.fee.paid)) {
			return x.refuse(PhaseCalculation, Predicate{}, fmt.Sprintf("output %d at %s: the key is kept for the transaction's fee", i+1, k)), nil
		}
	}
	return nil, nil
}

// charge adds the fee for the gas out used to out, accepted or refused.
// A fee of 0 (a price of 0, or no gas used) charges nothing.
func (x *execution) charge(out *Outcome) *Outcome {
	f := x.fee
	if f == nil {
		return out
	}
	gas := min(out.Receipt.Gas.Total(), x.tx.GasLimit)
	amount := gas * x.tx.Fee.Price // ≤ GasLimit × Price ≤ f.amount (Payable)
	if amount == 0 {
		return out
	}
	c := &FeeCharge{Price: x.tx.Fee.Price, Gas: gas, Amount: amount, Spent: f.note, Paid: f.token.note(string(f.paid.Key), amount)}
	paid := &FeePaid{Price: c.Price, Gas: gas, Amount: amount, Note: refOf(&c.Spent), Paid: refOf(&c.Paid)}
	if rest := f.amount - amount; rest > 0 {
		n := f.token.note(string(f.change.Key), rest)
		c.Change = &n
		ref := refOf(&n)
		paid.Change = &ref
	}
	out.Fee, out.Receipt.Fee = c, paid
	return out
}

// feeWrites are the state keys the fee of each of txs may write, by index
// (nil for one offering no fee): its fee note, change and payment. The
// scheduler counts them as the transaction's writes, so a transaction
// reading any of them runs before or after the fee's, never beside it.
func feeWrites(code Code, txs []*Tx) [][]notes.Pattern {
	var out [][]notes.Pattern
	for i, tx := range txs {
		if tx.Fee == nil {
			continue
		}
		t, producer, err := feeToken(code)
		if err != nil {
			continue // refused before it runs
		}
		if out == nil {
			out = make([][]notes.Pattern, len(txs))
		}
		payer, ok := feeOwner(tx.Fee.Note.Key)
		change, paid := t.feeKeys(tx.ID(), payer, producer)
		out[i] = []notes.Pattern{notes.ExactPattern(tx.Fee.Note), notes.ExactPattern(paid)}
		if ok { // else Payable refuses it, and no change is written
			out[i] = append(out[i], notes.ExactPattern(change))
		}
	}
	return out
}
