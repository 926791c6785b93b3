package fractal

// Threshold-key epochs on a validator set (decisions 136 item 7, 162): the
// rules fixed at genesis, the epoch in force, and each DKG attempt's
// record. The DKG's messages travel as consensus transactions
// (epochs_decided.go); the validators' parties run in package
// fractal/validator.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// KeyholderThreshold is the k of a threshold key shared by n validators:
// ⌊2n/3⌋+1, the shares a proposer must carry at the next height (decision
// 136 item 5).
func KeyholderThreshold(n int) int { return 2*n/3 + 1 }

// EpochRules are a validator set's epoch parameters, fixed at genesis
// (app_state "epochs"): every Blocks heights a new epoch may start with a
// new threshold key, made by a DKG among Keyholders in the three windows of
// Window heights before it.
type EpochRules struct {
	Blocks uint64 // epoch_blocks: epoch b+1 may start at height b·Blocks+1
	Window uint64 // dkg_window: heights per DKG round
	// Keyholders are the validators' keyholder keys: keyholder i+1 is the
	// validator at position i of the stored set (decision 160).
	Keyholders []keys.PublicKey
}

const epochRulesVersion = 1

// MaxDKGWindow bounds dkg_window.
const MaxDKGWindow = 1 << 20

// Check refuses rules that leave no room for a DKG before each epoch start
// (Blocks > 3·Window, the three windows after the epoch's first height) or
// that name another number of keyholders than the n validators.
func (r *EpochRules) Check(n int) error {
	switch {
	case r.Window < 1 || r.Window > MaxDKGWindow:
		return fmt.Errorf("dkg_window %d outside 1..%d", r.Window, MaxDKGWindow)
	case r.Blocks <= 3*r.Window:
		return fmt.Errorf("epoch_blocks %d leaves no room for the three DKG windows of %d heights (needs more than %d)", r.Blocks, r.Window, 3*r.Window)
	case len(r.Keyholders) != n:
		return fmt.Errorf("%d keyholder keys for %d validators", len(r.Keyholders), n)
	}
	return nil
}

// Round places consensus height h in the schedule: the height at which the
// next epoch may start (boundary), and the DKG round 1..3 whose window
// holds h (0 when h is in none). Round r of the DKG for the epoch starting
// at B holds the heights [B−(4−r)·W, B−(3−r)·W).
func (r *EpochRules) Round(h uint64) (boundary uint64, round int) {
	boundary = ((h-1)/r.Blocks+1)*r.Blocks + 1
	start := boundary - 3*r.Window
	if h < start {
		return boundary, 0
	}
	return boundary, int((h-start)/r.Window) + 1
}

// Encode is u8 version ‖ u64 blocks ‖ u64 window ‖ u32 n ‖ n × key.
func (r *EpochRules) Encode() []byte {
	w := enc.NewWriter(24 + 32*len(r.Keyholders))
	w.U8(epochRulesVersion)
	w.U64(r.Blocks)
	w.U64(r.Window)
	w.U32(uint32(len(r.Keyholders)))
	for _, k := range r.Keyholders {
		w.Fixed(k[:])
	}
	return w.Bytes()
}

// DecodeEpochRules parses Encode's output (checked with Check by who knows n).
func DecodeEpochRules(b []byte) (*EpochRules, error) {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != epochRulesVersion {
		return nil, fmt.Errorf("epoch rules: version %d", v)
	}
	e := &EpochRules{Blocks: r.U64(), Window: r.U64()}
	e.Keyholders = make([]keys.PublicKey, r.Count(dkg.MaxKeyholders, "keyholders"))
	for i := range e.Keyholders {
		r.Into(e.Keyholders[i][:])
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("epoch rules: %w", err)
	}
	return e, nil
}

