package phases

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// Cross-instance transfer (docs/formats/cross-instance.md). A transaction
// exports a note by returning it, with a destination instance, as a second
// list from its calculation code; the predicates see it at the end of
// outputs and its owner predicate runs with role "export". An import
// transaction (empty lookup and calculation code, extradata starting with
// ImportMagic) carries a claim that the host checks; the exported note is
// its input and the note with the source's ID prepended to its provenance
// its one output.

// ImportMagic begins the extradata of an import transaction; the rest is
// the claim the host's Transfers.VerifyImport checks.
const ImportMagic = "fractal import v1\x00"

// MaxExports bounds the notes one transaction may export.
const MaxExports = 256

// Export is a note leaving the instance for another one.
type Export struct {
	To   notes.Hash // destination instance ID
	Note notes.Note // the note as it leaves: empty provenance, or an input's
}

// Import is a checked claim: the note that instance From exported under
// ExportID, as it left.
type Import struct {
	From     notes.Hash
	ExportID notes.Hash // the export's unique name, the import index key
	Exported notes.Note
}

// Transfers is what a host (the Code given to Execute) implements to take
// part in cross-instance transfer. Without it, exports are not checked
// against the instance's own ID and import transactions are refused.
type Transfers interface {
	// ID is the executing instance's ID; an export to it is refused.
	ID() notes.Hash
	// VerifyImport checks an import claim (the extradata after
	// ImportMagic) completely: trust, signature, inclusion proof and
	// destination. Its error is the refusal reason.
	VerifyImport(claim []byte) (*Import, error)
}

// ImportIndex is implemented by a State that knows which exports were
// imported; import transactions need it.
type ImportIndex interface {
	Imported(exportID notes.Hash) (bool, error)
}

// IsImport reports whether tx is an import transaction.
func IsImport(tx *Tx) bool {
	return len(tx.Lookup) == 0 && len(tx.Calculation) == 0 && bytes.HasPrefix(tx.Extradata, []byte(ImportMagic))
}

// importClaim replaces phases 1 and 2 of an import transaction: the host
// checks the claim, the import index must not hold the export, and the new
// note must lie within the write constraints on a free key.
func (x *execution) importClaim() (*Outcome, error) {
	t, ok := x.code.(Transfers)
	if !ok {
		return x.refuse(PhaseAdmission, Predicate{}, "import: this host does not accept imports"), nil
	}
	imp, err := t.VerifyImport(x.tx.Extradata[len(ImportMagic):])
	if err != nil {
		return x.refuse(PhaseAdmission, Predicate{}, "import: "+err.Error()), nil
	}
	idx, ok := x.st.(ImportIndex)
	if !ok {
		return nil, fmt.Errorf("phases: import: the state keeps no import index")
	}
	done, err := idx.Imported(imp.ExportID)
	if err != nil {
		return nil, err
	}
	if done {
		return x.refuse(PhaseLookup, Predicate{}, fmt.Sprintf("import: export %x was already imported", imp.ExportID)), nil
	}
	n := imp.Exported
	if len(n.Provenance) >= notes.MaxProvenance {
		return x.refuse(PhaseCalculation, Predicate{}, fmt.Sprintf("import: the note has travelled through %d instances already, the most a provenance holds", len(n.Provenance))), nil
	}
	n.Provenance = append([][]byte{append([]byte(nil), imp.From[:]...)}, imp.Exported.Provenance...)
	key := n.StateKey()
	if !x.tx.Write.Match(key) {
		return x.refuse(PhaseCalculation, Predicate{}, fmt.Sprintf("import: output at %s is outside the write constraints", key)), nil
	}
	live, err := x.st.Get(key)
	if err != nil {
		return nil, err
	}
	if live != nil {
		return x.refuse(PhaseCalculation, Predicate{}, fmt.Sprintf("import: output at %s: a live note is already there", key)), nil
	}
	x.imp = imp
	x.inputs = []notes.Note{imp.Exported}
	x.outputs = []notes.Note{n}
	x.rc.Outputs = append(x.rc.Outputs, refOf(&n))
	return nil, nil
}

// exportsOf checks the second list the calculation code returned: each
// element {to = hex instance ID, note = note table}.
func (x *execution) exportsOf(v any) error {
	if v == nil {
		return nil
	}
	list, err := resultList([]any{v}, MaxExports)
	if err != nil {
		return fmt.Errorf("calculation code exports: %w", err)
	}
	for i, e := range list {
		ex, err := x.export(i+1, e)
		if err != nil {
			return err
		}
		x.exports = append(x.exports, *ex)
	}
	return nil
}

func (x *execution) export(i int, v any) (*Export, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 2 || m["to"] == nil || m["note"] == nil {
		return nil, fmt.Errorf("export %d: want a table {to = instance ID, note = note}", i)
	}
	s, _ := m["to"].(string)
	to, err := hex.DecodeString(s)
	if err != nil || len(to) != 32 || hex.EncodeToString(to) != s {
		return nil, fmt.Errorf("export %d: to: want 64 lower-case hex digits", i)
	}
	ex := &Export{To: notes.Hash(to)}
	if nm, ok := m["note"].(map[string]any); ok && nm["provenance"] == nil {
		nm["provenance"] = []any{}
	}
	if ex.Note, err = vp.NoteFromValue(m["note"]); err != nil {
		return nil, fmt.Errorf("export %d: %w", i, err)
	}
	if err := ex.Note.Validate(); err != nil {
		return nil, fmt.Errorf("export %d: %w", i, err)
	}
	if !x.provenanceOfInput(ex.Note.Provenance) {
		return nil, fmt.Errorf("export %d: its provenance is neither empty nor that of an input", i)
	}
	if key := ex.Note.StateKey(); !x.tx.Write.Match(key) {
		return nil, fmt.Errorf("export %d at %s is outside the write constraints", i, key)
	}
	if t, ok := x.code.(Transfers); ok && t.ID() == ex.To {
		return nil, fmt.Errorf("export %d is addressed to this instance", i)
	}
	return ex, nil
}

// provenanceOfInput: an exported note carries no provenance (created here)
// or that of a note it consumed, so a chain cannot be invented.
func (x *execution) provenanceOfInput(p [][]byte) bool {
	if len(p) == 0 {
		return true
	}
	for i := range x.inputs {
		if notes.ProvenanceEqual(x.inputs[i].Provenance, p) {
			return true
		}
	}
	return false
}

// transferGlobals adds what predicates see of exports and imports:
// exports = {{to = hex, index = position in outputs}, …} when the
// transaction exports, imported = {from = hex, export = hex} when it
// imports (set only after the host checked the claim).
func (x *execution) transferGlobals(g map[string]any) {
	if len(x.exports) > 0 {
		list := make([]any, len(x.exports))
		for i := range x.exports {
			list[i] = map[string]any{"to": hex.EncodeToString(x.exports[i].To[:]), "index": int64(len(x.outputs) + i + 1)}
		}
		g["exports"] = list
	}
	if x.imp != nil {
		g["imported"] = map[string]any{"from": hex.EncodeToString(x.imp.From[:]), "export": hex.EncodeToString(x.imp.ExportID[:])}
	}
}

// seenOutputs is the outputs list the predicates see: created notes, then
// exported ones.
func (x *execution) seenOutputs() []notes.Note {
	if len(x.exports) == 0 {
		return x.outputs
	}
	all := append([]notes.Note{}, x.outputs...)
	for i := range x.exports {
		all = append(all, x.exports[i].Note)
	}
	return all
}
