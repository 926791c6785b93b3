// Package certify holds what a validator-set instance's blocks answer to:
// its validator set (fixed at genesis), the chain ID its CometBFT network
// signs under, the app hash a block's manifest becomes, and certificates —
// a CometBFT signed header and the commit of more than two thirds of the
// voting power that signed it — checked offline against a trusted set.
// It needs no store: a wallet, a light client or another instance checks
// a validator set's manifests with it as chain.VerifyBlock checks an
// executor's signature.
//
// Formats: docs/formats/validator-set.md; decisions 121 and 123.
package certify

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/enc"
)

// Bounds on a validator set read from outside (a trust file, a store).
const (
	MaxValidators = 1000
	// MaxPower bounds one validator's voting power, so that a full set's
	// total stays within CometBFT's types.MaxTotalVotingPower.
	MaxPower = types.MaxTotalVotingPower / MaxValidators
	// MaxCertificateBytes bounds a certificate: a header and a commit with
	// one signature of about 110 bytes per validator.
	MaxCertificateBytes = 1 << 20
	maxNameBytes        = 64
)

// ChainID is the CometBFT chain ID of the validator-set instance id:
// "fractal-" and the first 8 bytes of the ID in hex. Every vote and commit
// of its network signs it, so a commit of one instance never certifies a
// block of another.
func ChainID(id [32]byte) string { return "fractal-" + hex.EncodeToString(id[:8]) }

// AppHash is what a validator-set instance hands CometBFT as its app hash
// after a block while its chain holds no side records: the hash of its
// head manifest (chain.Block.Hash), which commits to the instance, the
// height, the previous manifest, the transactions, the state root after
// each of them, the final state root and the commitment-tree root.
func AppHash(b *chain.Block) []byte { h := AppHashOver(b.Hash(), [32]byte{}); return h[:] }

// AppHashOver is the app hash over the head manifest's hash and the side
// digest side: the running digest of the side records (the encrypted
// mempool's batches and keys, the epochs' DKG envelopes and records,
// decision 174), SHA-256(AppHashTag ‖ head ‖ side). While side is zero it
// is head itself, so a chain that never wrote a side record keeps the app
// hashes it always had. A CometBFT block that accepts no transaction and
// writes no side record leaves it unchanged.
func AppHashOver(head, side [32]byte) [32]byte {
	if side == ([32]byte{}) {
		return head
	}
	h := sha256.New()
	h.Write([]byte(AppHashTag))
	h.Write(head[:])
	h.Write(side[:])
	return [32]byte(h.Sum(nil))
}

// AppHashTag separates an app hash over side records from a manifest's
// hash.
const AppHashTag = "fractal app hash v2\x00"

// A Validator is one member of a set: its CometBFT consensus key
// (ed25519), its voting power and a name for people.
type Validator struct {
	PubKey [ed25519.PubKeySize]byte
	Power  int64
	Name   string
}

// CometKey is the validator's key as CometBFT's type.
func (v Validator) CometKey() ed25519.PubKey { return append(ed25519.PubKey(nil), v.PubKey[:]...) }

// Address is the validator's CometBFT address (20 bytes).
func (v Validator) Address() []byte { return v.CometKey().Address() }

// A ValidatorSet is a fixed set of validators: the authority of a
// validator-set instance (it implements chain.Authority).
type ValidatorSet struct {
	vals []Validator // in the order given
	set  *types.ValidatorSet
	hash [32]byte
}

// NewValidatorSet checks vals (1 to MaxValidators, each power in
// 1..MaxPower, no key twice, names of at most 64 bytes) and returns their set.
func NewValidatorSet(vals []Validator) (*ValidatorSet, error) {
	if len(vals) == 0 || len(vals) > MaxValidators {
		return nil, fmt.Errorf("certify: a validator set holds 1 to %d validators, not %d", MaxValidators, len(vals))
	}
	cv := make([]*types.Validator, len(vals))
	for i, v := range vals {
		switch {
		case v.Power < 1 || v.Power > MaxPower:
			return nil, fmt.Errorf("certify: validator %d: power %d outside 1..%d", i+1, v.Power, int64(MaxPower))
		case len(v.Name) > maxNameBytes:
			return nil, fmt.Errorf("certify: validator %d: name longer than %d bytes", i+1, maxNameBytes)
		case slices.ContainsFunc(vals[:i], func(w Validator) bool { return w.PubKey == v.PubKey }):
			return nil, fmt.Errorf("certify: validator %d: key %s appears twice", i+1, base64.StdEncoding.EncodeToString(v.PubKey[:]))
		}
		cv[i] = types.NewValidator(v.CometKey(), v.Power)
	}
	set := types.NewValidatorSet(cv) // cannot fail on what was checked above
	vs := &ValidatorSet{vals: slices.Clone(vals), set: set}
	copy(vs.hash[:], set.Hash())
	return vs, nil
}

// Hash is CometBFT's hash of the set (types.ValidatorSet.Hash: a Merkle
// root over each validator's key and power), which every CometBFT header
// carries as ValidatorsHash. A validator-set instance's genesis descriptor
// and every manifest name it where a solo instance names its executor key.
func (vs *ValidatorSet) Hash() [32]byte { return vs.hash }