// AttachGenesisEpochs stores a validator-set instance's epoch rules, with
// its genesis threshold key and before any decided block; the same rules
// again change nothing.
func (in *Instance) AttachGenesisEpochs(r *EpochRules) error {
	if in.validators == nil {
		return errors.New("fractal: attach epochs: not a validator-set instance")
	}
	if err := r.Check(len(in.validators.Validators())); err != nil {
		return fmt.Errorf("fractal: attach epochs: %w", err)
	}
	in.lock()
	defer in.mu.Unlock()
	err := in.db.Update(func(txn *badger.Txn) error {
		if old, err := getValue(txn, decidedKey(decidedEpochRules)); err == nil {
			if string(old) == string(r.Encode()) {
				return nil
			}
			return errors.New("other epoch rules are stored")
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if _, err := thresholdKey(txn); err != nil {
			return fmt.Errorf("epochs need the genesis threshold key: %w", err)
		}
		if _, err := getValue(txn, metaDecided); err == nil {
			return errors.New("the instance has decided blocks")
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(decidedKey(decidedEpochRules), r.Encode())
	})
	if err != nil {
		return fmt.Errorf("fractal: attach epochs: %w", err)
	}
	return nil
}

// epochRules reads the stored rules, nil when the instance has no epochs.
func epochRules(txn *badger.Txn) (*EpochRules, error) {
	raw, err := getValue(txn, decidedKey(decidedEpochRules))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return DecodeEpochRules(raw)
}

// epochState is the epoch in force and the attempt number of the next
// epoch's DKG (v e: u64 epoch ‖ u32 attempt; epoch 1, attempt 0 when
// absent: the genesis key).
type epochState struct {
	epoch   uint64
	attempt uint32
}

func readEpochState(txn *badger.Txn) (epochState, error) {
	raw, err := getValue(txn, decidedKey(decidedEpoch))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return epochState{epoch: 1}, nil
	case err != nil:
		return epochState{}, err
	case len(raw) != 12:
		return epochState{}, fmt.Errorf("epoch state has %d bytes", len(raw))
	}
	return epochState{binary.BigEndian.Uint64(raw), binary.BigEndian.Uint32(raw[8:])}, nil
}

func (s epochState) encode() []byte { return binary.BigEndian.AppendUint32(u64(s.epoch), s.attempt) }

// EpochStatus is where a validator set stands in its epochs after the last
// committed height: the epoch in force, the next epoch's DKG session
// (its attempt), and the round whose window holds the next height.
type EpochStatus struct {
	Rules    *EpochRules
	Height   uint64 // the last committed consensus height
	Epoch    uint64 // the epoch whose key is in force
	Session  *dkg.Session
	Boundary uint64 // where the next epoch may start
	Round    int    // the DKG round of height Height+1 (0: none)
}

// Epochs returns the instance's epoch status; nil when it has no epochs.
func (in *Instance) Epochs() (*EpochStatus, error) {
	var st *EpochStatus
	err := in.db.View(func(txn *badger.Txn) error {
		h, err := decidedHeight(txn)
		if err != nil {
			return err
		}
		d, err := in.dkgAt(txn, h+1)
		if err != nil || d == nil {
			return err
		}
		st = &EpochStatus{Rules: d.rules, Height: h, Epoch: d.state.epoch, Session: d.s, Boundary: d.boundary, Round: d.round}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: epochs: %w", err)
	}
	return st, nil
}

// DKGEnvelopes returns the DKG envelopes the chain recorded for a session,
// in the transcript's order (round, sender, hash).
func (in *Instance) DKGEnvelopes(session [32]byte) ([]*dkg.Envelope, error) {
	var out []*dkg.Envelope
	err := in.db.View(func(txn *badger.Txn) (err error) {
		out, err = dkgEnvelopes(txn, session)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: DKG envelopes: %w", err)
	}
	return out, nil
}

func dkgEnvelopes(txn *badger.Txn, session [32]byte) ([]*dkg.Envelope, error) {
	var out []*dkg.Envelope
	err := badgerdb.KV{Txn: txn}.Scan(decidedKey(decidedDKG, session[:]), func(_, v []byte) error {
		e, err := dkg.DecodeEnvelope(v)
		if err == nil {
			out = append(out, e)
		}
		return err
	})
	return out, err
}

// An EpochRecord is what one DKG attempt concluded, decided by every
// validator at the last height of its round 3 from the envelopes in the
// chain (v k u64 epoch u32 attempt).
type EpochRecord struct {
	Epoch   uint64 // the epoch the key is for
	Attempt uint32
	Session [32]byte
	Height  uint64 // the consensus height that decided it
	Start   uint64 // the height from which the key is in force (when made)
	// Key is the key made, nil when the attempt failed (Failure says why;
	// the key in force stays).
	Key        *tfhe.PublicKey
	Transcript [32]byte // the transcript's hash (also in Key)
	Qual       []int    // dealers whose deals make the key
	Holders    []int    // keyholders holding a share
	Faults     []dkg.Fault
	Failure    string
}

const epochRecordVersion = 1

// Encode is the record's canonical encoding (docs/formats/validator-set.md).
func (r *EpochRecord) Encode() []byte {
	w := enc.NewWriter(256)
	w.U8(epochRecordVersion)
	w.U64(r.Epoch)
	w.U32(r.Attempt)
	w.Fixed(r.Session[:])
	w.U64(r.Height)
	w.U64(r.Start)
	w.Bool(r.Key != nil)
	if r.Key != nil {
		w.Var(r.Key.Encode())
	}
	w.Fixed(r.Transcript[:])
	for _, xs := range [][]int{r.Qual, r.Holders} {
		w.U32(uint32(len(xs)))
		for _, x := range xs {
			w.U32(uint32(x))
		}
	}
	w.U32(uint32(len(r.Faults)))
	for _, f := range r.Faults {
		w.U32(uint32(f.Keyholder))
		w.String(f.Reason)
	}
	w.String(r.Failure)
	return w.Bytes()
}

// maxEpochText bounds a reason or failure in a record.
const maxEpochText = 1 << 16

// DecodeEpochRecord parses Encode's output.
func DecodeEpochRecord(b []byte) (*EpochRecord, error) {
	rd := enc.NewReader(b)
	if v := rd.U8(); rd.Err() == nil && v != epochRecordVersion {
		return nil, fmt.Errorf("epoch record: version %d", v)
	}
	r := &EpochRecord{Epoch: rd.U64(), Attempt: rd.U32()}
	rd.Into(r.Session[:])
	r.Height, r.Start = rd.U64(), rd.U64()
	if rd.Bool() {
		if kb := rd.Var(1<<16, "key"); rd.Err() == nil {
			pk, err := tfhe.DecodePublicKey(kb)
			if err != nil {
				return nil, fmt.Errorf("epoch record: %w", err)
			}
			r.Key = pk
		}
	}
	rd.Into(r.Transcript[:])
	for _, xs := range []*[]int{&r.Qual, &r.Holders} {
		n := rd.Count(dkg.MaxKeyholders, "keyholders")
		for range n {
			*xs = append(*xs, int(rd.U32()))
		}
	}
	n := rd.Count(dkg.MaxKeyholders, "faults")
	for range n {
		r.Faults = append(r.Faults, dkg.Fault{Keyholder: int(rd.U32()), Reason: rd.String(maxEpochText, "reason")})
	}
	r.Failure = rd.String(maxEpochText, "failure")
	if err := rd.Finish(); err != nil {
		return nil, fmt.Errorf("epoch record: %w", err)
	}
	return r, nil
}

func epochRecordKey(epoch uint64, attempt uint32) []byte {
	return decidedKey(decidedEpochRecord, u64(epoch), binary.BigEndian.AppendUint32(nil, attempt))
}

// EpochRecords returns every DKG attempt's record, by epoch and attempt.
func (in *Instance) EpochRecords() ([]*EpochRecord, error) {
	var out []*EpochRecord
	err := in.db.View(func(txn *badger.Txn) error {
		return badgerdb.KV{Txn: txn}.Scan(decidedKey(decidedEpochRecord), func(_, v []byte) error {
			r, err := DecodeEpochRecord(v)
			if err == nil {
				out = append(out, r)
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: epoch records: %w", err)
	}
	return out, nil
}

// EpochTranscript returns the transcript of a successful DKG attempt, from
// the envelopes the chain recorded: what `fractal tfhe check-transcript
// --chain` checks.
func (in *Instance) EpochTranscript(r *EpochRecord) (*dkg.Transcript, error) {
	if r.Key == nil {
		return nil, fmt.Errorf("fractal: epoch %d attempt %d made no key: %s", r.Epoch, r.Attempt, r.Failure)
	}
	var t *dkg.Transcript
	err := in.db.View(func(txn *badger.Txn) error {
		d, err := in.sessionFor(txn, epochState{r.Epoch - 1, r.Attempt})
		if err != nil {
			return err
		}
		msgs, err := dkgEnvelopes(txn, r.Session)
		if err != nil {
			return err
		}
		o, err := dkg.Decide(d, msgs)
		if err != nil {
			return err
		}
		t = o.Transcript
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: epoch %d transcript: %w", r.Epoch, err)
	}
	return t, nil
}

// ArchivedKey returns the threshold key with this ID that the instance
// held at any time (a batch names the key it was fixed under).
func (in *Instance) ArchivedKey(id [32]byte) (*tfhe.PublicKey, error) {
	var pk *tfhe.PublicKey
	err := in.db.View(func(txn *badger.Txn) (err error) {
		pk, err = archivedKey(txn, id)
		return err
	})
	return pk, err
}

func archivedKey(txn *badger.Txn, id [32]byte) (*tfhe.PublicKey, error) {
	raw, err := getValue(txn, encKeyOf(encArchive, id[:]))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("no threshold key %x was ever attached", id[:8])
	}
	if err != nil {
		return nil, err
	}
	return tfhe.DecodePublicKey(raw)
}

// EpochRules returns the stored epoch rules, nil when the instance has no
// epochs.
func (in *Instance) EpochRules() (*EpochRules, error) {
	var r *EpochRules
	err := in.db.View(func(txn *badger.Txn) (err error) {
		r, err = epochRules(txn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fractal: epoch rules: %w", err)
	}
	return r, nil
}
