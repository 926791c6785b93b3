package chain

// Cross-instance transfer (docs/formats/cross-instance.md): export records,
// their place in the source's state tree, and the claims an import carries.

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Domain-separation contexts of the transfer hashes. State-key text never
// holds a zero byte, so none of these tree keys can be a note's.
const (
	ctxExportID    = "fractal export v1\x00"
	ctxOutboxKey   = "fractal outbox v1\x00"
	ctxOutboxEntry = "fractal outbox entry v1\x00"
	ctxImportKey   = "fractal import v1\x00"
)

// exportRecordVersion is the first byte of an ExportRecord encoding.
const exportRecordVersion = 1

// ExportRecord is one note that instance From committed, in transaction
// TxID (its Index-th export), for instance To.
type ExportRecord struct {
	From  [32]byte
	To    [32]byte
	TxID  [32]byte
	Index uint32
	Note  notes.Note
}

// ID is the export's unique name: SHA-256(context || from || txid || index).
// The destination's import index is keyed by it.
func (r *ExportRecord) ID() [32]byte {
	return exportID(r.From, r.TxID, r.Index)
}

func exportID(from, txid [32]byte, index uint32) [32]byte {
	w := enc.NewWriter(90)
	w.Fixed([]byte(ctxExportID))
	w.Fixed(from[:])
	w.Fixed(txid[:])
	w.U32(index)
	return sha256.Sum256(w.Bytes())
}

// OutboxKey is the state-tree key of an export in its source's tree.
func OutboxKey(txid [32]byte, index uint32) [32]byte {
	w := enc.NewWriter(60)
	w.Fixed([]byte(ctxOutboxKey))
	w.Fixed(txid[:])
	w.U32(index)
	return sha256.Sum256(w.Bytes())
}

// OutboxValue is the state-tree value of an export: it binds the
// destination and the note.
func OutboxValue(to [32]byte, n *notes.Note) [32]byte {
	w := enc.NewWriter(256)
	w.Fixed([]byte(ctxOutboxEntry))
	w.Fixed(to[:])
	w.Var(n.Encode())
	return sha256.Sum256(w.Bytes())
}

// ImportKey is the state-tree key of an import index entry.
func ImportKey(exportID [32]byte) [32]byte {
	return sha256.Sum256(append([]byte(ctxImportKey), exportID[:]...))
}

// Encode returns the canonical encoding: version, from, to, txid, index,
// note.
func (r *ExportRecord) Encode() []byte {
	w := enc.NewWriter(256)
	w.U8(exportRecordVersion)
	w.Fixed(r.From[:])
	w.Fixed(r.To[:])
	w.Fixed(r.TxID[:])
	w.U32(r.Index)
	w.Var(r.Note.Encode())
	return w.Bytes()
}

// DecodeExportRecord parses an export record encoding.
func DecodeExportRecord(data []byte) (*ExportRecord, error) {
	r := enc.NewReader(data)
	rec, err := readExportRecord(r)
	if err == nil {
		err = r.Finish()
	}
	if err != nil {
		return nil, fmt.Errorf("fractal: export record: %w", err)
	}
	return rec, nil
}

func readExportRecord(r *enc.Reader) (*ExportRecord, error) {
	rec := &ExportRecord{}
	if v := r.U8(); r.Err() == nil && v != exportRecordVersion {
		return nil, fmt.Errorf("unknown version %d", v)
	}
	r.Into(rec.From[:])
	r.Into(rec.To[:])
	r.Into(rec.TxID[:])
	rec.Index = r.U32()
	raw := r.Var(MaxNoteBytes, "note")
	if err := r.Err(); err != nil {
		return nil, err
	}
	n, err := notes.Decode(raw)
	if err != nil {
		return nil, err
	}
	if rec.Index >= phases.MaxExports {
		return nil, fmt.Errorf("export index %d out of range", rec.Index)
	}
	rec.Note = *n
	return rec, nil
}

// transferChanges is the state-tree change list of an outcome's exports
// and import, applied after its notes' changes.
func transferChanges(o *phases.Outcome) []statetree.Change {
	var changes []statetree.Change
	for i := range o.Exports {
		v := OutboxValue(o.Exports[i].To, &o.Exports[i].Note)
		changes = append(changes, statetree.Change{Key: OutboxKey(o.Receipt.TxID, uint32(i)), Value: &v})
	}
	if o.Import != nil {
		id := o.Created[0].ID()
		changes = append(changes, statetree.Change{Key: ImportKey(o.Import.ExportID), Value: &id})
	}
	return changes
}

// claimVersion is the first byte of a Claim encoding.
const claimVersion = 1

