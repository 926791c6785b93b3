package fractal

// The next epoch's DKG as consensus transactions (decision 162): admission
// of a DKG envelope (CheckTx and again in the decided block), its record
// in the store, and the decision every validator takes from the recorded
// envelopes at the last height of round 3.

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/kv"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// dkgTxMagic starts a consensus transaction carrying one signed DKG
// envelope (tfhe/dkg, version 2).
const dkgTxMagic = "fractal dkg v2\x00"

// DKGTx returns the consensus transaction carrying envelope.
func DKGTx(envelope []byte) []byte { return append([]byte(dkgTxMagic), envelope...) }

// dkgBody returns the envelope a DKG transaction carries; ok is false for
// any other transaction.
func dkgBody(raw []byte) ([]byte, bool) {
	if !isDKGTx(raw) {
		return nil, false
	}
	return raw[len(dkgTxMagic):], true
}

func isDKGTx(raw []byte) bool { return bytes.HasPrefix(raw, []byte(dkgTxMagic)) }

// DecodeDKGTx parses a DKG transaction into its envelope (form only: the
// session, sender and signature are checked at admission).
func DecodeDKGTx(raw []byte) (*dkg.Envelope, error) {
	body, ok := dkgBody(raw)
	if !ok {
		return nil, errors.New("not a DKG transaction")
	}
	return dkg.DecodeEnvelope(body)
}

// dkgWindow is the next epoch's DKG as seen by the block at height.
type dkgWindow struct {
	rules    *EpochRules
	state    epochState
	s        *dkg.Session
	height   uint64
	boundary uint64
	round    int
}

// dkgAt returns the next epoch's DKG for the block at height h, nil when
// the instance has no epochs.
func (in *Instance) dkgAt(txn *badger.Txn, h uint64) (*dkgWindow, error) {
	rules, err := epochRules(txn)
	if err != nil || rules == nil {
		return nil, err
	}
	st, err := readEpochState(txn)
	if err != nil {
		return nil, err
	}
	s, err := in.sessionOf(rules, st)
	if err != nil {
		return nil, err
	}
	d := &dkgWindow{rules: rules, state: st, s: s, height: h}
	d.boundary, d.round = rules.Round(h)
	return d, nil
}

// sessionOf is the DKG session of the epoch after st.epoch, attempt
// st.attempt, among the rules' keyholders.
func (in *Instance) sessionOf(rules *EpochRules, st epochState) (*dkg.Session, error) {
	return dkg.NewSession(dkg.Session{Instance: in.id, Epoch: st.epoch + 1, Attempt: st.attempt,
		K: KeyholderThreshold(len(rules.Keyholders)), Keys: rules.Keyholders})
}

// sessionFor is sessionOf with the stored rules.
func (in *Instance) sessionFor(txn *badger.Txn, st epochState) (*dkg.Session, error) {
	rules, err := epochRules(txn)
	if err == nil && rules == nil {
		err = errors.New("the instance has no epochs")
	}
	if err != nil {
		return nil, err
	}
	return in.sessionOf(rules, st)
}

// dkgSlot names one sender's envelopes of one round.
type dkgSlot struct {
	kind dkg.Kind
	from uint32
}

func dkgEnvelopeKey(session [32]byte, e *dkg.Envelope) []byte {
	h := e.Hash()
	return decidedKey(decidedDKG, session[:], []byte{byte(e.Kind)}, u32(e.From), h[:])
}

