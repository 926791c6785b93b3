package chain

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
)

// The first byte of a manifest export file: version 1 holds signed blocks,
// version 2 certified blocks, each with its certificate (a validator set's,
// decision 138).
const (
	manifestFileVersion          = 1
	certifiedManifestFileVersion = 2
)

// MaxManifestFileBlocks bounds the blocks one manifest file may carry.
const MaxManifestFileBlocks = 1 << 20

// maxBlockBytes bounds one block encoding inside a file or record: the
// encoding of a block of MaxBlockTxs transactions (version 1, instance 32,
// height 8, prev 32, transactions hash 32, roots 4+32n, state root 32,
// commitment root 32, executor 32, signature 64, transactions 4+32n).
const maxBlockBytes = 273 + 64*MaxBlockTxs

// EncodeManifests returns the manifest file holding blocks: version, count,
// then each block's canonical encoding as a var.
func EncodeManifests(blocks []*Block) []byte { return encodeManifests(blocks, nil) }

// EncodeCertifiedManifests returns the certified manifest file holding
// blocks, each followed by its certificate (certs[i] certifies blocks[i]):
// version 2, count, then per block its encoding and its certificate as
// vars.
func EncodeCertifiedManifests(blocks []*Block, certs [][]byte) []byte {
	return encodeManifests(blocks, certs)
}

func encodeManifests(blocks []*Block, certs [][]byte) []byte {
	version, size := uint8(manifestFileVersion), 64
	if certs != nil {
		version, size = certifiedManifestFileVersion, 1024
	}
	w := enc.NewWriter(size * len(blocks))
	w.U8(version)
	w.U32(uint32(len(blocks)))
	for i, b := range blocks {
		w.Var(b.Encode())
		if certs != nil {
			w.Var(certs[i])
		}
	}
	return w.Bytes()
}

// DecodeManifests parses a manifest file of signed blocks (version 1). It
// checks each block's encoding and internal consistency, not its
// signature.
func DecodeManifests(data []byte) ([]*Block, error) {
	blocks, certs, err := DecodeManifestFile(data)
	if err == nil && certs != nil {
		return nil, errors.New("fractal: manifest file: a certified manifest file (version 2), not one of signed blocks")
	}
	return blocks, err
}

// DecodeManifestFile parses a manifest file of either version: the blocks,
// and for a certified file (version 2) each one's certificate (nil for
// version 1). It checks each block's encoding and internal consistency,
// not its signature or certificate.
func DecodeManifestFile(data []byte) ([]*Block, [][]byte, error) {
	r := enc.NewReader(data)
	v := r.U8()
	if r.Err() == nil && v != manifestFileVersion && v != certifiedManifestFileVersion {
		return nil, nil, fmt.Errorf("fractal: manifest file: unknown version %d", v)
	}
	n := r.Count(MaxManifestFileBlocks, "blocks")
	var out []*Block
	var certs [][]byte
	if v == certifiedManifestFileVersion {
		certs = [][]byte{}
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		raw := r.Var(maxBlockBytes, "block")
		if v == certifiedManifestFileVersion {
			certs = append(certs, r.Var(MaxCertificateBytes, "certificate"))
		}
		if r.Err() != nil {
			break
		}
		b, err := DecodeBlock(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("fractal: manifest file: block %d: %w", i, err)
		}
		out = append(out, b)
	}
	if err := r.Finish(); err != nil {
		return nil, nil, fmt.Errorf("fractal: manifest file: %w", err)
	}
	return out, certs, nil
}

// Conflict says how two signed manifests of one instance contradict each
// other.
type Conflict uint8

const (
	SameHeight Conflict = 1 // two different blocks at one height
	SameParent Conflict = 2 // two different blocks extending one block
)

func (c Conflict) String() string {
	switch c {
	case SameHeight:
		return "same height"
	case SameParent:
		return "same parent"
	}
	return fmt.Sprintf("conflict(%d)", uint8(c))
}

