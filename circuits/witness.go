package circuits

import (
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/internal/enc"
)

// Spend is one input as a wallet holds it: the key that owns the note, the
// note, and its current authentication path (ignored for a dummy).
type Spend struct {
	Key  note.SpendingKey
	Note note.Note
	Path merkle.Path
}

// Output is one output before its rho is known: rho becomes the nullifier of
// the input with the same index.
type Output struct {
	Owner fr.Element
	Value uint64
	Rcm   fr.Element
}

// Public is the transfer's statement: everything the verifier sees.
type Public struct {
	Root        fr.Element
	Nullifiers  [2]fr.Element
	Commitments [2]fr.Element
	Asset       note.Asset
	Net         int64 // amount entering the pool; negative when unshielding
	Fee         uint64
	Binding     fr.Element
}

// NumPublic is the number of public field elements of Transfer.
const NumPublic = 9

// Vector returns the public inputs in circuit order. Net is the field element
// Net mod r (so -5 is r-5), which the circuit range-checks after adding 2^63.
func (p Public) Vector() fr.Vector {
	var net, fee fr.Element
	net.SetBigInt(big.NewInt(p.Net))
	fee.SetUint64(p.Fee)
	return fr.Vector{p.Root, p.Nullifiers[0], p.Nullifiers[1], p.Commitments[0], p.Commitments[1],
		p.Asset.Element(), net, fee, p.Binding}
}

// PublicSize is the length of Public's canonical encoding.
const PublicSize = 1 + 5*32 + note.AssetSize + 8 + 8 + 32

const publicVersion = 1

// MarshalBinary encodes the statement: version 1, root, nullifiers,
// commitments (32-byte big-endian field elements), asset, net (u64 two's
// complement), fee (u64), binding.
func (p Public) MarshalBinary() ([]byte, error) {
	w := enc.NewWriter(PublicSize)
	w.U8(publicVersion)
	for _, e := range []fr.Element{p.Root, p.Nullifiers[0], p.Nullifiers[1], p.Commitments[0], p.Commitments[1]} {
		b := e.Bytes()
		w.Fixed(b[:])
	}
	w.Fixed(p.Asset[:])
	w.U64(uint64(p.Net))
	w.U64(p.Fee)
	b := p.Binding.Bytes()
	w.Fixed(b[:])
	return w.Bytes(), nil
}

// UnmarshalBinary decodes MarshalBinary's output, refusing another version,
// non-canonical field elements, truncation and trailing bytes.
func (p *Public) UnmarshalBinary(b []byte) error {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != publicVersion {
		return fmt.Errorf("circuits: public inputs: unknown version %d", v)
	}
	var out Public
	for _, e := range []*fr.Element{&out.Root, &out.Nullifiers[0], &out.Nullifiers[1], &out.Commitments[0], &out.Commitments[1]} {
		*e = readElement(r)
	}
	copy(out.Asset[:], r.Fixed(note.AssetSize))
	out.Net = int64(r.U64())
	out.Fee = r.U64()
	out.Binding = readElement(r)
	if err := r.Finish(); err != nil {
		return fmt.Errorf("circuits: public inputs: %w", err)
	}
	*p = out
	return nil
}

func readElement(r *enc.Reader) fr.Element {
	b := r.Fixed(fr.Bytes)
	if r.Err() != nil {
		return fr.Element{}
	}
	e, err := note.ParseElement(b)
	if err != nil {
		r.Fail(err)
	}
	return e
}

// BindingOf maps a 32-byte transaction hash (SHA-256 of everything in the
// transaction except the proof) to the Binding public input.
func BindingOf(txHash [32]byte) fr.Element {
	var e fr.Element
	e.SetBytes(txHash[:])
	return e
}

// Witness is a checked assignment of Transfer with its statement and the
// output notes (which the wallet encrypts to their recipients).
type Witness struct {
	Assignment *Transfer
	Public     Public
	Outputs    [2]note.Note
}

// Errors NewTransferWitness returns for a statement that cannot be proven.
var (
	ErrUnbalanced    = errors.New("inputs + net do not equal outputs + fee")
	ErrNotMember     = errors.New("input note not under the root")
	ErrWrongKey      = errors.New("spending key does not own the input note")
	ErrWrongAsset    = errors.New("note asset differs from the transfer's asset")
	ErrSameNullifier = errors.New("both inputs have the same nullifier")
)

