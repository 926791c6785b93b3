// Package tfhe is Fractal's threshold encryption behind the Anoma seed's TFHE
// interface (Setup, Encrypt, Eval, PartDec, FinDec), on edwards25519.
//
// Keys come from a distributed key generation among keyholders apart
// (tfhe/dkg, a Joint-Feldman DKG whose transcript anyone can check), or, for
// development and tests only, from one process that held every share (the
// same DKG run in one process, or a trusted dealer); the public key says
// which, and names the DKG's transcript by its hash.
// There are two ciphertext kinds:
//
//   - a Payload carries any bytes: ElGamal key encapsulation plus AES-256-GCM,
//     with the sender's Schnorr proof of knowledge of its encapsulation
//     randomness bound to the whole ciphertext, so a mauled payload is
//     refused before any keyholder releases a share (chosen-ciphertext safe);
//   - a Counter holds an integer below 2^32 as exponential ElGamal; Eval adds
//     counters and multiplies them by public integers, and decryption finds
//     the integer with a baby-step giant-step table built once per process.
//
// A keyholder's decryption Share carries a DLEQ proof whose Fiat–Shamir
// challenge binds the key, the ciphertext, the keyholder's index and its
// verification key; FinDec (Open, DecryptCounter) checks every share before
// combining any k of them. Every point read from outside is checked to be
// canonical and in the prime-order subgroup.
package tfhe

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// Type tags: the first byte of every encoding, so one kind of file is never
// read as another. The second byte is the format version.
const (
	tagPublicKey  = 0x01
	tagKeyShare   = 0x02
	tagCounter    = 0x03
	tagPayload    = 0x04
	tagShare      = 0x05
	tagShareBatch = 0x06
	version       = 1
	// publicKeyVersion 2 added the transcript hash and the dev-dealer
	// origin. Version 1 keys still decode, as they were (their encoding is
	// their ID, which ciphertexts and instances already name): only made
	// keys are version 2.
	publicKeyVersion = 2
)

// MaxKeyholders bounds n.
const MaxKeyholders = dkg.MaxKeyholders

// Origin says how a key was made.
type Origin uint8

const (
	// OriginDKG: a distributed key generation among keyholders apart; no
	// one ever held the key.
	OriginDKG Origin = 0
	// OriginTrustedDealer: one process drew the key and split it. For tests
	// only: the dealer could decrypt everything.
	OriginTrustedDealer Origin = 1
	// OriginDevDealer: the DKG run in one process, which held every share.
	// For development only: that process could decrypt everything.
	OriginDevDealer Origin = 2
)