// Claim is what an import carries: the export record, the source's signed
// manifest (block header and signature, without the transaction list, which
// the header's transactions hash already covers) and the inclusion proof of
// the record's outbox entry against the manifest's final state root.
type Claim struct {
	Record   *ExportRecord
	Manifest *Block // TxIDs empty: not part of the claim
	Proof    *statetree.Proof
}

// Encode returns the canonical encoding: version, record, manifest
// (header and signature), proof.
func (c *Claim) Encode() []byte {
	w := enc.NewWriter(1024 + 32*len(c.Manifest.Roots))
	w.U8(claimVersion)
	w.Var(c.Record.Encode())
	w.Var(c.Manifest.EncodeManifest())
	w.Var(c.Proof.Encode())
	return w.Bytes()
}

// DecodeClaim parses a claim encoding. It checks encodings only;
// VerifyClaim checks what the claim proves.
func DecodeClaim(data []byte) (*Claim, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != claimVersion {
		return nil, fmt.Errorf("fractal: claim: unknown version %d", v)
	}
	rawRec := r.Var(MaxNoteBytes+128, "export record")
	rawMan := r.Var(maxBlockBytes, "manifest")
	rawProof := r.Var(8+32*(statetree.KeyBits+2)+statetree.KeyBits/8, "proof")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: claim: %w", err)
	}
	c := &Claim{}
	var err error
	if c.Record, err = DecodeExportRecord(rawRec); err != nil {
		return nil, fmt.Errorf("fractal: claim: %w", err)
	}
	if c.Manifest, err = decodeManifest(rawMan); err != nil {
		return nil, fmt.Errorf("fractal: claim: manifest: %w", err)
	}
	if c.Proof, err = statetree.DecodeProof(rawProof); err != nil {
		return nil, fmt.Errorf("fractal: claim: %w", err)
	}
	return c, nil
}

// VerifyClaim checks what a claim proves to the instance dest, which
// trusts the source's executor keys trusted: the export is addressed to
// dest, the manifest is of the export's source and signed by one of the
// keys, and the inclusion proof shows the record's outbox entry in the
// manifest's final state root. It returns the import the claim allows; the
// error is the refusal reason. Whether the source is trusted at all, and
// with which keys, is the caller's (the trust file).
func VerifyClaim(c *Claim, dest [32]byte, trusted []keys.PublicKey) (*phases.Import, error) {
	rec, m := c.Record, c.Manifest
	if rec.To != dest {
		return nil, fmt.Errorf("export %x is addressed to instance %x, not this one", rec.ID(), rec.To)
	}
	if m.Instance != rec.From {
		return nil, fmt.Errorf("the manifest is of instance %x, not of the export's source %x", m.Instance, rec.From)
	}
	if !slices.Contains(trusted, keys.PublicKey(m.Executor)) {
		return nil, fmt.Errorf("the manifest is signed by %s, a key the trust file does not name for instance %x", keys.PublicKey(m.Executor), rec.From)
	}
	if err := VerifyBlock(m); err != nil {
		return nil, fmt.Errorf("the manifest's signature does not verify")
	}
	got, err := statetree.ProvenValue(m.StateRoot, OutboxKey(rec.TxID, rec.Index), c.Proof)
	if err != nil {
		return nil, fmt.Errorf("the inclusion proof does not verify against the manifest of height %d: %v", m.Height, err)
	}
	if got == nil {
		return nil, fmt.Errorf("export %x is not in instance %x's state at height %d: not yet covered by a signed manifest", rec.ID(), rec.From, m.Height)
	}
	if *got != OutboxValue(rec.To, &rec.Note) {
		return nil, fmt.Errorf("the export record differs from the one instance %x committed", rec.From)
	}
	return &phases.Import{From: rec.From, ExportID: rec.ID(), Exported: rec.Note}, nil
}

// ImportGas is the gas limit of the import transactions ImportTx builds:
// the note's application and owner predicates run within it.
const ImportGas = 1_000_000

// ImportTx builds the import transaction of a claim, for signer to sign:
// no code, the claim as extradata after phases.ImportMagic, and the new
// note's exact state key as its only write constraint (so two imports of
// one export conflict and run in order).
func ImportTx(c *Claim, signer keys.PublicKey) *phases.Tx {
	n := c.Record.Note
	n.Provenance = append([][]byte{append([]byte(nil), c.Record.From[:]...)}, n.Provenance...)
	return &phases.Tx{
		GasLimit:  ImportGas,
		Write:     notes.ConstraintSet{notes.ExactPattern(n.StateKey())},
		Extradata: append([]byte(phases.ImportMagic), c.Encode()...),
		Signers:   []keys.PublicKey{signer},
	}
}
