package phases

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
)

// The first byte of a receipt's encoding: ReceiptVersion for a receipt
// with neither a fee nor labels (the format every receipt had before them,
// so such receipts keep their bytes), ReceiptVersionFee for one with a fee
// paid or labelled outputs, whose fields follow the version 1 ones.
const (
	ReceiptVersion    = 1
	ReceiptVersionFee = 2
)

// Limits on a receipt's fields. Execute truncates reasons and logs to them,
// so Lua code cannot make a receipt large.
const (
	MaxReason   = 1024 // bytes of Reason
	MaxLogLines = 256  // lines of Log
	MaxLogLine  = 1024 // bytes per log line
	MaxInputs   = 256  // input notes per transaction
	MaxOutputs  = 256  // output notes per transaction
	// MaxOutputBytes bounds the keys and values of one transaction's
	// output notes together: a block is committed in one store write of
	// bounded size, and without it one transaction (256 outputs of 64 KiB,
	// the same Lua string each time) did not fit in any block.
	MaxOutputBytes = 1 << 20
	maxKeyText     = 8192 // bytes of a state key's text form (the notes limits give at most ~4.3 KiB)
	truncatedMark  = "…"
)

// Status says whether a transaction was accepted.
type Status uint8

// The statuses.
const (
	Accepted Status = 1
	Refused  Status = 2
)

