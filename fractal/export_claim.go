package fractal

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/internal/enc"
)

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

// ExportClaim returns the claim for one of this instance's exports,
// proven against the head block.
func (in *Instance) ExportClaim(rec *ExportRecord) (*Claim, error) {
	c := &Claim{Record: rec}
	err := in.db.View(func(txn *badger.Txn) error {
		raw, err := getValue(txn, outboxStoreKey(rec.To, outboxKey(rec.TxID, rec.Index)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errors.New("no such export in the outbox")
		}
		if err != nil {
			return err
		}
		stored, err := storedExport(in.id, outboxStoreKey(rec.To, outboxKey(rec.TxID, rec.Index)), raw)
		if err != nil {
			return err
		}
		c.Record = stored
		h, err := headHeight(txn)
		if err != nil {
			return err
		}
		b, err := in.blockAt(txn, h)
		if err != nil {
			return err
		}
		b.TxIDs = nil
		c.Manifest = b
		c.Proof, err = tree.Prove(badgerdb.KV{Txn: txn}, b.StateRoot, outboxKey(rec.TxID, rec.Index))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: export claim %x: %w", rec.ID(), err)
	}
	return c, nil
}

// Encode returns the canonical encoding: version, record, manifest
// (header and signature), proof.
func (c *Claim) Encode() []byte {
	w := enc.NewWriter(1024 + 32*len(c.Manifest.Roots))
	w.U8(claimVersion)
	w.Var(c.Record.Encode())
	m := enc.NewWriter(256 + 32*len(c.Manifest.Roots))
	c.Manifest.header(m)
	m.Fixed(c.Manifest.Signature[:])
	w.Var(m.Bytes())
	w.Var(c.Proof.Encode())
	return w.Bytes()
}

// DecodeClaim parses a claim encoding. It checks encodings only;
// Instance.VerifyImport checks what the claim proves.
func DecodeClaim(data []byte) (*Claim, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != claimVersion {
		return nil, fmt.Errorf("fractal: claim: unknown version %d", v)
	}
	rawRec := r.Var(maxNoteBytes+128, "export record")
	rawMan := r.Var(maxBlockBytes, "manifest")
	rawProof := r.Var(8+32*(statetree.KeyBits+2)+statetree.KeyBits/8, "proof")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: claim: %w", err)
	}
	c := &Claim{Manifest: &Block{}}
	var err error
	if c.Record, err = DecodeExportRecord(rawRec); err != nil {
		return nil, fmt.Errorf("fractal: claim: %w", err)
	}
	mr := enc.NewReader(rawMan)
	if err := c.Manifest.readSigned(mr); err != nil {
		return nil, fmt.Errorf("fractal: claim: manifest: %w", err)
	}
	if err := mr.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: claim: manifest: %w", err)
	}
	if n := len(c.Manifest.Roots); n > 0 && c.Manifest.Roots[n-1] != c.Manifest.StateRoot {
		return nil, errors.New("fractal: claim: manifest: final state root differs from the last transaction's root")
	}
	if c.Proof, err = statetree.DecodeProof(rawProof); err != nil {
		return nil, fmt.Errorf("fractal: claim: %w", err)
	}
	return c, nil
}

// ClaimFor returns the claim for the export named id (as "fractal exports"
// lists it), proven against the head block: what a claim file holds.
func (in *Instance) ClaimFor(id [32]byte) (*Claim, error) {
	recs, err := in.Exports(nil)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if rec.ID() == id {
			return in.ExportClaim(rec)
		}
	}
	return nil, fmt.Errorf("fractal: export claim: no export %x in this instance's outbox", id)
}
