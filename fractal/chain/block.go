// Package chain holds Fractal's chain types and the checks that need no
// store: blocks and their signed manifests, manifest files, fork evidence,
// query proofs, export records and import claims, encrypted batch records,
// and the dispute witness with its re-execution. A wallet, a light client
// or a referee imports it without the instance's storage (package
// fractal, the only one besides internal/badgerdb that imports badger).
//
// Formats: docs/formats/instance.md, chain.md, cross-instance.md,
// encrypted-mempool.md. Error messages keep the "fractal:" prefix the
// command line has always shown for them.
package chain

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
)

// blockVersion is the first byte of every block encoding.
const blockVersion = 1

// MaxBlockTxs bounds the transactions in one block; it keeps a sealed block
// within one write of the instance's store.
const MaxBlockTxs = 4096

// blockSigContext is prepended to the block hash before signing so that an
// executor's block signature can never be taken for a signature over
// anything else.
const blockSigContext = "fractal block v1\x00"

// Block is one sealed block: the header fields that the signature covers
// (the manifest of issue 5), the executor's signature, and the IDs of the
// transactions it committed, in order.
type Block struct {
	Instance       [32]byte   // instance ID
	Height         uint64     // 0 for genesis
	Prev           [32]byte   // hash of the previous block; zero for genesis
	TxsHash        [32]byte   // TxsHash(TxIDs)
	Roots          [][32]byte // state root after each transaction, in order
	StateRoot      [32]byte   // state root after the block
	CommitmentRoot [32]byte   // shielded commitment-tree root (zero until the shielded pool)
	Executor       [32]byte   // executor public key
	Signature      [64]byte   // XEdDSA by Executor over blockSigContext || Hash()
	TxIDs          [][32]byte // committed transactions, in execution order
}

// TxsHash is SHA-256 over list<bytes[32]> of the transaction IDs.
func TxsHash(ids [][32]byte) [32]byte {
	w := enc.NewWriter(4 + 32*len(ids))
	writeHashes(w, ids)
	return sha256.Sum256(w.Bytes())
}

// header writes the signed fields.
func (b *Block) header(w *enc.Writer) {
	w.U8(blockVersion)
	w.Fixed(b.Instance[:])
	w.U64(b.Height)
	w.Fixed(b.Prev[:])
	w.Fixed(b.TxsHash[:])
	writeHashes(w, b.Roots)
	w.Fixed(b.StateRoot[:])
	w.Fixed(b.CommitmentRoot[:])
	w.Fixed(b.Executor[:])
}

// Hash is SHA-256 over the header encoding (everything but the signature and
// the transaction list, which TxsHash covers).
func (b *Block) Hash() [32]byte {
	w := enc.NewWriter(180 + 32*len(b.Roots))
	b.header(w)
	return sha256.Sum256(w.Bytes())
}

// SignedMessage is what the executor signs: a context string, then the
// block hash.
func (b *Block) SignedMessage() []byte {
	h := b.Hash()
	return append([]byte(blockSigContext), h[:]...)
}

// Encode returns the canonical encoding: header, signature, transaction IDs.
func (b *Block) Encode() []byte {
	w := enc.NewWriter(250 + 64*len(b.Roots))
	b.header(w)
	w.Fixed(b.Signature[:])
	writeHashes(w, b.TxIDs)
	return w.Bytes()
}

// DecodeBlock parses a block encoding and checks that it is consistent: one
// root per transaction, the final root equal to the last per-transaction
// root, the transactions hash matching the list. It does not check the
// signature (see VerifyBlock).
func DecodeBlock(data []byte) (*Block, error) {
	r := enc.NewReader(data)
	b := &Block{}
	if err := b.readSigned(r); err != nil {
		return nil, fmt.Errorf("fractal: decode block: %w", err)
	}
	b.TxIDs = readHashes(r, "transactions")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("fractal: decode block: %w", err)
	}
	if err := b.Check(); err != nil {
		return nil, fmt.Errorf("fractal: decode block: %w", err)
	}
	return b, nil
}

// EncodeManifest returns the block's signed manifest: the header encoding
// then the signature, without the transaction list (what a claim carries,
// docs/formats/cross-instance.md "Claim", and a node's compact block).
func (b *Block) EncodeManifest() []byte {
	w := enc.NewWriter(256 + 32*len(b.Roots))
	b.header(w)
	w.Fixed(b.Signature[:])
	return w.Bytes()
}