func (s Status) String() string {
	switch s {
	case Accepted:
		return "accepted"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Phase names the step that refused a transaction.
type Phase uint8

// The phases. PhaseAdmission covers the checks before phase 1 (well-formed
// fields, signatures); PhaseCommit is for the instance's own refusals in
// phase 4 (a replayed transaction ID). An accepted receipt has PhaseNone.
const (
	PhaseNone        Phase = 0
	PhaseAdmission   Phase = 1
	PhaseLookup      Phase = 2
	PhaseCalculation Phase = 3
	PhaseValidity    Phase = 4
	PhaseCommit      Phase = 5
)

var phaseNames = [...]string{"", "admission", "lookup", "calculation", "validity", "commit"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Role says what a validity predicate was asked about.
type Role uint8

// The roles. RoleNone marks a receipt whose refusal is not a predicate's.
const (
	RoleNone        Role = 0
	RoleApplication Role = 1 // an application predicate, once per distinct application
	RoleInput       Role = 2 // the owner predicate of an input note
	RoleOutput      Role = 3 // the owner predicate of an output note
	RoleExport      Role = 4 // the owner predicate of an exported note (transfer.go)
)

var roleNames = [...]string{"", "application", "input", "output", "export"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Predicate names one validity predicate run: its role, the 1-based index of
// the note it was asked about (0 for an application), and its code hash.
type Predicate struct {
	Role  Role
	Index uint32
	Code  notes.Hash
}

// label is the predicate's name in reasons and logs, e.g. "input 1 owner
// predicate 3f2a…".
func (p Predicate) label() string { return string(p.appendLabel(nil)) }

// appendLabel appends label() to b.
func (p Predicate) appendLabel(b []byte) []byte {
	if p.Role != RoleApplication {
		b = append(b, p.Role.String()...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(p.Index), 10)
		b = append(b, " owner"...)
	} else {
		b = append(b, "application"...)
	}
	b = append(b, " predicate "...)
	return hex.AppendEncode(b, p.Code[:8])
}

// Gas is the gas each phase used.
type Gas struct {
	Lookup      uint64
	Calculation uint64
	Validity    uint64 // sum over all predicates
}

// Total is the sum over the phases.
func (g Gas) Total() uint64 { return g.Lookup + g.Calculation + g.Validity }

// NoteRef names a note by its ID and the state key it lives at.
type NoteRef struct {
	ID  notes.Hash
	Key notes.StateKey
}

func refOf(n *notes.Note) NoteRef { return NoteRef{ID: n.ID(), Key: n.StateKey()} }

// Receipt records what happened to one transaction. A refused receipt names
// the phase and, in phase 3, the predicate that refused, and why; Inputs and
// Outputs hold what lookup and calculation produced before the refusal.
type Receipt struct {
	TxID      notes.Hash
	Status    Status
	Phase     Phase     // PhaseNone when accepted
	Predicate Predicate // the refusing predicate; zero unless Phase is PhaseValidity and a predicate refused
	Reason    string    // empty when accepted
	Gas       Gas
	Inputs    []NoteRef
	Outputs   []NoteRef
	Log       []string      // print output of every run, each line labelled with its run
	Fee       *FeePaid      // the fee paid, accepted or refused; nil for none
	Labels    []OutputLabel // the labels calculation gave its outputs, in output order
}

// FeePaid is a receipt's record of the fee charged (FeeCharge): the price,
// the gas charged and their product, the fee note spent, the note paid to
// the producer and the change returned (nil when none was left).
type FeePaid struct {
	Price, Gas, Amount uint64
	Note               NoteRef
	Paid               NoteRef
	Change             *NoteRef
}

// Encode returns the canonical encoding (docs/formats/transactions.md), in
// a slice of its size: a size guessed ahead (a note reference's key text
// is often longer than 160 bytes) made the buffer grow once or twice.
func (r *Receipt) Encode() []byte { return enc.Copy(r.encode) }

func (r *Receipt) encode(w *enc.Writer) {
	v2 := r.Fee != nil || len(r.Labels) > 0
	if v2 {
		w.U8(ReceiptVersionFee)
	} else {
		w.U8(ReceiptVersion)
	}
	w.Fixed(r.TxID[:])
	w.U8(uint8(r.Status))
	w.U8(uint8(r.Phase))
	w.U8(uint8(r.Predicate.Role))
	w.U32(r.Predicate.Index)
	w.Fixed(r.Predicate.Code[:])
	w.String(r.Reason)
	w.U64(r.Gas.Lookup)
	w.U64(r.Gas.Calculation)
	w.U64(r.Gas.Validity)
	for _, refs := range [][]NoteRef{r.Inputs, r.Outputs} {
		w.U32(uint32(len(refs)))
		for _, ref := range refs {
			ref.encode(w)
		}
	}
	w.U32(uint32(len(r.Log)))
	for _, l := range r.Log {
		w.String(l)
	}
	if v2 {
		r.Fee.encode(w)
		w.U32(uint32(len(r.Labels)))
		for _, l := range r.Labels {
			w.U32(l.Output)
			w.String(l.Label)
		}
	}
}

func (ref NoteRef) encode(w *enc.Writer) {
	w.Fixed(ref.ID[:])
	var buf [256]byte // most keys' text, written without a string of its own
	w.Var(ref.Key.AppendText(buf[:0]))
}

func decodeRef(r *enc.Reader, what string) NoteRef {
	var ref NoteRef
	r.Into(ref.ID[:])
	ref.Key = decodeKey(r, what)
	return ref
}

// encode writes u8 0 for no fee, else u8 1 and the fee.
func (f *FeePaid) encode(w *enc.Writer) {
	w.Bool(f != nil)
	if f == nil {
		return
	}
	w.U64(f.Price)
	w.U64(f.Gas)
	w.U64(f.Amount)
	f.Note.encode(w)
	f.Paid.encode(w)
	w.Bool(f.Change != nil)
	if f.Change != nil {
		f.Change.encode(w)
	}
}

func decodeFeePaid(r *enc.Reader) *FeePaid {
	if !r.Bool() {
		return nil
	}
	f := &FeePaid{Price: r.U64(), Gas: r.U64(), Amount: r.U64()}
	f.Note = decodeRef(r, "fee note")
	f.Paid = decodeRef(r, "fee payment")
	if r.Bool() {
		ch := decodeRef(r, "fee change")
		f.Change = &ch
	}
	return f
}

// DecodeReceipt parses a canonical receipt encoding, refusing unknown
// versions, statuses, phases and roles, fields over the limits, non-canonical
// state keys and trailing bytes.
func DecodeReceipt(b []byte) (*Receipt, error) {
	r := enc.NewReader(b)
	rc := new(Receipt)
	v := r.U8()
	if r.Err() == nil && v != ReceiptVersion && v != ReceiptVersionFee {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	r.Into(rc.TxID[:])
	rc.Status = Status(r.U8())
	rc.Phase = Phase(r.U8())
	rc.Predicate.Role = Role(r.U8())
	rc.Predicate.Index = r.U32()
	r.Into(rc.Predicate.Code[:])
	rc.Reason = r.String(MaxReason, "reason")
	rc.Gas.Lookup, rc.Gas.Calculation, rc.Gas.Validity = r.U64(), r.U64(), r.U64()
	rc.Inputs = decodeRefs(r, MaxInputs, "inputs")
	rc.Outputs = decodeRefs(r, MaxOutputs, "outputs")
	n := r.Count(MaxLogLines, "log")
	for i := 0; i < n && r.Err() == nil; i++ {
		rc.Log = append(rc.Log, r.String(MaxLogLine, "log line"))
	}
	if v == ReceiptVersionFee {
		rc.Fee = decodeFeePaid(r)
		n := r.Count(MaxOutputs, "labels")
		for i := 0; i < n && r.Err() == nil; i++ {
			rc.Labels = append(rc.Labels, OutputLabel{Output: r.U32(), Label: r.String(MaxLabel, "label")})
		}
		if r.Err() == nil && rc.Fee == nil && len(rc.Labels) == 0 {
			r.Fail(errors.New("version 2 receipt with neither a fee nor labels (version 1 is its encoding)"))
		}
	}
	if r.Err() == nil {
		r.Fail(rc.check())
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("phases: decode receipt: %w", err)
	}
	return rc, nil
}

func decodeRefs(r *enc.Reader, max int, what string) []NoteRef {
	n := r.Count(max, what)
	var refs []NoteRef
	for i := 0; i < n && r.Err() == nil; i++ {
		var ref NoteRef
		r.Into(ref.ID[:])
		ref.Key = decodeKey(r, fmt.Sprintf("%s %d", what, i+1))
		refs = append(refs, ref)
	}
	return refs
}

// decodeKey reads a state key in its canonical text form (var).
func decodeKey(r *enc.Reader, what string) notes.StateKey {
	s := r.String(maxKeyText, what+" state key")
	if r.Err() != nil {
		return notes.StateKey{}
	}
	k, err := notes.ParseStateKey(s)
	if err != nil {
		r.Fail(fmt.Errorf("%s: %w", what, err))
	}
	return k
}

// check refuses field combinations Execute never produces.
func (r *Receipt) check() error {
	switch {
	case r.Status != Accepted && r.Status != Refused:
		return fmt.Errorf("unknown status %d", r.Status)
	case r.Phase > PhaseCommit:
		return fmt.Errorf("unknown phase %d", r.Phase)
	case r.Predicate.Role > RoleExport:
		return fmt.Errorf("unknown role %d", r.Predicate.Role)
	case (r.Status == Accepted) != (r.Phase == PhaseNone):
		return fmt.Errorf("status %s with phase %q", r.Status, r.Phase)
	case r.Status == Accepted && (r.Reason != "" || r.Predicate != Predicate{}):
		return fmt.Errorf("accepted receipt with a refusal")
	case !utf8.ValidString(r.Reason):
		return fmt.Errorf("reason is not UTF-8")
	}
	for i, l := range r.Log {
		if !utf8.ValidString(l) {
			return fmt.Errorf("log line %d is not UTF-8", i+1)
		}
	}
	if f := r.Fee; f != nil && (f.Amount == 0 || f.Price == 0 || f.Gas > MaxGasLimit || f.Price > MaxGasPrice || f.Amount != f.Gas*f.Price) {
		return fmt.Errorf("fee %d × %d = %d does not add up", f.Gas, f.Price, f.Amount)
	}
	return checkLabels(r.Labels, len(r.Outputs))
}

// Err returns nil for an accepted receipt and otherwise an error saying
// which phase refused and why.
func (r *Receipt) Err() error {
	if r.Status == Accepted {
		return nil
	}
	return fmt.Errorf("refused in %s: %s", r.Phase, r.Reason)
}

type noteRefJSON struct {
	ID    string         `json:"id"`
	Key   notes.StateKey `json:"key"`
	Label string         `json:"label,omitempty"`
}

type feeJSON struct {
	Price  uint64       `json:"gas_price"`
	Gas    uint64       `json:"gas"`
	Amount uint64       `json:"amount"`
	Note   noteRefJSON  `json:"note"`
	Paid   noteRefJSON  `json:"paid"`
	Change *noteRefJSON `json:"change,omitempty"`
}

type predicateJSON struct {
	Role  string `json:"role"`
	Index uint32 `json:"index"`
	Code  string `json:"code"`
}

type receiptJSON struct {
	TxID      string         `json:"tx"`
	Status    string         `json:"status"`
	Phase     string         `json:"phase,omitempty"`
	Predicate *predicateJSON `json:"predicate,omitempty"`
	Reason    string         `json:"reason,omitempty"`
	Gas       struct {
		Lookup      uint64 `json:"lookup"`
		Calculation uint64 `json:"calculation"`
		Validity    uint64 `json:"validity"`
		Total       uint64 `json:"total"`
	} `json:"gas"`
	Inputs  []noteRefJSON `json:"inputs"`
	Outputs []noteRefJSON `json:"outputs"`
	Log     []string      `json:"log"`
	Fee     *feeJSON      `json:"fee,omitempty"`
}

// MarshalJSON writes the receipt for people and APIs: hashes in lower-case
// hex, state keys in their text form, names for status, phase and role.
func (r *Receipt) MarshalJSON() ([]byte, error) {
	var j receiptJSON
	j.TxID = hex.EncodeToString(r.TxID[:])
	j.Status = r.Status.String()
	j.Phase = r.Phase.String()
	if r.Predicate.Role != RoleNone {
		j.Predicate = &predicateJSON{Role: r.Predicate.Role.String(), Index: r.Predicate.Index, Code: hex.EncodeToString(r.Predicate.Code[:])}
	}
	j.Reason = r.Reason
	j.Gas.Lookup, j.Gas.Calculation, j.Gas.Validity, j.Gas.Total = r.Gas.Lookup, r.Gas.Calculation, r.Gas.Validity, r.Gas.Total()
	j.Inputs, j.Outputs = refsJSON(r.Inputs), refsJSON(r.Outputs)
	for _, l := range r.Labels {
		if l.Output >= 1 && int(l.Output) <= len(j.Outputs) {
			j.Outputs[l.Output-1].Label = l.Label
		}
	}
	j.Log = append([]string{}, r.Log...)
	if f := r.Fee; f != nil {
		j.Fee = &feeJSON{Price: f.Price, Gas: f.Gas, Amount: f.Amount, Note: refJSON(f.Note), Paid: refJSON(f.Paid)}
		if f.Change != nil {
			ch := refJSON(*f.Change)
			j.Fee.Change = &ch
		}
	}
	return json.Marshal(j)
}

func refsJSON(refs []NoteRef) []noteRefJSON {
	out := make([]noteRefJSON, len(refs))
	for i, ref := range refs {
		out[i] = refJSON(ref)
	}
	return out
}

func refJSON(ref NoteRef) noteRefJSON {
	return noteRefJSON{ID: hex.EncodeToString(ref.ID[:]), Key: ref.Key}
}

// clip makes s valid UTF-8 and at most max bytes, cutting at a rune
// boundary and marking the cut.
func clip(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max - len(truncatedMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedMark
}
