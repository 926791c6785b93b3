package phases

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// The first byte of a transaction's encoding says which fields follow:
// TxVersion for a transaction without a fee (the format every transaction
// had before fees, so those keep their encoding and ID), TxVersionFee for
// one that names a fee note and a gas price (docs/formats/transactions.md).
const (
	TxVersion    = 1
	TxVersionFee = 2
)

// Limits on a transaction's fields. Decode, ParseJSON and Validate refuse
// anything larger.
const (
	MaxCode      = 64 << 10    // bytes of lookup or calculation code
	MaxExtradata = 64 << 10    // bytes of extradata
	MaxSigners   = 16          // signers per transaction
	MaxGasLimit  = 100_000_000 // largest gas limit a transaction may ask for
	MaxGasPrice  = 1_000_000_000
	MaxTxBytes   = 2*MaxCode + MaxExtradata + 2*notes.MaxPatterns*(3+4+notes.MaxProvenance*(4+notes.MaxProvenanceID)+64+4+notes.MaxKey) +
		MaxSigners*(32+4+keys.SignatureSize) + 8 + 4 + maxKeyText + 64 // bound on an encoding Decode can accept
)

// Tx is a transaction: the fields of the Anoma seed (read and write
// constraints, lookup and calculation code, extradata) plus a nonce, a gas
// limit, the fee it offers (none, or a fee note and a gas price), and the
// signers with their signatures.
//
// Signatures[i] is Signers[i]'s XEdDSA signature over ID(); an empty entry
// means "not signed yet". Signatures is either empty or as long as Signers.
type Tx struct {
	Nonce       uint64              // lets the same intent be sent twice with different IDs
	GasLimit    uint64              // total gas for lookup, calculation and every predicate
	Fee         *Fee                // the fee offered; nil for none (fee.go)
	Read        notes.ConstraintSet // state keys lookup code may read
	Write       notes.ConstraintSet // state keys the transaction may spend or create
	Lookup      []byte              // Lua source of the lookup code (empty: no inputs)
	Calculation []byte              // Lua source of the calculation code (empty: no outputs)
	Extradata   []byte
	Signers     []keys.PublicKey
	Signatures  [][]byte

	// verified is the SHA-256 of the encoding whose signatures the holder
	// has checked (MarkVerified); not part of the transaction.
	verified *notes.Hash
}

// MarkVerified records that the caller has checked tx's signatures
// (VerifySignatures returned nil for exactly this encoding), so that
// phases 1–3 admit it without verifying them again. The instance marks
// the transactions it reads back from its own queue, which holds only
// transactions whose signatures it verified on submission; a replay of the
// chain (fractal verify) reads blocks and marks nothing. Any later change
// to the transaction, signatures included, drops the mark.
func (tx *Tx) MarkVerified() {
	h := enc.Sum256(tx.encode)
	tx.verified = &h
}

// markedVerified reports whether MarkVerified was called on tx as it is now.
func (tx *Tx) markedVerified() bool {
	return tx.verified != nil && *tx.verified == enc.Sum256(tx.encode)
}

// body writes the signed part: every field except the signatures.
func (tx *Tx) body(w *enc.Writer) {
	if tx.Fee == nil {
		w.U8(TxVersion)
	} else {
		w.U8(TxVersionFee)
	}
	w.U64(tx.Nonce)
	w.U64(tx.GasLimit)
	if tx.Fee != nil {
		w.U64(tx.Fee.Price)
		w.String(tx.Fee.Note.String())
	}
	tx.Read.Encode(w)
	tx.Write.Encode(w)
	w.Var(tx.Lookup)
	w.Var(tx.Calculation)
	w.Var(tx.Extradata)
	w.U32(uint32(len(tx.Signers)))
	for _, s := range tx.Signers {
		w.Fixed(s[:])
	}
}

// ID is the SHA-256 of the encoding without the signatures: what each signer
// signs, and the name a transaction is executed under once.
func (tx *Tx) ID() notes.Hash { return enc.Sum256(tx.body) }

// Encode returns the canonical encoding: the body, then one var per signer
// holding its signature (empty when not signed yet).
func (tx *Tx) Encode() []byte { return enc.Copy(tx.encode) }

// EncodeAfter returns prefix followed by Encode(), in one allocation.
func (tx *Tx) EncodeAfter(prefix []byte) []byte {
	return enc.Copy(func(w *enc.Writer) {
		w.Fixed(prefix)
		tx.encode(w)
	})
}

func (tx *Tx) encode(w *enc.Writer) {
	tx.body(w)
	for i := range tx.Signers {
		var sig []byte
		if i < len(tx.Signatures) {
			sig = tx.Signatures[i]
		}
		w.Var(sig)
	}
}

// DecodeTx parses a canonical transaction encoding and checks it with
// Validate. It does not verify signatures (VerifySignatures does).
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("phases: decode transaction: %d bytes exceeds limit %d", len(b), MaxTxBytes)
	}
	r := enc.NewReader(b)
	tx := new(Tx)
	v := r.U8()
	if r.Err() == nil && v != TxVersion && v != TxVersionFee {
		r.Fail(fmt.Errorf("unknown version %d", v))
	}
	tx.Nonce = r.U64()
	tx.GasLimit = r.U64()
	if v == TxVersionFee {
		tx.Fee = &Fee{Price: r.U64()}
		tx.Fee.Note = decodeKey(r, "fee note")
	}
	tx.Read = notes.DecodeConstraintSet(r)
	tx.Write = notes.DecodeConstraintSet(r)
	tx.Lookup = r.Var(MaxCode, "lookup code")
	tx.Calculation = r.Var(MaxCode, "calculation code")
	tx.Extradata = r.Var(MaxExtradata, "extradata")
	n := r.Count(MaxSigners, "signers")
	for i := 0; i < n && r.Err() == nil; i++ {
		var k keys.PublicKey
		r.Into(k[:])
		tx.Signers = append(tx.Signers, k)
	}
	signed := false
	sigs := make([][]byte, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		sigs[i] = r.Var(keys.SignatureSize, "signature")
		signed = signed || sigs[i] != nil
	}
	if signed {
		tx.Signatures = sigs
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("phases: decode transaction: %w", err)
	}
	if err := tx.Validate(); err != nil {
		return nil, err
	}
	return tx, nil
}

