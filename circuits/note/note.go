// Package note defines shielded notes and the keys that own them: spending
// key, spend-authorising key, nullifier key, owner (the spend part of an
// address), note commitment and nullifier. Each value is computed natively
// here and in-circuit by the Gadget in gadget.go with the same hash.
//
// Key tree (Orchard/Sapling-lite):
//
//	sk  spending key (secret, random field element)
//	ask = Hash(TagAsk; sk)        spend-authorising key (secret)
//	nk  = Hash(TagNk; sk)         nullifier key (secret; lets a wallet see spends)
//	owner = Compress(ask, nk)
//
// A transfer proof shows knowledge of ask and nk behind an input's owner, so
// spending needs ask; holding nk alone only lets one compute nullifiers.
package note

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/poseidon"
	"github.com/fractalvm/fractal/internal/enc"
)

// Domain tags of the shielded pool's hashes.
var (
	TagAsk  = poseidon.NewTag("fractal.shielded.ask.v1")
	TagNk   = poseidon.NewTag("fractal.shielded.nk.v1")
	TagNote = poseidon.NewTag("fractal.shielded.note.v1")
)

// AssetSize is the length of an asset identifier in bytes. 23 bytes (184
// bits) keep value + 2^64*asset below the field modulus, so the pair packs
// into one field element without overlap.
const AssetSize = 23

// Asset identifies what a note holds.
type Asset [AssetSize]byte

// NewAsset derives the asset identifier of a transparent asset name (for
// example a token application's ID and token key) as the first AssetSize
// bytes of SHA-256("fractal.shielded.asset.v1" || name).
func NewAsset(name []byte) Asset {
	h := sha256.New()
	h.Write([]byte("fractal.shielded.asset.v1"))
	h.Write(name)
	var a Asset
	copy(a[:], h.Sum(nil))
	return a
}

// Element returns the asset as a field element (big-endian integer).
func (a Asset) Element() fr.Element {
	var e fr.Element
	e.SetBytes(a[:])
	return e
}

// SpendingKey is the root secret of a shielded wallet.
type SpendingKey struct{ sk fr.Element }

// NewSpendingKey draws a spending key from rand (crypto/rand.Reader in
// production).
func NewSpendingKey(rand io.Reader) (SpendingKey, error) {
	e, err := RandomElement(rand)
	if err != nil {
		return SpendingKey{}, fmt.Errorf("note: spending key: %w", err)
	}
	return SpendingKey{sk: e}, nil
}

// ParseSpendingKey reads the 32-byte canonical encoding made by Bytes.
func ParseSpendingKey(b []byte) (SpendingKey, error) {
	e, err := ParseElement(b)
	if err != nil {
		return SpendingKey{}, fmt.Errorf("note: spending key: %w", err)
	}
	return SpendingKey{sk: e}, nil
}

// Bytes returns the 32-byte canonical big-endian encoding of the key.
func (k SpendingKey) Bytes() []byte { b := k.sk.Bytes(); return b[:] }

// AuthorizingKey returns ask, the secret a spend proof must know.
func (k SpendingKey) AuthorizingKey() fr.Element { return poseidon.Hash(TagAsk, k.sk) }

// NullifierKey returns nk, the secret behind the owner's nullifiers.
func (k SpendingKey) NullifierKey() fr.Element { return poseidon.Hash(TagNk, k.sk) }

// Owner returns the owner (spend part of the address) of notes this key can
// spend.
func (k SpendingKey) Owner() fr.Element {
	return OwnerOf(k.AuthorizingKey(), k.NullifierKey())
}

// OwnerOf returns Compress(ask, nk). No tag: ask and nk already come from
// tagged derivations, and one compression keeps the circuit small (see
// docs/decisions/061-shielded-hash-layout.md).
func OwnerOf(ask, nk fr.Element) fr.Element { return poseidon.Compress(ask, nk) }

