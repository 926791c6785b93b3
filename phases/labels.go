package phases

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fractalvm/fractal/notes"
)

// Labels (docs/decisions/144-labels-and-follow.md). Calculation code may
// give an output note a label, a field "label" of its table beside the
// note's own; the receipt lists the labels, and once the transaction is
// committed, lookup code of a later block can ask follow(txid) for the
// state key of each labelled output (the follow host function the instance
// registers, over a State that implements LabelIndex).

// MaxLabel bounds a label's length in bytes.
const MaxLabel = 64

// labelChars are the bytes a label may hold.
const labelChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"

// OutputLabel is the label calculation code gave output Output (1-based).
type OutputLabel struct {
	Output uint32
	Label  string
}

// Labelled is one labelled output of a committed transaction: its label
// and the state key it was created at.
type Labelled struct {
	Label string
	Key   notes.StateKey
}

// LabelIndex is implemented by a State that knows the labelled outputs of
// the transactions committed before the block being run. Labels returns
// them in output order, or nil for a transaction that committed none (or
// is unknown). Transactions of the block being run are not in it, so what
// follow answers does not depend on the order the scheduler runs them in.
type LabelIndex interface {
	Labels(txid notes.Hash) ([]Labelled, error)
}

// CheckLabel refuses a label that is empty, longer than MaxLabel, or holds
// a byte outside A-Z, a-z, 0-9 and "_.:-".
func CheckLabel(s string) error {
	switch {
	case s == "":
		return errors.New("empty label")
	case len(s) > MaxLabel:
		return fmt.Errorf("label of %d bytes, limit %d", len(s), MaxLabel)
	case strings.Trim(s, labelChars) != "":
		return fmt.Errorf("label %q holds a character outside A-Z a-z 0-9 _ . : -", clip(s, 80))
	}
	return nil
}

// checkLabels refuses labels that are out of order, point past the
// outputs, repeat or are malformed: what calculate never produces.
func checkLabels(ls []OutputLabel, outputs int) error {
	seen := make(map[string]bool, len(ls))
	for i, l := range ls {
		switch {
		case l.Output < 1 || int(l.Output) > outputs:
			return fmt.Errorf("label %d names output %d of %d", i+1, l.Output, outputs)
		case i > 0 && l.Output <= ls[i-1].Output:
			return fmt.Errorf("label %d is out of output order", i+1)
		case seen[l.Label]:
			return fmt.Errorf("label %q repeats", l.Label)
		}
		seen[l.Label] = true
		if err := CheckLabel(l.Label); err != nil {
			return err
		}
	}
	return nil
}

// label takes the "label" field off the i-th output table v (so the rest
// reads as a note) and records it; seen maps the labels taken so far to
// their outputs.
func (x *execution) label(i int, v any, seen map[string]int) error {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	l, has := m["label"]
	if !has {
		return nil
	}
	delete(m, "label")
	s, ok := l.(string)
	if !ok {
		return fmt.Errorf("output %d: label: want a string, got %s", i, typeName(l))
	}
	if err := CheckLabel(s); err != nil {
		return fmt.Errorf("output %d: %w", i, err)
	}
	if j, dup := seen[s]; dup {
		return fmt.Errorf("output %d: label %q repeats output %d's", i, s, j)
	}
	seen[s] = i
	x.rc.Labels = append(x.rc.Labels, OutputLabel{Output: uint32(i), Label: s})
	return nil
}

// Labelled returns the labelled outputs of an accepted outcome, in output
// order: what follow answers once it is committed.
func (o *Outcome) Labelled() []Labelled {
	if o.Receipt.Status != Accepted {
		return nil
	}
	out := make([]Labelled, 0, len(o.Receipt.Labels))
	for _, l := range o.Receipt.Labels {
		out = append(out, Labelled{Label: l.Label, Key: o.Created[l.Output-1].StateKey()})
	}
	return out
}
