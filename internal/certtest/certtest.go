// Package certtest makes validator sets and certificates for tests: a
// CometBFT header signed by chosen validators of a set, as a validator-set
// instance's network would commit it (package certify checks them).
package certtest

import (
	"bytes"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	"github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"

	"github.com/fractalvm/fractal/fractal/certify"
)

// NewSet returns a set of n validators of power 10, named a, b, …, with
// their private keys in the same order.
func NewSet(t testing.TB, n int) (*certify.ValidatorSet, []ed25519.PrivKey) {
	t.Helper()
	var vals []certify.Validator
	var privs []ed25519.PrivKey
	for i := range n {
		k := ed25519.GenPrivKey()
		v := certify.Validator{Power: 10, Name: string(rune('a' + i))}
		copy(v.PubKey[:], k.PubKey().Bytes())
		vals, privs = append(vals, v), append(privs, k)
	}
	vs, err := certify.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	return vs, privs
}

// Header returns a signed header of instance id's chain at height,
// carrying appHash, made by set and committed by the validators whose keys
// are signers (the others absent).
func Header(t testing.TB, set *certify.ValidatorSet, signers []ed25519.PrivKey, id [32]byte, height int64, appHash []byte) *types.SignedHeader {
	t.Helper()
	vals, chainID := set.Comet(), certify.ChainID(id)
	h := &types.Header{
		Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: chainID, Height: height,
		Time: time.Unix(1_700_000_000, 0).UTC(), ValidatorsHash: vals.Hash(), NextValidatorsHash: vals.Hash(),
		AppHash: appHash, ProposerAddress: vals.Validators[0].Address,
	}
	bid := types.BlockID{Hash: h.Hash(), PartSetHeader: types.PartSetHeader{Total: 1, Hash: bytes.Repeat([]byte{1}, 32)}}
	commit := &types.Commit{Height: height, BlockID: bid, Signatures: make([]types.CommitSig, len(vals.Validators))}
	for i := range commit.Signatures {
		commit.Signatures[i] = types.NewCommitSigAbsent()
	}
	for _, k := range signers {
		idx, _ := vals.GetByAddress(k.PubKey().Address())
		v, err := types.MakeVote(types.NewMockPVWithParams(k, false, false), chainID, idx, height, 0, cmtproto.PrecommitType, bid, h.Time)
		if err != nil {
			t.Fatal(err)
		}
		commit.Signatures[idx] = v.CommitSig()
	}
	return &types.SignedHeader{Header: h, Commit: commit}
}

// Certificate is Header's certificate encoding (version 1: no side
// digest).
func Certificate(t testing.TB, set *certify.ValidatorSet, signers []ed25519.PrivKey, id [32]byte, height int64, appHash []byte) []byte {
	t.Helper()
	return CertificateSide(t, set, signers, id, height, appHash, [32]byte{})
}

// CertificateSide is Header's certificate encoding carrying the side
// digest side (version 2 when it is not zero).
func CertificateSide(t testing.TB, set *certify.ValidatorSet, signers []ed25519.PrivKey, id [32]byte, height int64, appHash []byte, side [32]byte) []byte {
	t.Helper()
	cert, err := certify.EncodeCertificate(Header(t, set, signers, id, height, appHash), side)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