func (o Origin) String() string {
	switch o {
	case OriginDKG:
		return "dkg"
	case OriginTrustedDealer:
		return "trusted-dealer (TEST ONLY)"
	case OriginDevDealer:
		return "dev-dealer (DEVELOPMENT ONLY)"
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// PublicKey is the threshold public key: the public polynomial's k
// coefficients (the first is the encryption key), from which each keyholder's
// verification key follows.
type PublicKey struct {
	Origin  Origin
	Session [32]byte // the DKG's session ID (random for a trusted dealer)
	// Transcript is the hash of the DKG transcript that fixes this key
	// (dkg.Transcript.Hash); zero for a trusted dealer.
	Transcript [32]byte
	N, K       int

	version uint8 // of the encoding: 1 (no transcript) or publicKeyVersion
	commits []*edwards25519.Point
	verify  []*edwards25519.Point // verify[i-1] = x_i·G
	enc     []byte
	id      [32]byte
}

// ID is SHA-256 of the key's encoding. Ciphertexts and shares carry it.
func (pk *PublicKey) ID() [32]byte { return pk.id }

// Encode returns the key's canonical encoding.
func (pk *PublicKey) Encode() []byte { return append([]byte(nil), pk.enc...) }

// Y is the encryption key.
func (pk *PublicKey) Y() *edwards25519.Point { return pk.commits[0] }

func newPublicKey(version uint8, origin Origin, session, transcript [32]byte, n, k int, commits [][]byte) (*PublicKey, error) {
	if n < 1 || n > MaxKeyholders || k < 1 || k > n {
		return nil, fmt.Errorf("tfhe: public key: n = %d, k = %d out of range", n, k)
	}
	if origin > OriginDevDealer || version == 1 && origin > OriginTrustedDealer {
		return nil, fmt.Errorf("tfhe: public key: unknown origin %d", origin)
	}
	if len(commits) != k {
		return nil, fmt.Errorf("tfhe: public key: %d commitments for k = %d", len(commits), k)
	}
	pk := &PublicKey{Origin: origin, Session: session, Transcript: transcript, N: n, K: k, version: version}
	for i, c := range commits {
		p, err := group.DecodePoint(c, i != 0)
		if err != nil {
			return nil, fmt.Errorf("tfhe: public key: commitment %d: %w", i, err)
		}
		pk.commits = append(pk.commits, p)
	}
	for i := 1; i <= n; i++ {
		pk.verify = append(pk.verify, group.EvalCommits(pk.commits, uint64(i)))
	}
	w := enc.NewWriter(80 + 32*k)
	w.U8(tagPublicKey)
	w.U8(version)
	w.U8(uint8(origin))
	w.Fixed(session[:])
	if version != 1 {
		w.Fixed(transcript[:])
	}
	w.U32(uint32(n))
	w.U32(uint32(k))
	for _, c := range commits {
		w.Fixed(c)
	}
	pk.enc = w.Bytes()
	pk.id = sha256.Sum256(pk.enc)
	return pk, nil
}

// DecodePublicKey parses a PublicKey encoding.
func DecodePublicKey(b []byte) (*PublicKey, error) {
	r := enc.NewReader(b)
	if t := r.U8(); r.Err() == nil && t != tagPublicKey {
		r.Fail(fmt.Errorf("not a public key (type tag 0x%02x)", t))
	}
	v := r.U8()
	if r.Err() == nil && v != 1 && v != publicKeyVersion {
		r.Fail(fmt.Errorf("unknown public key version %d", v))
	}
	origin := Origin(r.U8())
	var session, transcript [32]byte
	r.Into(session[:])
	if v != 1 {
		r.Into(transcript[:])
	}
	n := int(r.U32())
	k := r.Count(MaxKeyholders, "threshold")
	var commits [][]byte
	for i := 0; i < k && r.Err() == nil; i++ {
		commits = append(commits, r.Fixed(group.PointSize))
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("tfhe: public key: %w", err)
	}
	return newPublicKey(v, origin, session, transcript, n, k, commits)
}

// header reads and checks a tag and version.
func header(r *enc.Reader, tag byte, what string) {
	t, v := r.U8(), r.U8()
	if r.Err() != nil {
		return
	}
	if t != tag {
		r.Fail(fmt.Errorf("not a %s (type tag 0x%02x)", what, t))
	} else if v != version {
		r.Fail(fmt.Errorf("unknown %s version %d", what, v))
	}
}

// KeyShare is keyholder Index's secret share x_i of the decryption key, with
// the public key it belongs to.
type KeyShare struct {
	Index int
	PK    *PublicKey
	x     *edwards25519.Scalar
}

func newKeyShare(pk *PublicKey, index int, secret []byte) (*KeyShare, error) {
	if index < 1 || index > pk.N {
		return nil, fmt.Errorf("tfhe: key share: index %d out of 1..%d", index, pk.N)
	}
	x, err := group.DecodeScalar(secret)
	if err != nil {
		return nil, fmt.Errorf("tfhe: key share: %w", err)
	}
	if new(edwards25519.Point).ScalarBaseMult(x).Equal(pk.verify[index-1]) != 1 {
		return nil, fmt.Errorf("tfhe: key share: secret of keyholder %d does not match the public key", index)
	}
	return &KeyShare{Index: index, PK: pk, x: x}, nil
}

// Encode returns the key share file's bytes. They hold a secret.
func (s *KeyShare) Encode() []byte {
	w := enc.NewWriter(80 + len(s.PK.enc))
	w.U8(tagKeyShare)
	w.U8(version)
	w.U32(uint32(s.Index))
	w.Fixed(s.x.Bytes())
	w.Var(s.PK.enc)
	return w.Bytes()
}

// DecodeKeyShare parses a KeyShare encoding and checks the secret against
// the public key.
func DecodeKeyShare(b []byte) (*KeyShare, error) {
	r := enc.NewReader(b)
	header(r, tagKeyShare, "key share")
	index := int(r.U32())
	secret := r.Fixed(group.ScalarSize)
	pkb := r.Var(96+32*MaxKeyholders, "public key")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("tfhe: key share: %w", err)
	}
	pk, err := DecodePublicKey(pkb)
	if err != nil {
		return nil, err
	}
	return newKeyShare(pk, index, secret)
}

// Setup runs the distributed key generation among n keyholders in this
// process and returns the key and all n shares (the seed's TFHE.Setup).
// The process holds every share, so the key says OriginDevDealer: for
// development and tests only. ctx can stop the DKG.
func Setup(ctx context.Context, n, k int) (*PublicKey, []*KeyShare, error) {
	pk, shares, res, err := SetupDKG(ctx, dkg.Config{N: n, K: k})
	if err != nil {
		return nil, nil, err
	}
	if len(shares) != n {
		return nil, nil, fmt.Errorf("tfhe: setup: only %d of %d keyholders hold a share: %v", len(shares), n, res.Faults)
	}
	return pk, shares, nil
}

// SetupDKG runs the DKG in this process as configured (dkg.Run) and returns
// the key (OriginDevDealer), the shares of the keyholders that hold one
// (sorted by index), and the DKG's result with its faults and transcript.
// ctx can stop the DKG.
func SetupDKG(ctx context.Context, cfg dkg.Config) (*PublicKey, []*KeyShare, *dkg.Result, error) {
	res, err := dkg.Run(ctx, cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tfhe: setup: %w", err)
	}
	pk, err := KeyFromDKG(OriginDevDealer, res.Outcome)
	if err != nil {
		return nil, nil, nil, err
	}
	var shares []*KeyShare
	for _, s := range res.Shares {
		ks, err := ShareFromDKG(pk, s)
		if err != nil {
			return nil, nil, nil, err
		}
		shares = append(shares, ks)
	}
	return pk, shares, res, nil
}

// KeyFromDKG returns the threshold key a DKG's outcome fixes: its session,
// its transcript's hash and its commitments. origin is OriginDKG for
// keyholders apart, OriginDevDealer for a run in one process.
func KeyFromDKG(origin Origin, o *dkg.Outcome) (*PublicKey, error) {
	return newPublicKey(publicKeyVersion, origin, o.Session.ID(), o.Hash, o.Session.N(), o.Session.K, o.Commits)
}

// ShareFromDKG returns a keyholder's key share from its DKG share, checked
// against pk.
func ShareFromDKG(pk *PublicKey, s dkg.Share) (*KeyShare, error) {
	return newKeyShare(pk, s.Index, s.Secret)
}

// TrustedDealerSetup draws the key in this process and splits it by Shamir
// sharing. FOR TESTS ONLY: whoever runs it can decrypt everything; the key
// says OriginTrustedDealer.
func TrustedDealerSetup(n, k int) (*PublicKey, []*KeyShare, error) {
	if n < 1 || n > MaxKeyholders || k < 1 || k > n {
		return nil, nil, fmt.Errorf("tfhe: dealer: n = %d, k = %d out of range", n, k)
	}
	coef := group.RandomPoly(k)
	commits := make([][]byte, k)
	for i, c := range group.Commit(coef) {
		commits[i] = c.Bytes()
	}
	var session [32]byte
	copy(session[:], group.RandomScalar().Bytes())
	pk, err := newPublicKey(publicKeyVersion, OriginTrustedDealer, session, [32]byte{}, n, k, commits)
	if err != nil {
		return nil, nil, err
	}
	shares := make([]*KeyShare, n)
	for i := 1; i <= n; i++ {
		shares[i-1], err = newKeyShare(pk, i, group.EvalPoly(coef, uint64(i)).Bytes())
		if err != nil {
			return nil, nil, err
		}
	}
	return pk, shares, nil
}

var errWrongKey = errors.New("made for another key")

// CheckTranscript checks a DKG transcript from nothing but itself
// (dkg.Check) and that it fixes pk: the same session, transcript hash and
// commitments. A trusted dealer's key has no transcript.
func CheckTranscript(pk *PublicKey, t *dkg.Transcript) (*dkg.Outcome, error) {
	return checkTranscript(pk, t, dkg.Check)
}

// CheckChainTranscript is CheckTranscript for a DKG whose messages a chain
// carried (dkg.CheckChain: no confirmations, the chain agreed).
func CheckChainTranscript(pk *PublicKey, t *dkg.Transcript) (*dkg.Outcome, error) {
	return checkTranscript(pk, t, dkg.CheckChain)
}

func checkTranscript(pk *PublicKey, t *dkg.Transcript, check func(*dkg.Transcript) (*dkg.Outcome, error)) (*dkg.Outcome, error) {
	if pk.Origin == OriginTrustedDealer {
		return nil, errors.New("tfhe: a trusted dealer's key has no DKG transcript")
	}
	o, err := check(t)
	if err != nil {
		return nil, err
	}
	want, err := KeyFromDKG(pk.Origin, o)
	if err != nil {
		return nil, err
	}
	if want.ID() != pk.ID() {
		return nil, fmt.Errorf("tfhe: the transcript (hash %x) makes key %x, not this key %x", o.Hash[:8], want.ID(), pk.ID())
	}
	return o, nil
}