// Evidence is a fork: two blocks of one instance, both validly signed by its
// executor key, that cannot both be part of its history. A is the block
// with the smaller hash, so one fork has one record.
type Evidence struct {
	Conflict Conflict
	A, B     *Block
}

const evidenceVersion = 1

// Encode returns the record: version, conflict, then both block encodings.
func (e *Evidence) Encode() []byte {
	w := enc.NewWriter(512)
	w.U8(evidenceVersion)
	w.U8(uint8(e.Conflict))
	w.Var(e.A.Encode())
	w.Var(e.B.Encode())
	return w.Bytes()
}

// DecodeEvidence parses an evidence record and checks that its two blocks
// are validly signed by one key, of one instance, in canonical order, and do
// conflict as it says.
func DecodeEvidence(data []byte) (*Evidence, error) {
	r := enc.NewReader(data)
	if v := r.U8(); r.Err() == nil && v != evidenceVersion {
		return nil, fmt.Errorf("fractal: evidence: unknown version %d", v)
	}
	e := &Evidence{Conflict: Conflict(r.U8())}
	rawA, rawB := r.Var(maxBlockBytes, "block"), r.Var(maxBlockBytes, "block")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: evidence: %w", err)
	}
	var err error
	if e.A, err = DecodeBlock(rawA); err != nil {
		return nil, fmt.Errorf("fractal: evidence: %w", err)
	}
	if e.B, err = DecodeBlock(rawB); err != nil {
		return nil, fmt.Errorf("fractal: evidence: %w", err)
	}
	ha, hb := e.A.Hash(), e.B.Hash()
	if bytes.Compare(ha[:], hb[:]) >= 0 {
		return nil, errors.New("fractal: evidence: blocks out of order")
	}
	if c, ok := Conflicting(e.A, e.B); !ok || c != e.Conflict {
		return nil, errors.New("fractal: evidence: the blocks do not conflict as recorded")
	}
	for _, b := range []*Block{e.A, e.B} {
		if b.Executor != e.A.Executor {
			return nil, errors.New("fractal: evidence: blocks signed by different keys")
		}
		if err := VerifyBlock(b); err != nil {
			return nil, fmt.Errorf("fractal: evidence: %w", err)
		}
	}
	return e, nil
}

// Conflicting reports whether two blocks of one instance contradict each
// other, and how.
func Conflicting(a, b *Block) (Conflict, bool) {
	switch {
	case a.Instance != b.Instance || a.Hash() == b.Hash():
		return 0, false
	case a.Height == b.Height:
		return SameHeight, true
	case a.Prev == b.Prev && a.Height > 0 && b.Height > 0:
		return SameParent, true
	}
	return 0, false
}

// NewEvidence is the evidence record of a conflict between a and b, the
// block with the smaller hash first.
func NewEvidence(c Conflict, a, b *Block) *Evidence {
	ha, hb := a.Hash(), b.Hash()
	if bytes.Compare(ha[:], hb[:]) > 0 {
		a, b = b, a
	}
	return &Evidence{Conflict: c, A: a, B: b}
}

// ID names the record: SHA-256 of the two block hashes in its order.
func (e *Evidence) ID() [32]byte {
	ha, hb := e.A.Hash(), e.B.Hash()
	return sha256.Sum256(append(ha[:], hb[:]...))
}

// VerifyBlockOf checks a block from outside against an instance ID and its
// executor key: the block names the instance and is validly signed by the
// key.
func VerifyBlockOf(b *Block, id [32]byte, exec keys.PublicKey) error {
	if b.Instance != id {
		return fmt.Errorf("height %d: belongs to instance %x, not this one", b.Height, b.Instance[:8])
	}
	if b.Executor != exec {
		return fmt.Errorf("height %d: not signed by this instance's executor key", b.Height)
	}
	if err := VerifyBlock(b); err != nil {
		return fmt.Errorf("height %d: invalid executor signature", b.Height)
	}
	return nil
}
