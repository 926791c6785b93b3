// Package wire converts between the instance's own types (blocks, notes,
// transactions, receipts, exports) and the fractal.v1 API messages, both
// ways: the node builds messages with it, clients read them back.
//
// Whatever a hash or signature covers travels as its canonical encoding
// beside readable fields (decision 110); a client decodes the encoding and
// never trusts the readable fields over it.
package wire

import (
	"encoding/hex"
	"fmt"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Hex is a 32-byte identifier as the API spells it: 64 lower-case hex digits.
func Hex(h [32]byte) string { return hex.EncodeToString(h[:]) }

// ParseHash reads an identifier: exactly 64 lower-case hex digits.
func ParseHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, fmt.Errorf("%q is not 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil || hex.EncodeToString(h[:]) != s {
		return h, fmt.Errorf("%q is not lower-case hex", s)
	}
	return h, nil
}

func hexes(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = Hex(h)
	}
	return out
}

// Header is a block's readable header.
func Header(b *chain.Block) *v1.BlockHeader {
	return &v1.BlockHeader{
		InstanceId: Hex(b.Instance), Height: b.Height, Hash: Hex(b.Hash()), PrevHash: Hex(b.Prev),
		TxsHash: Hex(b.TxsHash), StateRoot: Hex(b.StateRoot), CommitmentRoot: Hex(b.CommitmentRoot),
		Executor: keys.PublicKey(b.Executor).String(), TxCount: uint32(len(b.Roots)),
	}
}

// Block is a sealed block: its header, encoding and transaction IDs.
func Block(b *chain.Block) *v1.Block {
	return &v1.Block{Header: Header(b), Encoding: b.Encode(), TxIds: hexes(b.TxIDs)}
}

// Note is a live note, readable and encoded.
func Note(n *notes.Note) *v1.Note {
	out := &v1.Note{
		Id: Hex(n.ID()), StateKey: n.StateKey().String(), Application: Hex(n.Application), Owner: Hex(n.Owner),
		Key: n.Key, Value: n.Value, Encoding: n.Encode(), Provenance: make([]string, len(n.Provenance)),
	}
	for i, p := range n.Provenance {
		out.Provenance[i] = hex.EncodeToString(p)
	}
	return out
}

// NoteRef names a note by ID and state key.
func NoteRef(r phases.NoteRef) *v1.NoteRef {
	return &v1.NoteRef{Id: Hex(r.ID), StateKey: r.Key.String()}
}

// Transaction is a signed transaction: ID, encoding and JSON form.
func Transaction(tx *phases.Tx) (*v1.Transaction, error) {
	j, err := tx.MarshalJSON()
	if err != nil {
		return nil, err
	}
	out := &v1.Transaction{Id: Hex(tx.ID()), Encoding: tx.Encode(), Json: string(j), GasLimit: tx.GasLimit}
	if f := tx.Fee; f != nil {
		out.GasPrice, out.FeeNote = f.Price, f.Note.String()
	}
	return out, nil
}

// Receipt is a receipt's readable form.
func Receipt(rc *phases.Receipt) *v1.Receipt {
	out := &v1.Receipt{
		TxId: Hex(rc.TxID), Status: v1.ReceiptStatus(rc.Status), Phase: v1.Phase(rc.Phase), Reason: rc.Reason,
		Gas: &v1.Gas{Lookup: rc.Gas.Lookup, Calculation: rc.Gas.Calculation, Validity: rc.Gas.Validity, Total: rc.Gas.Total()},
		Log: rc.Log,
	}
	if p := rc.Predicate; p.Role != phases.RoleNone {
		out.Predicate = &v1.Predicate{Role: v1.Role(p.Role), Index: p.Index, CodeHash: Hex(p.Code)}
	}
	for _, r := range rc.Inputs {
		out.Inputs = append(out.Inputs, NoteRef(r))
	}
	for _, r := range rc.Outputs {
		out.Outputs = append(out.Outputs, NoteRef(r))
	}
	if f := rc.Fee; f != nil {
		out.Fee = &v1.FeePaid{GasPrice: f.Price, Gas: f.Gas, Amount: f.Amount, Note: NoteRef(f.Note), Paid: NoteRef(f.Paid)}
		if f.Change != nil {
			out.Fee.Change = NoteRef(*f.Change)
		}
	}
	for _, l := range rc.Labels {
		out.Labels = append(out.Labels, &v1.OutputLabel{Output: l.Output, Label: l.Label})
	}
	return out
}