// Validators returns the validators in the order the set was made with.
func (vs *ValidatorSet) Validators() []Validator { return slices.Clone(vs.vals) }

// Comet returns a copy of the set as CometBFT's type.
func (vs *ValidatorSet) Comet() *types.ValidatorSet { return vs.set.Copy() }

// TotalPower is the sum of the validators' voting power.
func (vs *ValidatorSet) TotalPower() int64 { return vs.set.TotalVotingPower() }

// validatorSetVersion is the first byte of a validator set's encoding.
const validatorSetVersion = 1

// Encode returns the canonical encoding: version, count, then per
// validator its key, power and name.
func (vs *ValidatorSet) Encode() []byte {
	w := enc.NewWriter(8 + 64*len(vs.vals))
	w.U8(validatorSetVersion)
	w.U32(uint32(len(vs.vals)))
	for _, v := range vs.vals {
		w.Fixed(v.PubKey[:])
		w.U64(uint64(v.Power))
		w.String(v.Name)
	}
	return w.Bytes()
}

// DecodeValidatorSet parses and checks a validator set's encoding.
func DecodeValidatorSet(data []byte) (*ValidatorSet, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != validatorSetVersion {
		return nil, fmt.Errorf("certify: validator set: unknown version %d", v)
	}
	n := r.Count(MaxValidators, "validators")
	vals := make([]Validator, n)
	for i := range vals {
		r.Into(vals[i].PubKey[:])
		p := r.U64()
		if p > uint64(MaxPower) {
			p = 0 // refused below with its index
		}
		vals[i].Power = int64(p)
		vals[i].Name = r.String(maxNameBytes, "name")
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("certify: validator set: %w", err)
	}
	return NewValidatorSet(vals)
}

// validatorJSON is one validator in a set's JSON form.
type validatorJSON struct {
	PubKey string `json:"pub_key"` // standard base64 of the ed25519 key
	Power  int64  `json:"power"`
	Name   string `json:"name,omitempty"`
}

type setJSON struct {
	Hash       string          `json:"hash"` // lower-case hex of Hash, checked when read
	Validators []validatorJSON `json:"validators"`
}