// NewTransferWitness builds the assignment for spending in (use NewDummySpend
// for an unused input) into out, for one asset, with the signed net amount
// entering the pool, the fee and the binding hash. It checks natively what
// the circuit will check and names the first failure, so a wallet gets a
// reason instead of an unsatisfiable circuit.
func NewTransferWitness(root fr.Element, in [2]Spend, out [2]Output, asset note.Asset, net int64, fee uint64, binding fr.Element) (*Witness, error) {
	w := &Witness{Assignment: &Transfer{}}
	a := w.Assignment
	w.Public = Public{Root: root, Asset: asset, Net: net, Fee: fee, Binding: binding}

	sumIn, sumOut := new(big.Int), new(big.Int)
	for i, s := range in {
		ask, nk := s.Key.AuthorizingKey(), s.Key.NullifierKey()
		if s.Note.Owner != note.OwnerOf(ask, nk) {
			return nil, fmt.Errorf("circuits: input %d: %w", i, ErrWrongKey)
		}
		if s.Note.Asset != asset {
			return nil, fmt.Errorf("circuits: input %d: %w", i, ErrWrongAsset)
		}
		if s.Note.Value != 0 && s.Path.Root(s.Note.Commitment()) != root {
			return nil, fmt.Errorf("circuits: input %d: %w", i, ErrNotMember)
		}
		nf := note.Nullifier(nk, s.Note.Rho)
		w.Public.Nullifiers[i] = nf
		sumIn.Add(sumIn, new(big.Int).SetUint64(s.Note.Value))

		sw := &a.In[i]
		sw.Ask, sw.Nk = ask, nk
		sw.Value, sw.Rho, sw.Rcm = s.Note.Value, s.Note.Rho, s.Note.Rcm
		for l := 0; l < merkle.Depth; l++ {
			sw.Siblings[l] = s.Path.Siblings[l]
			sw.PathBits[l] = s.Path.Position >> l & 1
		}
	}
	if w.Public.Nullifiers[0] == w.Public.Nullifiers[1] {
		return nil, fmt.Errorf("circuits: %w", ErrSameNullifier)
	}
	for j, o := range out {
		n := note.Note{Owner: o.Owner, Value: o.Value, Asset: asset, Rho: w.Public.Nullifiers[j], Rcm: o.Rcm}
		w.Outputs[j] = n
		w.Public.Commitments[j] = n.Commitment()
		sumOut.Add(sumOut, new(big.Int).SetUint64(o.Value))
		a.Out[j] = OutputWitness{Owner: o.Owner, Value: o.Value, Rcm: o.Rcm}
	}
	sumIn.Add(sumIn, big.NewInt(net))
	sumOut.Add(sumOut, new(big.Int).SetUint64(fee))
	if sumIn.Cmp(sumOut) != 0 {
		return nil, fmt.Errorf("circuits: %w (%s vs %s)", ErrUnbalanced, sumIn, sumOut)
	}
	w.Public.assign(a)
	return w, nil
}

// assign copies the statement into the public fields of a.
func (p Public) assign(a *Transfer) {
	v := p.Vector()
	a.Root = v[0]
	a.Nullifiers = [2]frontend.Variable{v[1], v[2]}
	a.Commitments = [2]frontend.Variable{v[3], v[4]}
	a.Asset, a.Net, a.Fee, a.Binding = v[5], v[6], v[7], v[8]
}

// NewDummySpend returns an input of value 0 in asset, owned by a fresh
// random key and with a random rho, so its nullifier is fresh too.
func NewDummySpend(rand io.Reader, asset note.Asset) (Spend, error) {
	k, err := note.NewSpendingKey(rand)
	if err != nil {
		return Spend{}, fmt.Errorf("circuits: dummy: %w", err)
	}
	rho, err := note.RandomElement(rand)
	if err != nil {
		return Spend{}, fmt.Errorf("circuits: dummy: %w", err)
	}
	rcm, err := note.RandomElement(rand)
	if err != nil {
		return Spend{}, fmt.Errorf("circuits: dummy: %w", err)
	}
	return Spend{Key: k, Note: note.Note{Owner: k.Owner(), Asset: asset, Rho: rho, Rcm: rcm}}, nil
}