// DecodeManifest parses EncodeManifest's output: a block without its
// transaction IDs, its roots checked for consistency. It does not check the
// signature (see VerifyBlock).
func DecodeManifest(raw []byte) (*Block, error) {
	b, err := decodeManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("fractal: manifest: %w", err)
	}
	return b, nil
}

func decodeManifest(raw []byte) (*Block, error) {
	if len(raw) > maxBlockBytes {
		return nil, fmt.Errorf("%d bytes exceeds limit %d", len(raw), maxBlockBytes)
	}
	b := &Block{}
	r := enc.NewReader(raw)
	if err := b.readSigned(r); err != nil {
		return nil, err
	}
	if err := r.Finish(); err != nil {
		return nil, err
	}
	if n := len(b.Roots); n > 0 && b.Roots[n-1] != b.StateRoot {
		return nil, errors.New("final state root differs from the last transaction's root")
	}
	if b.Height == 0 && (b.Prev != [32]byte{} || len(b.Roots) != 0) {
		return nil, errors.New("genesis block with a parent or transactions")
	}
	return b, nil
}

// readSigned reads the header and the signature: a signed manifest without
// its transaction list, as a Claim carries it.
func (b *Block) readSigned(r *enc.Reader) error {
	if v := r.U8(); r.Err() == nil && v != blockVersion {
		return fmt.Errorf("unknown version %d", v)
	}
	r.Into(b.Instance[:])
	b.Height = r.U64()
	r.Into(b.Prev[:])
	r.Into(b.TxsHash[:])
	b.Roots = readHashes(r, "roots")
	r.Into(b.StateRoot[:])
	r.Into(b.CommitmentRoot[:])
	r.Into(b.Executor[:])
	r.Into(b.Signature[:])
	return nil
}

// writeHashes writes list<bytes[32]>; readHashes reads it back (at most
// MaxBlockTxs entries).
func writeHashes(w *enc.Writer, list [][32]byte) {
	w.U32(uint32(len(list)))
	for _, h := range list {
		w.Fixed(h[:])
	}
}

func readHashes(r *enc.Reader, what string) [][32]byte {
	n := r.Count(MaxBlockTxs, what)
	if n == 0 {
		return nil
	}
	out := make([][32]byte, n)
	for i := range out {
		r.Into(out[i][:])
	}
	return out
}

// Check verifies the block's internal consistency (what DecodeBlock checks
// of every block it returns): one root per transaction, the transactions
// hash matching the list, the final root equal to the last transaction's.
func (b *Block) Check() error {
	if len(b.Roots) != len(b.TxIDs) {
		return fmt.Errorf("%d roots for %d transactions", len(b.Roots), len(b.TxIDs))
	}
	if TxsHash(b.TxIDs) != b.TxsHash {
		return errors.New("transactions hash does not match the transaction list")
	}
	if n := len(b.Roots); n > 0 && b.Roots[n-1] != b.StateRoot {
		return errors.New("final state root differs from the last transaction's root")
	}
	if b.Height == 0 && (b.Prev != [32]byte{} || len(b.TxIDs) != 0) {
		return errors.New("genesis block with a parent or transactions")
	}
	return nil
}

// VerifyBlock checks b's executor signature.
func VerifyBlock(b *Block) error {
	if err := keys.Verify(keys.PublicKey(b.Executor), b.SignedMessage(), b.Signature[:]); err != nil {
		return fmt.Errorf("fractal: block %d: executor signature: %w", b.Height, err)
	}
	return nil
}

// SignBlock fills b.Executor and b.Signature with s's signature over the
// block header (checked before it is kept). An instance signs its blocks
// through its guard (Instance.Sign); this is how anyone else signs one: a
// second executor of an instance signing its own result for the same block
// (the dispute game compares two such claims), or a test.
func SignBlock(ctx context.Context, b *Block, s keys.Signer) error {
	b.Executor = s.Public()
	sig, err := keys.SignChecked(ctx, s, b.SignedMessage())
	if err != nil {
		return fmt.Errorf("fractal: sign block: %w", err)
	}
	copy(b.Signature[:], sig)
	return nil
}