// Note is a shielded note. Rho is the nullifier of the input it was created
// from (unique, so commitments and nullifiers are unique); Rcm is the random
// blinding of its commitment.
type Note struct {
	Owner fr.Element
	Value uint64
	Asset Asset
	Rho   fr.Element
	Rcm   fr.Element
}

// two64 is 2^64, the shift that packs an asset above a 64-bit value.
var two64 = func() fr.Element {
	var e fr.Element
	e.SetBigInt(new(big.Int).Lsh(big.NewInt(1), 64))
	return e
}()

// packValueAsset returns value + 2^64*asset, injective because value < 2^64
// and asset < 2^184.
func packValueAsset(value uint64, asset Asset) fr.Element {
	a := asset.Element()
	var v, out fr.Element
	v.SetUint64(value)
	out.Mul(&a, &two64)
	out.Add(&out, &v)
	return out
}

// Commitment returns Hash(TagNote; owner, value + 2^64*asset, rho, rcm): the
// note's leaf in the commitment tree.
func (n Note) Commitment() fr.Element {
	return poseidon.Hash(TagNote, n.Owner, packValueAsset(n.Value, n.Asset), n.Rho, n.Rcm)
}

// Nullifier returns Compress(nk, rho), published when the note is spent.
// rho is unique per note (it is the nullifier of the input the note was
// created from), so nullifiers are unique; computing one needs the secret nk.
func Nullifier(nk, rho fr.Element) fr.Element { return poseidon.Compress(nk, rho) }

// Size is the length of the note's canonical encoding.
const Size = 1 + 32 + 8 + AssetSize + 32 + 32

// noteVersion is the first byte of the encoding.
const noteVersion = 1

// MarshalBinary encodes the note: version 1, owner, value (u64), asset,
// rho, rcm; field elements as 32-byte canonical big-endian.
func (n Note) MarshalBinary() ([]byte, error) {
	w := enc.NewWriter(Size)
	w.U8(noteVersion)
	putElement(w, n.Owner)
	w.U64(n.Value)
	w.Fixed(n.Asset[:])
	putElement(w, n.Rho)
	putElement(w, n.Rcm)
	return w.Bytes(), nil
}

// UnmarshalBinary decodes MarshalBinary's output, refusing another version,
// non-canonical field elements, truncation and trailing bytes.
func (n *Note) UnmarshalBinary(b []byte) error {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != noteVersion {
		return fmt.Errorf("note: decode: unknown version %d", v)
	}
	var out Note
	out.Owner = getElement(r)
	out.Value = r.U64()
	copy(out.Asset[:], r.Fixed(AssetSize))
	out.Rho = getElement(r)
	out.Rcm = getElement(r)
	if err := r.Finish(); err != nil {
		return fmt.Errorf("note: decode: %w", err)
	}
	*n = out
	return nil
}

// ErrNonCanonical reports a 32-byte string that is not below the field
// modulus.
var ErrNonCanonical = errors.New("field element not canonical")

// ParseElement reads a 32-byte canonical big-endian field element.
func ParseElement(b []byte) (fr.Element, error) {
	var e fr.Element
	if len(b) != fr.Bytes {
		return e, fmt.Errorf("field element: %d bytes, want %d", len(b), fr.Bytes)
	}
	if err := e.SetBytesCanonical(b); err != nil {
		return e, ErrNonCanonical
	}
	return e, nil
}

// RandomElement draws a uniform field element from rand by rejection.
func RandomElement(rand io.Reader) (fr.Element, error) {
	var buf [fr.Bytes]byte
	for {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return fr.Element{}, err
		}
		buf[0] &= 0x3f // the modulus has 254 bits; keeps rejection rare
		if e, err := ParseElement(buf[:]); err == nil {
			return e, nil
		}
	}
}

func putElement(w *enc.Writer, e fr.Element) { b := e.Bytes(); w.Fixed(b[:]) }

func getElement(r *enc.Reader) fr.Element {
	b := r.Fixed(fr.Bytes)
	if r.Err() != nil {
		return fr.Element{}
	}
	e, err := ParseElement(b)
	if err != nil {
		r.Fail(err)
	}
	return e
}
