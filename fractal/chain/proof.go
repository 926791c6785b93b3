package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// Versions of an encoded QueryProof (its first byte): 1 for a proof
// against a signed block, 2 for one against a block that carries a
// certificate (a validator set's).
const (
	queryProofVersion          = 1
	queryProofCertifiedVersion = 2
)

// maxStateKeyText bounds a state key's text inside a proof file.
const maxStateKeyText = 64 << 10

// QueryProof answers "what lives at this state key?" in a form anyone can
// check offline with only the instance's authority (its executor's public
// key, or its validator set): the note (or its absence), the state-tree
// proof, and the block whose final state root the proof leads to, signed
// or, for a validator set, with the certificate of its consensus commit.
type QueryProof struct {
	Key         notes.StateKey
	Note        *notes.Note // nil when no note lives at Key
	Proof       *statetree.Proof
	Block       *Block
	Certificate []byte // empty for a signed block (Authority.Certify reads it)
}

// TreeKey is the state-tree key of a state key: SHA-256 of its text.
func TreeKey(k notes.StateKey) [32]byte {
	var buf [256]byte // most keys' text, hashed without a copy on the heap
	return sha256.Sum256(k.AppendText(buf[:0]))
}

// Encode returns the canonical encoding: version, state-key text, an
// optional note, the proof and the block, and for version 2 the
// certificate.
func (qp *QueryProof) Encode() []byte {
	w := enc.NewWriter(1024 + len(qp.Certificate))
	w.U8(certifiedVersion(qp.Certificate, queryProofVersion, queryProofCertifiedVersion))
	w.String(qp.Key.String())
	w.Bool(qp.Note != nil)
	if qp.Note != nil {
		w.Var(qp.Note.Encode())
	}
	w.Var(qp.Proof.Encode())
	w.Var(qp.Block.Encode())
	if len(qp.Certificate) > 0 {
		w.Var(qp.Certificate)
	}
	return w.Bytes()
}

// MaxCertificateBytes bounds a block's certificate inside a proof or a
// claim (package certify makes and checks them).
const MaxCertificateBytes = 1 << 20

// certifiedVersion is the version byte of an encoding that carries cert:
// the plain one when it is empty (a signed block), so that the encodings
// of signed blocks' proofs and claims are what they always were.
func certifiedVersion(cert []byte, plain, certified uint8) uint8 {
	if len(cert) == 0 {
		return plain
	}
	return certified
}

// readCertificate reads the certificate of a version-certified encoding
// (refusing an empty one, which has a plain version of its own).
func readCertificate(r *enc.Reader, version, certified uint8) []byte {
	if version != certified {
		return nil
	}
	cert := r.Var(MaxCertificateBytes, "certificate")
	if r.Err() == nil && len(cert) == 0 {
		r.Fail(errors.New("empty certificate"))
	}
	return cert
}

// DecodeQueryProof parses an encoded QueryProof; it checks encodings only
// (CheckQueryProof checks what they prove).
func DecodeQueryProof(data []byte) (*QueryProof, error) {
	r := enc.NewReader(data)
	v := r.U8()
	if r.Err() == nil && v != queryProofVersion && v != queryProofCertifiedVersion {
		return nil, fmt.Errorf("fractal: query proof: unknown version %d", v)
	}
	sk := r.String(maxStateKeyText, "state key")
	var rawNote []byte
	if r.Bool() {
		rawNote = r.Var(maxStateKeyText+1<<20, "note")
	}
	rawProof := r.Var(8+32*(statetree.KeyBits+2)+statetree.KeyBits/8, "proof")
	rawBlock := r.Var(maxBlockBytes, "block")
	cert := readCertificate(r, v, queryProofCertifiedVersion)
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: query proof: %w", err)
	}
	qp := &QueryProof{Certificate: cert}
	var err error
	if qp.Key, err = notes.ParseStateKey(sk); err != nil {
		return nil, fmt.Errorf("fractal: query proof: %w", err)
	}
	if rawNote != nil {
		if qp.Note, err = notes.Decode(rawNote); err != nil {
			return nil, fmt.Errorf("fractal: query proof: %w", err)
		}
	}
	if qp.Proof, err = statetree.DecodeProof(rawProof); err != nil {
		return nil, fmt.Errorf("fractal: query proof: %w", err)
	}
	if qp.Block, err = DecodeBlock(rawBlock); err != nil {
		return nil, fmt.Errorf("fractal: query proof: %w", err)
	}
	return qp, nil
}

// Statement is what a checked QueryProof proves.
type Statement struct {
	Instance [32]byte
	Height   uint64
	Root     [32]byte
	Key      notes.StateKey
	Note     *notes.Note // nil: no note lives at Key
}

func (s *Statement) String() string {
	if s.Note == nil {
		return fmt.Sprintf("no note at %s in instance %x at height %d", s.Key, s.Instance, s.Height)
	}
	id := s.Note.ID()
	return fmt.Sprintf("note %s lives at %s in instance %x at height %d", hex.EncodeToString(id[:]), s.Key, s.Instance, s.Height)
}

// CheckQueryProof checks qp offline against the executor key: the block's
// signature by that key, the note's place, and the state-tree proof against
// the block's final root. When instance is not nil it also refuses a proof
// for another instance: one executor key may sign blocks of several
// instances, so the key alone does not say which instance a proof is about.
// It returns what the proof proves.
func CheckQueryProof(qp *QueryProof, executor keys.PublicKey, instance *[32]byte) (*Statement, error) {
	if qp.Block.Executor != executor {
		return nil, errors.New("fractal: check proof: the block is not signed by the given executor key")
	}
	return CheckQueryProofBy(qp, ExecutorKeys{executor}, instance)
}

// CheckQueryProofBy is CheckQueryProof against any authority: an
// executor's keys, or a validator set (package certify) whose commit the
// proof's certificate carries.
func CheckQueryProofBy(qp *QueryProof, auth Authority, instance *[32]byte) (*Statement, error) {
	if instance != nil && qp.Block.Instance != *instance {
		return nil, fmt.Errorf("fractal: check proof: the proof is for instance %x, not %x", qp.Block.Instance, *instance)
	}
	if err := auth.Certify(qp.Block, qp.Certificate); err != nil {
		return nil, fmt.Errorf("fractal: check proof: %w", err)
	}
	st, err := qp.Statement()
	if err != nil {
		return nil, fmt.Errorf("fractal: check proof: %w", err)
	}
	return st, nil
}

// Statement checks the note and the proof against the block's final state
// root and returns what they prove. It does not check the block's
// signature: CheckQueryProof does both.
func (qp *QueryProof) Statement() (*Statement, error) {
	var id *[32]byte
	if qp.Note != nil {
		if !qp.Note.StateKey().Equal(qp.Key) {
			return nil, fmt.Errorf("the note lives at %s, not at the queried key", qp.Note.StateKey())
		}
		h := qp.Note.ID()
		id = &h
	}
	if err := statetree.VerifyProof(qp.Block.StateRoot, TreeKey(qp.Key), id, qp.Proof); err != nil {
		return nil, err
	}
	return &Statement{Instance: qp.Block.Instance, Height: qp.Block.Height, Root: qp.Block.StateRoot, Key: qp.Key, Note: qp.Note}, nil
}
