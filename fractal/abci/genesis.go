package abci

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
)

// AppState is a validator-set genesis's app_state: the instance's trust
// entry and, when the validators made a threshold key by their DKG at
// genesis (decision 160), that key (with its transcript hash). Without a
// key, app_state is the bare trust entry, as before; with one it is
// {"trust": entry, "threshold_key": hex of the key's encoding,
// "encrypted_expiry_blocks": N} (docs/formats/validator-set.md).
type AppState struct {
	Trust        fractal.Peer
	ThresholdKey *tfhe.PublicKey
	// EncryptedExpiryBlocks is the heights an encrypted batch may wait for
	// shares (decision 164); 0 in a genesis that names none, meaning
	// fractal.DefaultEncryptedExpiryBlocks.
	EncryptedExpiryBlocks uint64
	// Epochs are the threshold key's epochs (decision 162), nil without:
	// app_state then has no "epochs" and is what it was before epochs.
	Epochs *fractal.EpochRules
}

type appStateJSON struct {
	Trust                 json.RawMessage `json:"trust"`
	ThresholdKey          string          `json:"threshold_key"`
	EncryptedExpiryBlocks uint64          `json:"encrypted_expiry_blocks,omitempty"`
	Epochs                *epochsJSON     `json:"epochs,omitempty"`
}

// ExpiryBlocks is the window s names, or the default.
func (s *AppState) ExpiryBlocks() uint64 {
	if s.EncryptedExpiryBlocks == 0 {
		return fractal.DefaultEncryptedExpiryBlocks
	}
	return s.EncryptedExpiryBlocks
}

// epochsJSON is app_state's "epochs": epoch_blocks, dkg_window and the
// validators' keyholder keys in the order of the set (standard base64).
type epochsJSON struct {
	EpochBlocks uint64   `json:"epoch_blocks"`
	DKGWindow   uint64   `json:"dkg_window"`
	Keyholders  []string `json:"keyholders"`
}

// EncodeAppState writes s as app_state.
func EncodeAppState(s *AppState) ([]byte, error) {
	if s.ThresholdKey == nil {
		return json.Marshal(s.Trust)
	}
	trust, err := json.Marshal(s.Trust)
	if err != nil {
		return nil, err
	}
	j := appStateJSON{Trust: trust, ThresholdKey: hex.EncodeToString(s.ThresholdKey.Encode()), EncryptedExpiryBlocks: s.EncryptedExpiryBlocks}
	if r := s.Epochs; r != nil {
		j.Epochs = &epochsJSON{EpochBlocks: r.Blocks, DKGWindow: r.Window}
		for _, k := range r.Keyholders {
			j.Epochs.Keyholders = append(j.Epochs.Keyholders, k.String())
		}
	}
	return json.Marshal(j)
}

// ParseAppState reads app_state strictly (no unknown fields).
func ParseAppState(raw []byte) (*AppState, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	s := &AppState{}
	if _, wrapped := probe["trust"]; !wrapped {
		return s, s.Trust.UnmarshalJSON(raw)
	}
	var j appStateJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	if err := s.Trust.UnmarshalJSON(j.Trust); err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	kb, err := hex.DecodeString(j.ThresholdKey)
	if err != nil || len(kb) == 0 {
		return nil, errors.New("threshold_key is not a hex key encoding")
	}
	if s.ThresholdKey, err = tfhe.DecodePublicKey(kb); err != nil {
		return nil, fmt.Errorf("threshold_key: %w", err)
	}
	if j.EncryptedExpiryBlocks > fractal.MaxEncryptedExpiryBlocks {
		return nil, fmt.Errorf("encrypted_expiry_blocks %d is over %d", j.EncryptedExpiryBlocks, uint64(fractal.MaxEncryptedExpiryBlocks))
	}
	s.EncryptedExpiryBlocks = j.EncryptedExpiryBlocks
	if j.Epochs != nil {
		r := &fractal.EpochRules{Blocks: j.Epochs.EpochBlocks, Window: j.Epochs.DKGWindow}
		for i, k := range j.Epochs.Keyholders {
			pub, err := keys.ParsePublicKey(k)
			if err != nil {
				return nil, fmt.Errorf("epochs: keyholder %d: %w", i+1, err)
			}
			r.Keyholders = append(r.Keyholders, pub)
		}
		if s.Trust.Validators == nil {
			return nil, errors.New("epochs: the trust entry names no validator set")
		}
		if err := r.Check(len(s.Trust.Validators.Validators())); err != nil {
			return nil, fmt.Errorf("epochs: %w", err)
		}
		s.Epochs = r
	}
	return s, nil
}

// CheckAppState checks that app_state names in: its ID and genesis, and
// the same threshold key as the one in's store holds (or none on both),
// with the same encrypted expiry window.
func CheckAppState(raw []byte, in *fractal.Instance) (*AppState, error) {
	s, err := ParseAppState(raw)
	if err != nil {
		return nil, fmt.Errorf("genesis app_state: %w", err)
	}
	self, err := in.TrustEntry()
	if err != nil {
		return nil, err
	}
	if s.Trust.ID != self.ID || s.Trust.Genesis != self.Genesis || s.Trust.Validators == nil {
		return nil, fmt.Errorf("genesis app_state names instance %x (genesis %x), this one is %x (genesis %x)", s.Trust.ID, s.Trust.Genesis, self.ID, self.Genesis)
	}
	have, err := in.ThresholdKey()
	switch {
	case errors.Is(err, fractal.ErrNoThresholdKey) && s.ThresholdKey == nil:
		return s, nil
	case errors.Is(err, fractal.ErrNoThresholdKey):
		return nil, fmt.Errorf("genesis app_state names threshold key %x, the instance holds none", keyID(s.ThresholdKey))
	case err != nil:
		return nil, err
	case s.ThresholdKey == nil:
		return nil, fmt.Errorf("genesis app_state names no threshold key, the instance holds %x", keyID(have))
	case s.ThresholdKey.ID() != have.ID() && s.Epochs == nil:
		return nil, fmt.Errorf("genesis app_state names threshold key %x, the instance holds %x", keyID(s.ThresholdKey), keyID(have))
	}
	rules, err := in.EpochRules()
	switch {
	case err != nil:
		return nil, err
	case (rules == nil) != (s.Epochs == nil):
		return nil, fmt.Errorf("genesis app_state and the instance disagree on epochs (app_state: %v, instance: %v)", s.Epochs != nil, rules != nil)
	case rules != nil && !bytes.Equal(rules.Encode(), s.Epochs.Encode()):
		return nil, errors.New("genesis app_state names other epoch rules than the instance's")
	case rules != nil:
		// With epochs the key in force moves on; the genesis key is the first
		// one the instance ever held.
		if _, err := in.ArchivedKey(s.ThresholdKey.ID()); err != nil {
			return nil, fmt.Errorf("genesis app_state names threshold key %x: %w", keyID(s.ThresholdKey), err)
		}
	}
	window, err := in.EncryptedExpiryBlocks()
	if err != nil {
		return nil, err
	}
	if s.ExpiryBlocks() != window {
		return nil, fmt.Errorf("genesis app_state names an encrypted expiry of %d blocks, the instance's is %d", s.ExpiryBlocks(), window)
	}
	return s, nil
}

// keyID is the first bytes of a key's ID, for messages.
func keyID(pk *tfhe.PublicKey) []byte {
	id := pk.ID()
	return id[:8]
}