// admit checks a DKG envelope for the block at d.height: a round window is
// open; the envelope is of this DKG's session, from one of its keyholders
// and signed by it (dkg.Session.Open); it is of a round whose window has
// opened and not a confirmation (the chain agrees; there is no round 4);
// it is not recorded already; and at most one other from its sender for
// that round is (a second is kept as evidence of equivocation, decision
// 130; a third is refused). block holds the hashes of this block's
// envelopes taken so far (nil in CheckTx).
func (d *dkgWindow) admit(txn *badger.Txn, body []byte, block map[dkgSlot][][32]byte) (*dkg.Envelope, error) {
	if d.round == 0 {
		return nil, fmt.Errorf("no DKG window is open at height %d (epoch %d's DKG opens at height %d)", d.height, d.state.epoch+1, d.boundary-3*d.rules.Window)
	}
	e, err := d.s.Open(body)
	if err != nil {
		return nil, err
	}
	switch {
	case e.Kind == dkg.KindConfirmation:
		return nil, errors.New("a confirmation: on a chain there is no round 4 (the chain is the agreement)")
	case int(e.Kind) > d.round:
		return nil, fmt.Errorf("a %s at height %d, in round %d's window: its round's has not opened", e.Kind, d.height, d.round)
	}
	slot, h := dkgSlot{e.Kind, e.From}, e.Hash()
	have := append([][32]byte(nil), block[slot]...)
	sid := d.s.ID()
	err = badgerdb.KV{Txn: txn}.Scan(decidedKey(decidedDKG, sid[:], []byte{byte(e.Kind)}, u32(e.From)), func(k, _ []byte) error {
		have = append(have, [32]byte(k[len(k)-32:]))
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, o := range have {
		if o == h {
			return nil, fmt.Errorf("this %s of keyholder %d is recorded already", e.Kind, e.From)
		}
	}
	if len(have) >= 2 {
		return nil, fmt.Errorf("two different %ss of keyholder %d are recorded already as evidence; a third is refused", e.Kind, e.From)
	}
	return e, nil
}

// checkDKGPending is CheckTx's admission of a DKG transaction, for the
// block after the last committed one.
func (in *Instance) checkDKGPending(body []byte) (*Pending, error) {
	var e *dkg.Envelope
	err := in.db.View(func(txn *badger.Txn) error {
		h, err := decidedHeight(txn)
		if err != nil {
			return err
		}
		d, err := in.dkgAt(txn, h+1)
		if err == nil && d == nil {
			err = errors.New("this validator set runs no threshold-key epochs")
		}
		if err != nil {
			return err
		}
		e, err = d.admit(txn, body, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: check DKG transaction: %w", err)
	}
	return &Pending{DKG: e}, nil
}

// decidedDKGPart is a decided block's part in the next epoch's DKG: the
// envelopes it records and, at the last height of round 3, the attempt's
// record, the epoch state after it and the new key.
type decidedDKGPart struct {
	d      *dkgWindow // nil: the instance has no epochs
	block  map[dkgSlot][][32]byte
	taken  []*dkg.Envelope
	record *EpochRecord
}

func (in *Instance) planDKG(view *badger.Txn, height uint64) (*decidedDKGPart, error) {
	d, err := in.dkgAt(view, height)
	if err != nil {
		return nil, fmt.Errorf("epochs: %w", err)
	}
	return &decidedDKGPart{d: d, block: map[dkgSlot][][32]byte{}}, nil
}

// take admits one DKG transaction's envelope into the block.
func (p *decidedDKGPart) take(view *badger.Txn, body []byte) (*dkg.Envelope, error) {
	if p.d == nil {
		return nil, errors.New("this validator set runs no threshold-key epochs")
	}
	e, err := p.d.admit(view, body, p.block)
	if err != nil {
		return nil, err
	}
	slot := dkgSlot{e.Kind, e.From}
	p.block[slot] = append(p.block[slot], e.Hash())
	p.taken = append(p.taken, e)
	return e, nil
}

// finish decides the DKG when the block is the last height of round 3:
// dkg.Decide over every envelope recorded for the session, this block's
// included. A key made takes force at the next height; a failure leaves
// the key in force, and the next attempt runs in the windows before the
// next epoch start.
func (p *decidedDKGPart) finish(view *badger.Txn) error {
	d := p.d
	if d == nil || d.round != 3 || d.height != d.boundary-1 {
		return nil
	}
	msgs, err := dkgEnvelopes(view, d.s.ID())
	if err != nil {
		return err
	}
	r := &EpochRecord{Epoch: d.state.epoch + 1, Attempt: d.state.attempt, Session: d.s.ID(), Height: d.height, Start: d.boundary}
	o, err := dkg.Decide(d.s, append(msgs, p.taken...))
	if err == nil {
		r.Key, err = tfhe.KeyFromDKG(tfhe.OriginDKG, o)
	}
	if err != nil {
		r.Failure = err.Error()
	} else {
		r.Transcript, r.Qual, r.Holders, r.Faults = o.Hash, o.Qual, o.Holders, o.Faults
	}
	p.record = r
	return nil
}

// write records the block's envelopes and, when it decided, the attempt's
// record, the epoch state and the key in force.
func (p *decidedDKGPart) write(txn kv.Writer) error {
	if p.d == nil {
		return nil
	}
	sid := p.d.s.ID()
	for _, e := range p.taken {
		if err := txn.Set(dkgEnvelopeKey(sid, e), e.Encode()); err != nil {
			return err
		}
	}
	r := p.record
	if r == nil {
		return nil
	}
	next := epochState{p.d.state.epoch, p.d.state.attempt + 1}
	if r.Key != nil {
		next = epochState{r.Epoch, 0}
		if err := setThresholdKey(txn, r.Key); err != nil {
			return err
		}
	}
	if err := txn.Set(epochRecordKey(r.Epoch, r.Attempt), r.Encode()); err != nil {
		return err
	}
	return txn.Set(decidedKey(decidedEpoch), next.encode())
}