// MarshalJSON writes {"hash": …, "validators": [{"pub_key", "power", "name"}…]}.
func (vs *ValidatorSet) MarshalJSON() ([]byte, error) {
	j := setJSON{Hash: hex.EncodeToString(vs.hash[:])}
	for _, v := range vs.vals {
		j.Validators = append(j.Validators, validatorJSON{PubKey: base64.StdEncoding.EncodeToString(v.PubKey[:]), Power: v.Power, Name: v.Name})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes, refusing unknown fields and
// a hash that is not the set's.
func (vs *ValidatorSet) UnmarshalJSON(raw []byte) error {
	var j setJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("certify: validator set: %w", err)
	}
	if len(j.Validators) > MaxValidators {
		return fmt.Errorf("certify: a validator set holds 1 to %d validators, not %d", MaxValidators, len(j.Validators))
	}
	vals := make([]Validator, len(j.Validators))
	for i, v := range j.Validators {
		k, err := base64.StdEncoding.DecodeString(v.PubKey)
		if err != nil || len(k) != ed25519.PubKeySize {
			return fmt.Errorf("certify: validator %d: pub_key is not a base64 ed25519 key", i+1)
		}
		copy(vals[i].PubKey[:], k)
		vals[i].Power, vals[i].Name = v.Power, v.Name
	}
	got, err := NewValidatorSet(vals)
	if err != nil {
		return err
	}
	if h := hex.EncodeToString(got.hash[:]); h != j.Hash {
		return fmt.Errorf("certify: validator set: hash %q given, the validators hash to %s", j.Hash, h)
	}
	*vs = *got
	return nil
}

// Certificate versions (the first byte): version 1 is a signed header
// whose app hash is the block's hash; version 2 also carries the side
// digest the app hash folds in (AppHash).
const (
	certificateVersion     = 1
	certificateVersionSide = 2
)

// EncodeCertificate returns the certificate made of sh (a header and a
// commit for it) and side, the side digest of the state its app hash
// names: version 1 and the SignedHeader's protobuf encoding when side is
// zero, else version 2, side and the encoding. A nil vote in the commit is
// written absent: it does not count for the block, and verification skips
// its signature (see DecodeCertificate).
func EncodeCertificate(sh *types.SignedHeader, side [32]byte) ([]byte, error) {
	if sh.Commit != nil && slices.ContainsFunc(sh.Commit.Signatures, func(s types.CommitSig) bool { return s.BlockIDFlag == types.BlockIDFlagNil }) {
		c := *sh.Commit
		c.Signatures = slices.Clone(c.Signatures)
		for i, s := range c.Signatures {
			if s.BlockIDFlag == types.BlockIDFlagNil {
				c.Signatures[i] = types.NewCommitSigAbsent()
			}
		}
		sh = &types.SignedHeader{Header: sh.Header, Commit: &c}
	}
	raw, err := sh.ToProto().Marshal()
	if err != nil {
		return nil, fmt.Errorf("certify: certificate: %w", err)
	}
	if side == ([32]byte{}) {
		return append([]byte{certificateVersion}, raw...), nil
	}
	return append(append([]byte{certificateVersionSide}, side[:]...), raw...), nil
}

// DecodeCertificate parses a certificate into its signed header and side
// digest (zero for version 1); it checks the encoding only (Certify checks
// what it certifies). A certificate has one encoding (decision 167): its
// bytes must be what the header and commit they decode to encode to (no
// non-minimal varint, no field out of order, no unknown field), version 2
// only with a side digest that is not zero, and each of the commit's
// signatures is for the block or absent. A nil vote's signature is one
// CometBFT's light verification skips, so its bytes, like a second
// encoding, would vary under one certificate.
func DecodeCertificate(cert []byte) (*types.SignedHeader, [32]byte, error) {
	var side [32]byte
	switch {
	case len(cert) == 0:
		return nil, side, errors.New("certify: no certificate: a validator set's block is certified by a commit, not signed")
	case len(cert) > MaxCertificateBytes:
		return nil, side, fmt.Errorf("certify: certificate of %d bytes, limit %d", len(cert), MaxCertificateBytes)
	case cert[0] == certificateVersion:
		cert = cert[1:]
	case cert[0] != certificateVersionSide:
		return nil, side, fmt.Errorf("certify: certificate: unknown version %d", cert[0])
	case len(cert) < 1+32:
		return nil, side, errors.New("certify: certificate: version 2 without its side digest")
	default:
		copy(side[:], cert[1:33])
		if side == ([32]byte{}) { // version 1 says that: one encoding per certificate
			return nil, side, errors.New("certify: certificate: version 2 with a zero side digest")
		}
		cert = cert[33:]
	}
	var p cmtproto.SignedHeader
	if err := p.Unmarshal(cert); err != nil {
		return nil, side, fmt.Errorf("certify: certificate: %w", err)
	}
	sh, err := types.SignedHeaderFromProto(&p)
	if err != nil {
		return nil, side, fmt.Errorf("certify: certificate: %w", err)
	}
	if sh.Header == nil || sh.Commit == nil {
		return nil, side, errors.New("certify: certificate: no header or no commit")
	}
	for i, s := range sh.Commit.Signatures {
		if s.BlockIDFlag != types.BlockIDFlagCommit && s.BlockIDFlag != types.BlockIDFlagAbsent {
			return nil, side, fmt.Errorf("certify: certificate: commit signature %d has block ID flag %d: only signatures for the block and absent ones are allowed", i, s.BlockIDFlag)
		}
	}
	if again, err := sh.ToProto().Marshal(); err != nil || !bytes.Equal(again, cert) {
		return nil, side, errors.New("certify: certificate: not in its canonical encoding")
	}
	return sh, side, nil
}

// Certify checks that cert certifies b: b names this set (its Executor
// field holds the set's hash), and cert is a CometBFT header of b's
// instance's chain (ChainID) signed by this set, carrying b's app hash,
// with a commit for exactly that header by more than two thirds of the
// set's voting power, every signature in it checked. It implements
// chain.Authority. With a set fixed at genesis this is all a light client
// needs: no trusted header, no trusting period (decision 123).
func (vs *ValidatorSet) Certify(b *chain.Block, cert []byte) error {
	if b.Executor != vs.hash {
		return fmt.Errorf("certify: block %d names validator set %x, not the trusted %x", b.Height, b.Executor[:8], vs.hash[:8])
	}
	// The app hash covers the block but not its signature field, which a
	// certified block leaves zero: anything else would make its bytes
	// malleable under one certificate.
	if b.Signature != ([64]byte{}) {
		return fmt.Errorf("certify: block %d of a validator set carries a signature; its signature field must be zero", b.Height)
	}
	sh, side, err := DecodeCertificate(cert)
	if err != nil {
		return err
	}
	chainID := ChainID(b.Instance)
	if err := sh.ValidateBasic(chainID); err != nil {
		return fmt.Errorf("certify: certificate: %w", err)
	}
	if !bytes.Equal(sh.ValidatorsHash, vs.hash[:]) {
		return fmt.Errorf("certify: the certificate's header was made by validator set %X, not the trusted one", []byte(sh.ValidatorsHash))
	}
	if err := vs.set.VerifyCommitLightAllSignatures(chainID, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
		return fmt.Errorf("certify: the certificate's commit: %w", err)
	}
	if want := AppHashOver(b.Hash(), side); !bytes.Equal(sh.AppHash, want[:]) {
		if side != ([32]byte{}) {
			return fmt.Errorf("certify: the header of height %d carries app hash %X, block %d's manifest with side digest %X hashes to %X", sh.Height, []byte(sh.AppHash), b.Height, side, want)
		}
		return fmt.Errorf("certify: the header of height %d carries app hash %X, block %d's manifest hashes to %X", sh.Height, []byte(sh.AppHash), b.Height, want)
	}
	return nil
}
