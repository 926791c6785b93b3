package abci

// The bytes of the threshold key's shares on a validator set (decision
// 161, docs/formats/validator-set.md): a vote extension carries one
// validator's share batch for the encrypted batch waiting after the block
// it precommits; the next proposer puts every vote of its last commit,
// extensions and their signatures included, into the proposal's first
// transaction.

import (
	"bytes"
	"errors"
	"fmt"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/tfhe"
)

// extensionVersion is the first byte of a non-empty vote extension.
const extensionVersion = 1

// An Extension is a validator's vote extension for the block at Height:
// its share batch (tfhe tag 0x06, one share with its proof per slot) for
// the encrypted batch whose record hashes to Batch, the one waiting after
// that block. A block after which no batch waits gets the empty extension.
type Extension struct {
	Height int64
	Batch  [32]byte
	Shares *tfhe.ShareBatch
}

// EncodeExtension returns u8 1 ‖ u64 height ‖ bytes[32] batch record hash
// ‖ the share batch's encoding.
func EncodeExtension(e *Extension) []byte {
	w := enc.NewWriter(64)
	w.U8(extensionVersion)
	w.U64(uint64(e.Height))
	w.Fixed(e.Batch[:])
	w.Fixed(e.Shares.Encode())
	return w.Bytes()
}

// DecodeExtension parses a non-empty extension, at most
// types.MaxVoteExtensionSize bytes.
func DecodeExtension(raw []byte) (*Extension, error) {
	if len(raw) > types.MaxVoteExtensionSize {
		return nil, fmt.Errorf("vote extension: %d bytes, limit %d", len(raw), types.MaxVoteExtensionSize)
	}
	r := enc.NewReader(raw)
	if v := r.U8(); r.Err() == nil && v != extensionVersion {
		return nil, fmt.Errorf("vote extension: unknown version %d", v)
	}
	e := &Extension{Height: int64(r.U64())}
	r.Into(e.Batch[:])
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("vote extension: %w", err)
	}
	if e.Height < 1 {
		return nil, fmt.Errorf("vote extension: height %d", e.Height)
	}
	sb, err := tfhe.DecodeShareBatch(raw[len(raw)-r.Remaining():])
	if err != nil {
		return nil, fmt.Errorf("vote extension: %w", err)
	}
	e.Shares = sb
	return e, nil
}

// sharesTxMagic starts a proposal's first transaction carrying its last
// commit's votes with their extensions.
const sharesTxMagic = "fractal shares v1\x00"

// EncodeSharesTx returns the first transaction of a proposal: the magic
// then the ExtendedCommitInfo (CometBFT's protobuf encoding).
func EncodeSharesTx(ec *abcitypes.ExtendedCommitInfo) ([]byte, error) {
	body, err := ec.Marshal()
	if err != nil {
		return nil, err
	}
	return append([]byte(sharesTxMagic), body...), nil
}

// isSharesTx reports a transaction that starts with the shares magic.
func isSharesTx(raw []byte) bool { return bytes.HasPrefix(raw, []byte(sharesTxMagic)) }

// DecodeSharesTx parses a shares transaction (its size is bounded by the
// block's).
func DecodeSharesTx(raw []byte) (*abcitypes.ExtendedCommitInfo, error) {
	if !isSharesTx(raw) {
		return nil, errors.New("shares transaction: no magic")
	}
	var ec abcitypes.ExtendedCommitInfo
	if err := ec.Unmarshal(raw[len(sharesTxMagic):]); err != nil {
		return nil, fmt.Errorf("shares transaction: %w", err)
	}
	return &ec, nil
}
