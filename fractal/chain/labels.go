package chain

// Labelled outputs and follow (decision 144, docs/formats/chain.md): a
// committed transaction that labelled outputs has a label record in the
// state tree, under LabelKey(txid), so a query proof or a dispute witness
// proves what follow answers.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/vp"
)

// Domain-separation contexts of the label tree entries (state-key text
// never holds a zero byte, so no note's tree key can be one of these).
const (
	ctxLabelKey   = "fractal labels v1\x00"
	ctxLabelEntry = "fractal labels entry v1\x00"
)

const labelRecordVersion = 1

// maxKeyText bounds a state key's text in a label record (the notes
// limits give at most about 4.3 KiB).
const maxKeyText = 8192

// LabelKey is the state-tree key of transaction txid's label record.
func LabelKey(txid [32]byte) [32]byte {
	return sha256.Sum256(append([]byte(ctxLabelKey), txid[:]...))
}

// LabelValue is the state-tree value of a label record's encoding.
func LabelValue(record []byte) [32]byte {
	return sha256.Sum256(append([]byte(ctxLabelEntry), record...))
}

// EncodeLabels is a label record: version, then for each labelled output
// in output order its label and its state key's text.
func EncodeLabels(ls []phases.Labelled) []byte {
	w := enc.NewWriter(64 * (len(ls) + 1))
	w.U8(labelRecordVersion)
	w.U32(uint32(len(ls)))
	for _, l := range ls {
		w.String(l.Label)
		w.String(l.Key.String())
	}
	return w.Bytes()
}

// DecodeLabels parses a label record, refusing malformed labels, repeats,
// non-canonical state keys and an empty record (a transaction with no
// labels has none).
func DecodeLabels(b []byte) ([]phases.Labelled, error) {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != labelRecordVersion {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	n := r.Count(phases.MaxOutputs, "labels")
	if r.Err() == nil && n == 0 {
		r.Fail(fmt.Errorf("no labels"))
	}
	out := make([]phases.Labelled, 0, n)
	seen := map[string]bool{}
	for i := 0; i < n && r.Err() == nil; i++ {
		l := phases.Labelled{Label: r.String(phases.MaxLabel, "label")}
		text := r.String(maxKeyText, "state key")
		if r.Err() != nil {
			break
		}
		var err error
		if l.Key, err = notes.ParseStateKey(text); err == nil {
			err = phases.CheckLabel(l.Label)
		}
		if err == nil && seen[l.Label] {
			err = fmt.Errorf("label %q repeats", l.Label)
		}
		seen[l.Label] = true
		r.Fail(err)
		out = append(out, l)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: label record: %w", err)
	}
	return out, nil
}

// labelChanges is the state-tree change of an accepted outcome that
// labelled outputs: its label record.
func labelChanges(o *phases.Outcome) []statetree.Change {
	ls := o.Labelled()
	if len(ls) == 0 {
		return nil
	}
	v := LabelValue(EncodeLabels(ls))
	return []statetree.Change{{Key: LabelKey(o.Receipt.TxID), Value: &v}}
}

// Gas of follow, charged on the lookup's meter before the work (besides
// the 1 every host call costs): a call is a read, as get's; each label
// returned costs what building its table entry does.
const (
	FollowCallGas  = phases.LookupCallGas
	FollowLabelGas = 4 // each label returned, plus 1 per started 32 bytes of its label and key text
)

// FollowName is the global lookup code calls follow by.
const FollowName = "follow"

// follow makes follow(txid) for one lookup run: the labelled outputs of
// the transaction txid (64 lower-case hex digits) committed in an earlier
// block, as a table label → state key text, keeping only those inside the
// run's read constraints. An ID that no earlier block committed with
// labels is a Lua error; labels that all lie outside the read constraints
// abort the transaction, as a get outside them does.
func follow(run phases.HostRun) vp.HostFuncCtx {
	return func(c *vp.HostCall, args []any) ([]any, error) {
		if err := c.Charge(FollowCallGas); err != nil {
			return nil, err
		}
		if len(args) != 1 {
			return nil, fmt.Errorf("follow: want 1 argument (a transaction ID), got %d", len(args))
		}
		s, _ := args[0].(string)
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) != 32 || hex.EncodeToString(raw) != s {
			return nil, fmt.Errorf("follow: the transaction ID must be 64 lower-case hex digits")
		}
		idx, ok := run.State.(phases.LabelIndex)
		if !ok {
			return nil, phases.HostFailure(fmt.Errorf("follow: the state keeps no label index"))
		}
		ls, err := idx.Labels([32]byte(raw))
		if err != nil {
			return nil, phases.HostFailure(err)
		}
		if ls == nil {
			return nil, fmt.Errorf("follow %s: no earlier block committed this transaction with labelled outputs", s)
		}
		out := map[string]any{}
		for _, l := range ls {
			if !run.Tx.Read.Match(l.Key) {
				continue
			}
			text := l.Key.String()
			if err := c.Charge(FollowLabelGas + uint64(len(l.Label)+len(text)+31)/32); err != nil {
				return nil, err
			}
			out[l.Label] = text
		}
		if len(out) == 0 {
			return nil, phases.Abort("follow %s: its labelled outputs are outside the read constraints", s)
		}
		return []any{out}, nil
	}
}
