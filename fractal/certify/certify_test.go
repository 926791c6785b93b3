package certify

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	"github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"

	"github.com/fractalvm/fractal/fractal/chain"
)

// testSet is a set of n validators of power 10 with their private keys.
func testSet(t testing.TB, n int) (*ValidatorSet, []ed25519.PrivKey) {
	t.Helper()
	var vals []Validator
	var privs []ed25519.PrivKey
	for i := range n {
		k := ed25519.GenPrivKey()
		v := Validator{Power: 10, Name: string(rune('a' + i))}
		copy(v.PubKey[:], k.PubKey().Bytes())
		vals, privs = append(vals, v), append(privs, k)
	}
	vs, err := NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	return vs, privs
}

// certificate is a header of b's chain at height 7 carrying appHash,
// signed by the validators whose keys are given (the others absent).
func certificate(t testing.TB, vs *ValidatorSet, b *chain.Block, appHash []byte, signers []ed25519.PrivKey) []byte {
	return certificateSide(t, vs, b, appHash, [32]byte{}, signers)
}

// certificateSide is certificate carrying the side digest side.
func certificateSide(t testing.TB, vs *ValidatorSet, b *chain.Block, appHash []byte, side [32]byte, signers []ed25519.PrivKey) []byte {
	t.Helper()
	set := vs.Comet()
	chainID := ChainID(b.Instance)
	h := &types.Header{
		Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: chainID, Height: 7,
		Time: time.Unix(1_700_000_000, 0).UTC(), ValidatorsHash: set.Hash(), NextValidatorsHash: set.Hash(),
		AppHash: appHash, ProposerAddress: set.Validators[0].Address,
	}
	id := types.BlockID{Hash: h.Hash(), PartSetHeader: types.PartSetHeader{Total: 1, Hash: bytes.Repeat([]byte{1}, 32)}}
	commit := &types.Commit{Height: 7, BlockID: id, Signatures: make([]types.CommitSig, len(set.Validators))}
	for i := range commit.Signatures {
		commit.Signatures[i] = types.NewCommitSigAbsent()
	}
	for _, k := range signers {
		idx, _ := set.GetByAddress(k.PubKey().Address())
		v, err := types.MakeVote(types.NewMockPVWithParams(k, false, false), chainID, idx, 7, 0, cmtproto.PrecommitType, id, h.Time)
		if err != nil {
			t.Fatal(err)
		}
		commit.Signatures[idx] = v.CommitSig()
	}
	cert, err := EncodeCertificate(&types.SignedHeader{Header: h, Commit: commit}, side)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertify: a header carrying the block's hash, committed by more than
// 2/3 of the set, certifies the block; each other case is refused with
// its reason.
func TestCertify(t *testing.T) {
	vs, privs := testSet(t, 4)
	b := &chain.Block{Instance: [32]byte{9}, Height: 3, StateRoot: [32]byte{4}, Executor: vs.Hash()}
	good := certificate(t, vs, b, appHashOf(b), privs[:3])
	if err := vs.Certify(b, good); err != nil {
		t.Fatal(err)
	}
	// With side records, the header's app hash folds in their digest,
	// which a version-2 certificate carries.
	side := [32]byte{5}
	sideHash := AppHash(b.Hash(), side)
	if sideHash == b.Hash() {
		t.Fatal("a side digest leaves the app hash the manifest's hash")
	}
	if err := vs.Certify(b, certificateSide(t, vs, b, sideHash[:], side, privs[:3])); err != nil {
		t.Fatal(err)
	}
	other, _ := testSet(t, 4)
	elsewhere := *b
	elsewhere.Instance = [32]byte{8}
	elsewhere.Executor = vs.Hash()
	signed := *b
	signed.Signature[5] = 1
	for _, tc := range []struct {
		name string
		set  *ValidatorSet
		b    *chain.Block
		cert []byte
		want string
	}{
		{"another set trusted", other, b, good, "names validator set"},
		{"no certificate", vs, b, nil, "certified by a commit, not signed"},
		{"two of four signed", vs, b, certificate(t, vs, b, appHashOf(b), privs[:2]), "the certificate's commit: invalid commit -- insufficient voting power"},
		{"another app hash", vs, b, certificate(t, vs, b, bytes.Repeat([]byte{7}, 32), privs), "carries app hash 0707"},
		{"another instance's chain", vs, &elsewhere, good, `header belongs to another chain "fractal-0900000000000000", not "fractal-0800000000000000"`},
		{"damaged", vs, b, good[:len(good)-3], "certify: certificate: "},
		{"unknown version", vs, b, append([]byte{3}, good[1:]...), "unknown version 3"},
		{"version 2 cut short", vs, b, []byte{2, 1, 2}, "version 2 without its side digest"},
		{"version 2 with a zero side digest", vs, b, append(append([]byte{2}, make([]byte, 32)...), good[1:]...), "version 2 with a zero side digest"},
		{"version 1 over an app hash with a side digest", vs, b, certificate(t, vs, b, sideHash[:], privs), "carries app hash"},
		{"version 2 with another side digest", vs, b, certificateSide(t, vs, b, sideHash[:], [32]byte{6}, privs), "with side digest 06"},
		{"a signature field that is not zero", vs, &signed, good, "block 3 of a validator set carries a signature; its signature field must be zero"},
	} {
		if err := tc.set.Certify(tc.b, tc.cert); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A signature of the commit flipped.
	sh, _, err := DecodeCertificate(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sh.Commit.Signatures {
		if s := sh.Commit.Signatures[i].Signature; len(s) > 0 {
			s[0] ^= 1
			break
		}
	}
	bad, err := EncodeCertificate(sh, [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if err := vs.Certify(b, bad); err == nil || !strings.Contains(err.Error(), "wrong signature") {
		t.Errorf("flipped signature: %v", err)
	}
}

// TestValidatorSetEncodings: the encoding and the JSON form read back the
// same set, whose hash is CometBFT's; bad sets are refused with reasons.
func TestValidatorSetEncodings(t *testing.T) {
	vs, _ := testSet(t, 3)
	back, err := DecodeValidatorSet(vs.Encode())
	if err != nil || back.Hash() != vs.Hash() || !bytes.Equal(back.Encode(), vs.Encode()) {
		t.Fatalf("decode: %v", err)
	}
	if h := vs.Hash(); !bytes.Equal(vs.Comet().Hash(), h[:]) {
		t.Fatal("the hash is not CometBFT's")
	}
	j, err := vs.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON ValidatorSet
	if err := fromJSON.UnmarshalJSON(j); err != nil || fromJSON.Hash() != vs.Hash() {
		t.Fatalf("json: %v", err)
	}
	if err := fromJSON.UnmarshalJSON(bytes.Replace(j, []byte(`"power":10`), []byte(`"power":11`), 1)); err == nil || !strings.Contains(err.Error(), "hash ") {
		t.Fatalf("json with another power: %v", err)
	}
	v := vs.Validators()
	for _, tc := range []struct {
		vals []Validator
		want string
	}{
		{nil, "1 to 1000 validators, not 0"},
		{[]Validator{v[0], v[0]}, "appears twice"},
		{[]Validator{{PubKey: v[0].PubKey, Power: 0}}, "power 0 outside"},
		{[]Validator{{PubKey: v[0].PubKey, Power: 1, Name: strings.Repeat("x", 65)}}, "name longer than 64 bytes"},
	} {
		if _, err := NewValidatorSet(tc.vals); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

func FuzzDecodeValidatorSet(f *testing.F) {
	vs, _ := testSet(f, 2)
	f.Add(vs.Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeValidatorSet(data)
		if err == nil && !bytes.Equal(got.Encode(), data) {
			t.Fatal("a decoded set encodes differently")
		}
	})
}

func FuzzDecodeCertificate(f *testing.F) {
	vs, privs := testSet(f, 2)
	b := &chain.Block{Executor: vs.Hash()}
	f.Add(certificate(f, vs, b, appHashOf(b), privs))
	side := [32]byte{5}
	ah := AppHash(b.Hash(), side)
	f.Add(certificateSide(f, vs, b, ah[:], side, privs))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := DecodeCertificate(data); err == nil {
			vs.Certify(b, data) // must not panic
		}
	})
}

// appHashOf is b's app hash without side records.
func appHashOf(b *chain.Block) []byte { h := AppHash(b.Hash(), [32]byte{}); return h[:] }
