package certify_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/certtest"
)

// certificate is a header of b's chain at height 7 carrying appHash,
// signed by the validators whose keys are given (the others absent).
func certificate(t testing.TB, vs *certify.ValidatorSet, b *chain.Block, appHash []byte, signers []ed25519.PrivKey) []byte {
	t.Helper()
	return certtest.Certificate(t, vs, signers, b.Instance, 7, appHash)
}

// TestCertify: a header carrying the block's hash, committed by more than
// 2/3 of the set, certifies the block; each other case is refused with
// its reason.
func TestCertify(t *testing.T) {
	vs, privs := certtest.NewSet(t, 4)
	b := &chain.Block{Instance: [32]byte{9}, Height: 3, StateRoot: [32]byte{4}, Executor: vs.Hash()}
	good := certificate(t, vs, b, certify.AppHash(b), privs[:3])
	if err := vs.Certify(b, good); err != nil {
		t.Fatal(err)
	}
	// With side records, the header's app hash folds in their digest,
	// which a version-2 certificate carries.
	side := [32]byte{5}
	sideHash := certify.AppHashOver(b.Hash(), side)
	if sideHash == b.Hash() {
		t.Fatal("a side digest leaves the app hash the manifest's hash")
	}
	withSide := func(side [32]byte, signers []ed25519.PrivKey) []byte {
		return certtest.CertificateSide(t, vs, signers, b.Instance, 7, sideHash[:], side)
	}
	if err := vs.Certify(b, withSide(side, privs[:3])); err != nil {
		t.Fatal(err)
	}
	other, _ := certtest.NewSet(t, 4)
	elsewhere := *b
	elsewhere.Instance = [32]byte{8}
	elsewhere.Executor = vs.Hash()
	signed := *b
	signed.Signature[5] = 1
	for _, tc := range []struct {
		name string
		set  *certify.ValidatorSet
		b    *chain.Block
		cert []byte
		want string
	}{
		{"another set trusted", other, b, good, "names validator set"},
		{"no certificate", vs, b, nil, "certified by a commit, not signed"},
		{"two of four signed", vs, b, certificate(t, vs, b, certify.AppHash(b), privs[:2]), "the certificate's commit: invalid commit -- insufficient voting power"},
		{"another app hash", vs, b, certificate(t, vs, b, bytes.Repeat([]byte{7}, 32), privs), "carries app hash 0707"},
		{"another instance's chain", vs, &elsewhere, good, `header belongs to another chain "fractal-0900000000000000", not "fractal-0800000000000000"`},
		{"damaged", vs, b, good[:len(good)-3], "certify: certificate: "},
		{"unknown version", vs, b, append([]byte{3}, good[1:]...), "unknown version 3"},
		{"version 2 cut short", vs, b, []byte{2, 1, 2}, "version 2 without its side digest"},
		{"version 2 with a zero side digest", vs, b, append(append([]byte{2}, make([]byte, 32)...), good[1:]...), "version 2 with a zero side digest"},
		{"version 1 over an app hash with a side digest", vs, b, certificate(t, vs, b, sideHash[:], privs), "carries app hash"},
		{"version 2 with another side digest", vs, b, withSide([32]byte{6}, privs), "with side digest 06"},
		{"a signature field that is not zero", vs, &signed, good, "block 3 of a validator set carries a signature; its signature field must be zero"},
	} {
		if err := tc.set.Certify(tc.b, tc.cert); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A signature of the commit flipped.
	sh, _, err := certify.DecodeCertificate(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sh.Commit.Signatures {
		if s := sh.Commit.Signatures[i].Signature; len(s) > 0 {
			s[0] ^= 1
			break
		}
	}
	bad, err := certify.EncodeCertificate(sh, [32]byte{})
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
	vs, _ := certtest.NewSet(t, 3)
	back, err := certify.DecodeValidatorSet(vs.Encode())
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
	var fromJSON certify.ValidatorSet
	if err := fromJSON.UnmarshalJSON(j); err != nil || fromJSON.Hash() != vs.Hash() {
		t.Fatalf("json: %v", err)
	}
	if err := fromJSON.UnmarshalJSON(bytes.Replace(j, []byte(`"power":10`), []byte(`"power":11`), 1)); err == nil || !strings.Contains(err.Error(), "hash ") {
		t.Fatalf("json with another power: %v", err)
	}
	v := vs.Validators()
	for _, tc := range []struct {
		vals []certify.Validator
		want string
	}{
		{nil, "1 to 1000 validators, not 0"},
		{[]certify.Validator{v[0], v[0]}, "appears twice"},
		{[]certify.Validator{{PubKey: v[0].PubKey, Power: 0}}, "power 0 outside"},
		{[]certify.Validator{{PubKey: v[0].PubKey, Power: 1, Name: strings.Repeat("x", 65)}}, "name longer than 64 bytes"},
	} {
		if _, err := certify.NewValidatorSet(tc.vals); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

func FuzzDecodeValidatorSet(f *testing.F) {
	vs, _ := certtest.NewSet(f, 2)
	f.Add(vs.Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := certify.DecodeValidatorSet(data)
		if err == nil && !bytes.Equal(got.Encode(), data) {
			t.Fatal("a decoded set encodes differently")
		}
	})
}

// TestCertificateOneEncoding: a certificate has one encoding. Bytes that
// decode to the same header and commit another way (a length written as a
// longer varint, an unknown field), and a commit holding a nil vote (whose
// signature verification skips) are refused; certify.EncodeCertificate writes a
// nil vote absent, and that certificate certifies the block.
func TestCertificateOneEncoding(t *testing.T) {
	vs, privs := certtest.NewSet(t, 4)
	b := &chain.Block{Instance: [32]byte{9}, Height: 3, Executor: vs.Hash()}
	good := certificate(t, vs, b, certify.AppHash(b), privs[:3])
	if err := vs.Certify(b, good); err != nil {
		t.Fatal(err)
	}
	// good is 1 (version), 0x0a (field 1, the header), the header's length
	// as a varint, the header, then the commit.
	n, w := binary.Uvarint(good[2:])
	if w != 2 {
		t.Fatalf("the header's length takes %d bytes", w)
	}
	longer := append([]byte{1, 0x0a}, byte(n)|0x80, byte(n>>7)|0x80, 0)
	longer = append(longer, good[2+w:]...)

	sh, _, err := certify.DecodeCertificate(good)
	if err != nil {
		t.Fatal(err)
	}
	set := vs.Comet()
	idx, _ := set.GetByAddress(privs[3].PubKey().Address())
	v, err := types.MakeVote(types.NewMockPVWithParams(privs[3], false, false), sh.ChainID, idx, sh.Height, 0, cmtproto.PrecommitType, types.BlockID{}, sh.Time)
	if err != nil {
		t.Fatal(err)
	}
	sh.Commit.Signatures[idx] = v.CommitSig()
	if sh.Commit.Signatures[idx].BlockIDFlag != types.BlockIDFlagNil {
		t.Fatal("not a nil vote")
	}
	raw, err := sh.ToProto().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	withNil := append([]byte{1}, raw...)
	for _, tc := range []struct {
		name string
		cert []byte
		want string
	}{
		{"a longer varint", longer, "not in its canonical encoding"},
		{"an unknown field", append(slices.Clone(good), 0x18, 0x01), "not in its canonical encoding"},
		{"a nil vote", withNil, fmt.Sprintf("commit signature %d has block ID flag 3: only signatures for the block and absent ones are allowed", idx)},
	} {
		if _, _, err := certify.DecodeCertificate(tc.cert); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err := vs.Certify(b, tc.cert); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: certify: %v, want %q", tc.name, err, tc.want)
		}
	}
	written, err := certify.EncodeCertificate(sh, [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := certify.DecodeCertificate(written)
	if err != nil || back.Commit.Signatures[idx].BlockIDFlag != types.BlockIDFlagAbsent {
		t.Fatalf("encoded with a nil vote: %v", err)
	}
	if err := vs.Certify(b, written); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeCertificate: what decodes is the one encoding of what it
// decodes to, and checking it does not panic.
func FuzzDecodeCertificate(f *testing.F) {
	vs, privs := certtest.NewSet(f, 3)
	b := &chain.Block{Executor: vs.Hash()}
	f.Add(certificate(f, vs, b, certify.AppHash(b), privs))
	f.Add(certificate(f, vs, b, certify.AppHash(b), privs[:2]))
	ah := certify.AppHashOver(b.Hash(), [32]byte{5})
	f.Add(certtest.CertificateSide(f, vs, privs, b.Instance, 7, ah[:], [32]byte{5}))
	f.Fuzz(func(t *testing.T, data []byte) {
		sh, side, err := certify.DecodeCertificate(data)
		if err != nil {
			return
		}
		again, err := certify.EncodeCertificate(sh, side)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("a certificate that decodes encodes differently (%v)", err)
		}
		vs.Certify(b, data) // must not panic
	})
}
