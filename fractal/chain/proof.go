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

// queryProofVersion is the first byte of an encoded QueryProof.
const queryProofVersion = 1

// maxStateKeyText bounds a state key's text inside a proof file.
const maxStateKeyText = 64 << 10

// QueryProof answers "what lives at this state key?" in a form anyone can
// check offline with only the executor's public key: the note (or its
// absence), the state-tree proof, and the signed block whose final state
// root the proof leads to.
type QueryProof struct {
	Key   notes.StateKey
	Note  *notes.Note // nil when no note lives at Key
	Proof *statetree.Proof
	Block *Block
}

// TreeKey is the state-tree key of a state key: SHA-256 of its text.
func TreeKey(k notes.StateKey) [32]byte { return sha256.Sum256([]byte(k.String())) }

// Encode returns the canonical encoding: version, state-key text, an
// optional note, the proof and the block.
func (qp *QueryProof) Encode() []byte {
	w := enc.NewWriter(1024)
	w.U8(queryProofVersion)
	w.String(qp.Key.String())
	w.Bool(qp.Note != nil)
	if qp.Note != nil {
		w.Var(qp.Note.Encode())
	}
	w.Var(qp.Proof.Encode())
	w.Var(qp.Block.Encode())
	return w.Bytes()
}

// DecodeQueryProof parses an encoded QueryProof; it checks encodings only
// (CheckQueryProof checks what they prove).
func DecodeQueryProof(data []byte) (*QueryProof, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != queryProofVersion {
		return nil, fmt.Errorf("fractal: query proof: unknown version %d", v)
	}
	sk := r.String(maxStateKeyText, "state key")
	var rawNote []byte
	if r.Bool() {
		rawNote = r.Var(maxStateKeyText+1<<20, "note")
	}
	rawProof := r.Var(8+32*(statetree.KeyBits+2)+statetree.KeyBits/8, "proof")
	rawBlock := r.Var(maxBlockBytes, "block")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: query proof: %w", err)
	}
	qp := &QueryProof{}
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
	if instance != nil && qp.Block.Instance != *instance {
		return nil, fmt.Errorf("fractal: check proof: the proof is for instance %x, not %x", qp.Block.Instance, *instance)
	}
	if err := VerifyBlock(qp.Block); err != nil {
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