// Validate checks what the encoding alone cannot: limits for transactions
// built in Go, a usable gas limit, code that is UTF-8 text (so the JSON form
// carries it exactly), distinct signers and well-sized signatures.
func (tx *Tx) Validate() error {
	if err := tx.validate(); err != nil {
		return fmt.Errorf("phases: transaction: %w", err)
	}
	return nil
}

func (tx *Tx) validate() error {
	if tx.GasLimit == 0 || tx.GasLimit > MaxGasLimit {
		return fmt.Errorf("gas limit %d is outside 1..%d", tx.GasLimit, MaxGasLimit)
	}
	for _, c := range []struct {
		name string
		set  notes.ConstraintSet
	}{{"read", tx.Read}, {"write", tx.Write}} {
		if len(c.set) > notes.MaxPatterns {
			return fmt.Errorf("%s constraints: count %d exceeds limit %d", c.name, len(c.set), notes.MaxPatterns)
		}
		for i, p := range c.set {
			if err := p.Validate(); err != nil {
				return fmt.Errorf("%s constraint %d: %w", c.name, i, err)
			}
		}
	}
	for _, c := range []struct {
		name string
		src  []byte
	}{{"lookup code", tx.Lookup}, {"calculation code", tx.Calculation}} {
		if len(c.src) > MaxCode {
			return fmt.Errorf("%s: length %d exceeds limit %d", c.name, len(c.src), MaxCode)
		}
		if !utf8.Valid(c.src) {
			return fmt.Errorf("%s is not UTF-8 text", c.name)
		}
	}
	if len(tx.Extradata) > MaxExtradata {
		return fmt.Errorf("extradata: length %d exceeds limit %d", len(tx.Extradata), MaxExtradata)
	}
	if len(tx.Signers) > MaxSigners {
		return fmt.Errorf("signers: count %d exceeds limit %d", len(tx.Signers), MaxSigners)
	}
	for i := range tx.Signers {
		for j := 0; j < i; j++ {
			if tx.Signers[i] == tx.Signers[j] {
				return fmt.Errorf("signer %d (%s) repeats signer %d", i+1, tx.Signers[i], j+1)
			}
		}
	}
	if len(tx.Signatures) != 0 && len(tx.Signatures) != len(tx.Signers) {
		return fmt.Errorf("%d signatures for %d signers", len(tx.Signatures), len(tx.Signers))
	}
	if err := tx.Fee.validate(); err != nil {
		return err
	}
	for i, s := range tx.Signatures {
		if len(s) != 0 && len(s) != keys.SignatureSize {
			return fmt.Errorf("signature %d: %d bytes, want %d", i+1, len(s), keys.SignatureSize)
		}
	}
	return nil
}

// Sign adds priv's XEdDSA signature over ID() in its signer's place. priv's
// public key must be one of the signers.
func (tx *Tx) Sign(rand io.Reader, priv keys.PrivateKey) error {
	pub := priv.Public()
	for i, s := range tx.Signers {
		if s != pub {
			continue
		}
		id := tx.ID()
		sig, err := priv.Sign(rand, id[:])
		if err != nil {
			return fmt.Errorf("phases: sign transaction: %w", err)
		}
		if len(tx.Signatures) != len(tx.Signers) {
			tx.Signatures = make([][]byte, len(tx.Signers))
		}
		tx.Signatures[i] = sig
		return nil
	}
	return fmt.Errorf("phases: sign transaction: key %s is not among the signers", pub)
}

// SignAll signs tx with each key in privs, in order. A transaction that
// lists no signers first gets the keys' public keys as its signers, in the
// same order, so that a transaction written without them is signed by
// whoever signs it.
func (tx *Tx) SignAll(rand io.Reader, privs []keys.PrivateKey) error {
	if len(tx.Signers) == 0 {
		for _, k := range privs {
			tx.Signers = append(tx.Signers, k.Public())
		}
	}
	for _, k := range privs {
		if err := tx.Sign(rand, k); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoSigners reports a transaction that lists no signer: every transaction
// is signed by at least one key.
var ErrNoSigners = errors.New("transaction lists no signers")

// VerifySignatures checks that every listed signer signed ID(). It refuses a
// transaction with no signers, an unsigned one, a missing signature and one
// that does not verify, naming the signer.
func (tx *Tx) VerifySignatures() error {
	if len(tx.Signers) == 0 {
		return ErrNoSigners
	}
	if len(tx.Signatures) == 0 {
		return errors.New("transaction is unsigned")
	}
	if len(tx.Signatures) != len(tx.Signers) {
		return fmt.Errorf("%d signatures for %d signers", len(tx.Signatures), len(tx.Signers))
	}
	id := tx.ID()
	for i, pub := range tx.Signers {
		if len(tx.Signatures[i]) == 0 {
			return fmt.Errorf("signer %d (%s) has not signed", i+1, pub)
		}
		if err := keys.Verify(pub, id[:], tx.Signatures[i]); err != nil {
			return fmt.Errorf("signature of signer %d (%s) does not verify", i+1, pub)
		}
	}
	return nil
}
