package explorer

import (
	"bytes"
	"fmt"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// What the explorer decodes itself rather than believe the readable fields
// beside it: a query's proof and an import's claim.

// proofCheck is the outcome of checking a query proof.
type proofCheck struct {
	Valid bool
	// Statement is what a valid proof proves; Err why an invalid one is not.
	Statement string
	Err       string
	Height    uint64
	BlockHash string
	StateRoot string
}

// checkProof checks a query proof against the executor's key (base64) and
// the instance ID, as "fractal check-proof" does, and returns the note the
// proof holds (nil when it proves that none lives at the key, or is not
// valid).
func checkProof(raw []byte, executor, instance string) (proofCheck, *v1.Note) {
	fail := func(err error) (proofCheck, *v1.Note) { return proofCheck{Err: err.Error()}, nil }
	pub, err := keys.ParsePublicKey(executor)
	if err != nil {
		return fail(err)
	}
	id, err := wire.ParseHash(instance)
	if err != nil {
		return fail(err)
	}
	qp, err := chain.DecodeQueryProof(raw)
	if err != nil {
		return fail(err)
	}
	st, err := chain.CheckQueryProof(qp, pub, &id)
	if err != nil {
		return fail(err)
	}
	pc := proofCheck{Valid: true, Statement: st.String(), Height: st.Height, BlockHash: wire.Hex(qp.Block.Hash()), StateRoot: wire.Hex(st.Root)}
	if st.Note == nil {
		return pc, nil
	}
	return pc, wire.Note(st.Note)
}

// importClaim is what an import transaction claims: the export it
// imports, from which instance, proven at which of its heights.
type importClaim struct {
	ExportID string
	From     string
	TxID     string
	Height   uint64
}

// importOf reads the claim an import transaction carries; nil for any
// other transaction. The claim's proof was checked when the transaction
// ran; this only reads it.
func importOf(encoding []byte) (*importClaim, error) {
	tx, err := phases.DecodeTx(encoding)
	if err != nil {
		return nil, fmt.Errorf("explorer: the node sent a transaction it cannot decode: %w", err)
	}
	if !phases.IsImport(tx) {
		return nil, nil
	}
	c, err := chain.DecodeClaim(bytes.TrimPrefix(tx.Extradata, []byte(phases.ImportMagic)))
	if err != nil {
		return nil, fmt.Errorf("explorer: import claim: %w", err)
	}
	return &importClaim{ExportID: wire.Hex(c.Record.ID()), From: wire.Hex(c.Record.From), TxID: wire.Hex(c.Record.TxID), Height: c.Manifest.Height}, nil
}