// Export is one export with the height of the block that committed it.
func Export(r *chain.ExportRecord, height uint64) *v1.Export {
	return &v1.Export{
		ExportId: Hex(r.ID()), From: Hex(r.From), To: Hex(r.To), TxId: Hex(r.TxID), Index: r.Index,
		Height: height, Note: Note(&r.Note), Record: r.Encode(),
	}
}

// Peer is one trust-file entry.
func Peer(p fractal.Peer) *v1.Peer {
	out := &v1.Peer{InstanceId: Hex(p.ID), GenesisHash: Hex(p.Genesis)}
	for _, k := range p.Keys {
		out.ExecutorKeys = append(out.ExecutorKeys, k.String())
	}
	return out
}

// EncryptedBatch is an encrypted batch's status; nil for nil.
func EncryptedBatch(st *fractal.EncryptedStatus) *v1.EncryptedBatch {
	if st == nil || st.Batch == nil {
		return nil
	}
	b := st.Batch
	out := &v1.EncryptedBatch{
		Number: b.Number, State: v1.EncryptedBatchState(st.State), Head: b.Head, KeyId: Hex(b.Key),
		PayloadIds: hexes(b.PayloadIDs), Needed: uint32(st.Needed), Record: b.Encode(),
	}
	for _, s := range st.Shares {
		out.Shares = append(out.Shares, uint32(s))
	}
	return out
}

// ToReceipt reads a receipt back. Every field is checked: IDs are 64 hex
// digits, state keys parse, enums are ones the receipt format knows, and
// the whole is what the receipt decoder accepts (phases.DecodeReceipt: its
// counts and lengths within the format's limits, a fee that adds up,
// labels valid, in order and naming outputs).
func ToReceipt(m *v1.Receipt) (*phases.Receipt, error) {
	rc, err := toReceipt(m)
	if err != nil {
		return nil, err
	}
	if _, err := phases.DecodeReceipt(rc.Encode()); err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	return rc, nil
}

func toReceipt(m *v1.Receipt) (*phases.Receipt, error) {
	if m == nil {
		return nil, fmt.Errorf("receipt: missing")
	}
	if n := len(m.Inputs) + len(m.Outputs) + len(m.Log) + len(m.Labels); n > phases.MaxInputs+2*phases.MaxOutputs+phases.MaxLogLines {
		return nil, fmt.Errorf("receipt: %d refs, labels and log lines exceed the receipt format's limits", n)
	}
	rc := &phases.Receipt{Status: phases.Status(m.Status), Phase: phases.Phase(m.Phase), Reason: m.Reason, Log: m.Log}
	var err error
	if rc.TxID, err = ParseHash(m.TxId); err != nil {
		return nil, fmt.Errorf("receipt: tx_id: %w", err)
	}
	if rc.Status != phases.Accepted && rc.Status != phases.Refused {
		return nil, fmt.Errorf("receipt: status %d unknown", m.Status)
	}
	if m.Phase < v1.Phase_PHASE_UNSPECIFIED || m.Phase > v1.Phase_PHASE_COMMIT {
		return nil, fmt.Errorf("receipt: phase %d unknown", m.Phase)
	}
	if g := m.Gas; g != nil {
		rc.Gas = phases.Gas{Lookup: g.Lookup, Calculation: g.Calculation, Validity: g.Validity}
	}
	if p := m.Predicate; p != nil {
		if p.Role < v1.Role_ROLE_UNSPECIFIED || p.Role > v1.Role_ROLE_EXPORT {
			return nil, fmt.Errorf("receipt: role %d unknown", p.Role)
		}
		rc.Predicate.Role, rc.Predicate.Index = phases.Role(p.Role), p.Index
		if rc.Predicate.Code, err = ParseHash(p.CodeHash); err != nil {
			return nil, fmt.Errorf("receipt: predicate code: %w", err)
		}
	}
	for _, list := range []struct {
		from []*v1.NoteRef
		to   *[]phases.NoteRef
	}{{m.Inputs, &rc.Inputs}, {m.Outputs, &rc.Outputs}} {
		for _, r := range list.from {
			ref, err := ToNoteRef(r)
			if err != nil {
				return nil, fmt.Errorf("receipt: %w", err)
			}
			*list.to = append(*list.to, ref)
		}
	}
	if f := m.Fee; f != nil {
		if rc.Fee, err = toFeePaid(f); err != nil {
			return nil, fmt.Errorf("receipt: fee: %w", err)
		}
	}
	for _, l := range m.Labels {
		rc.Labels = append(rc.Labels, phases.OutputLabel{Output: l.GetOutput(), Label: l.GetLabel()})
	}
	return rc, nil
}

// toFeePaid reads a receipt's fee back; DecodeReceipt checks that it adds
// up.
func toFeePaid(m *v1.FeePaid) (*phases.FeePaid, error) {
	f := &phases.FeePaid{Price: m.GasPrice, Gas: m.Gas, Amount: m.Amount}
	var err error
	if f.Note, err = ToNoteRef(m.Note); err != nil {
		return nil, fmt.Errorf("note: %w", err)
	}
	if f.Paid, err = ToNoteRef(m.Paid); err != nil {
		return nil, fmt.Errorf("paid: %w", err)
	}
	if m.Change != nil {
		ch, err := ToNoteRef(m.Change)
		if err != nil {
			return nil, fmt.Errorf("change: %w", err)
		}
		f.Change = &ch
	}
	return f, nil
}

// ToNoteRef reads a note reference back.
func ToNoteRef(m *v1.NoteRef) (phases.NoteRef, error) {
	var r phases.NoteRef
	var err error
	if r.ID, err = ParseHash(m.GetId()); err != nil {
		return r, fmt.Errorf("note id: %w", err)
	}
	if r.Key, err = notes.ParseStateKey(m.GetStateKey()); err != nil {
		return r, fmt.Errorf("note state key: %w", err)
	}
	return r, nil
}

// ToNote decodes a note from its encoding (the readable fields are not
// read).
func ToNote(m *v1.Note) (*notes.Note, error) {
	if m == nil {
		return nil, fmt.Errorf("note: missing")
	}
	return notes.Decode(m.Encoding)
}

// ToBlock decodes a block from its encoding (the readable header is not
// read; the signature is not checked: chain.VerifyBlock).
func ToBlock(m *v1.Block) (*chain.Block, error) {
	if m == nil {
		return nil, fmt.Errorf("block: missing")
	}
	return chain.DecodeBlock(m.Encoding)
}

// ToPeer reads a trust-file entry back.
func ToPeer(m *v1.Peer) (fractal.Peer, error) {
	var p fractal.Peer
	var err error
	if p.ID, err = ParseHash(m.InstanceId); err != nil {
		return p, fmt.Errorf("peer instance_id: %w", err)
	}
	if p.Genesis, err = ParseHash(m.GenesisHash); err != nil {
		return p, fmt.Errorf("peer genesis_hash: %w", err)
	}
	for _, s := range m.ExecutorKeys {
		k, err := keys.ParsePublicKey(s)
		if err != nil {
			return p, fmt.Errorf("peer executor key: %w", err)
		}
		p.Keys = append(p.Keys, k)
	}
	return p, nil
}

// ChainWait is where a validator set's waiting batch stands; nil for nil.
func ChainWait(c *fractal.ChainWait) *v1.ChainWait {
	if c == nil {
		return nil
	}
	return &v1.ChainWait{FixedAt: c.FixedAt, ExpiresAt: c.ExpiresAt, Decided: c.Decided, SharesAt: c.SharesAt}
}

// ToChainWait reads a ChainWait back, refusing heights out of order; nil
// for nil.
func ToChainWait(m *v1.ChainWait) (*fractal.ChainWait, error) {
	if m == nil {
		return nil, nil
	}
	if m.FixedAt == 0 || m.ExpiresAt <= m.FixedAt || m.Decided < m.FixedAt || m.SharesAt > m.Decided || (m.SharesAt != 0 && m.SharesAt <= m.FixedAt) {
		return nil, fmt.Errorf("chain wait: heights out of order (fixed %d, expires %d, decided %d, shares %d)", m.FixedAt, m.ExpiresAt, m.Decided, m.SharesAt)
	}
	return &fractal.ChainWait{FixedAt: m.FixedAt, ExpiresAt: m.ExpiresAt, Decided: m.Decided, SharesAt: m.SharesAt}, nil
}

// ToEncryptedStatus reads an encrypted batch's status back from its signed
// record; nil for nil.
func ToEncryptedStatus(m *v1.EncryptedBatch) (*fractal.EncryptedStatus, error) {
	if m == nil {
		return nil, nil
	}
	b, err := chain.DecodeEncryptedBatch(m.Record)
	if err != nil {
		return nil, err
	}
	if m.State < v1.EncryptedBatchState_ENCRYPTED_BATCH_STATE_FIXED || m.State > v1.EncryptedBatchState_ENCRYPTED_BATCH_STATE_EXPIRED {
		return nil, fmt.Errorf("encrypted batch state %d unknown", m.State)
	}
	st := &fractal.EncryptedStatus{Batch: b, State: fractal.EncryptedState(m.State), Needed: int(m.Needed)}
	for _, s := range m.Shares {
		st.Shares = append(st.Shares, int(s))
	}
	return st, nil
}
