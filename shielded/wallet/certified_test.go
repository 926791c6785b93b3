package wallet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/certtest"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// certifiedSource is a validator set's chain as a node that need not be
// honest serves it: compact blocks, and certificates signed by the keys
// signers of set (which need not be the trusted one) over each block's
// hash, or over what appHash says.
type certifiedSource struct {
	t       *testing.T
	id      [32]byte
	trusted *certify.ValidatorSet
	set     *certify.ValidatorSet
	signers []ed25519.PrivKey
	blocks  []*CompactBlock // by height, genesis first
	appHash func(b *chain.Block) []byte
	asked   []uint64 // the heights whose certificates were asked for
}

func (s *certifiedSource) ID() [32]byte                         { return s.id }
func (s *certifiedSource) Head() (*chain.Block, error)          { return s.blocks[len(s.blocks)-1].Header, nil }
func (s *certifiedSource) Block(h uint64) (*chain.Block, error) { return s.blocks[h].Header, nil }
func (s *certifiedSource) Transactions(*chain.Block) ([]*phases.Tx, error) {
	return nil, errors.New("compact blocks only")
}
func (s *certifiedSource) Trusted() *certify.ValidatorSet { return s.trusted }

func (s *certifiedSource) CompactBlocks(from, to uint64, fn func(*CompactBlock) error) error {
	for h := from; h <= to; h++ {
		if err := fn(s.blocks[h]); err != nil {
			return err
		}
	}
	return nil
}

// Certificate is a header at height+1 carrying the block's app hash, with
// a commit by the signers.
func (s *certifiedSource) Certificate(height uint64) ([]byte, error) {
	s.asked = append(s.asked, height)
	b := s.blocks[height].Header
	app := certify.AppHash(b)
	if s.appHash != nil {
		app = s.appHash(b)
	}
	return certtest.Certificate(s.t, s.set, s.signers, s.id, int64(height+1), app), nil
}

// newCertifiedSource builds a chain of n blocks after genesis of set's
// instance, with a note of value 5 for the wallet of a in block 3 and one
// of value 7 in block n.
func newCertifiedSource(a *applyWorld, set *certify.ValidatorSet, privs []ed25519.PrivKey, n int) *certifiedSource {
	s := &certifiedSource{t: a.t, id: [32]byte{0xf5, 1}, trusted: set, set: set, signers: privs[:3]}
	tree := merkle.New()
	genesis := &chain.Block{Instance: s.id, Executor: set.Hash()}
	s.blocks = append(s.blocks, &CompactBlock{Header: genesis})
	for h := 1; h <= n; h++ {
		cb := &CompactBlock{Header: &chain.Block{Instance: s.id, Height: uint64(h), Prev: s.blocks[h-1].Header.Hash(), Executor: set.Hash()}}
		if h == 3 || h == n {
			value := uint64(5)
			if h == n {
				value = 7
			}
			nt := a.note(value)
			cm, nf := nt.Commitment(), randomNullifiers(a.t)
			cb.Txs = []CompactTx{{ID: [32]byte{byte(h)}, Asset: applyToken, Nullifiers: nf[:1],
				Commitments: []fr.Element{cm}, Ciphertexts: a.encrypt(shielded.BundleV2, nt)}}
			if _, err := tree.Append(cm, false); err != nil {
				a.t.Fatal(err)
			}
		}
		root := tree.Root()
		cb.Header.CommitmentRoot = root.Bytes()
		s.blocks = append(s.blocks, cb)
	}
	return s
}

// savedState returns the wallet's saved state.
func savedState(t *testing.T, w *Wallet) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.Dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSyncCertified: a wallet syncing a validator set's chain from a
// source it does not trust believes what a commit of more than two thirds
// of the trusted set covers: the certificate of the last block before
// each save, whose links cover the blocks before it. A forged block, a
// forged or too weakly signed certificate, or a chain of another set is
// refused with its reason, and the wallet's state, in memory and saved, is
// the one of its last certified save; a sync that failed after a save
// resumes from it.
func TestSyncCertified(t *testing.T) {
	set, privs := certtest.NewSet(t, 4)
	other, otherPrivs := certtest.NewSet(t, 4)
	const n = saveEvery + 44

	// An honest source: both notes, certificates asked at the save and the
	// head only.
	a := newApplyWorld(t)
	a.w.State = &State{Tree: merkle.New()}
	src := newCertifiedSource(a, set, privs, n)
	rep, err := a.w.Sync(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != 1 || rep.To != n || rep.Found != 2 || a.balance() != 12 {
		t.Fatalf("sync: %+v, balance %d", rep, a.balance())
	}
	if want := []uint64{saveEvery, n}; !equalHeights(src.asked, want) {
		t.Fatalf("certificates asked for %v, want %v", src.asked, want)
	}

	refused := func(name string, edit func(s *certifiedSource), wantNext uint64, want string) {
		t.Helper()
		b := newApplyWorld(t)
		b.w.State = &State{Tree: merkle.New()}
		s := newCertifiedSource(b, set, privs, n)
		if err := b.w.Save(); err != nil {
			t.Fatal(err)
		}
		edit(s)
		_, err := b.w.Sync(s, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want %q", name, err, want)
		}
		saved := savedState(t, b.w)
		mem, err := b.w.State.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mem, saved) || b.w.State.Next != wantNext {
			t.Fatalf("%s: after the refusal the wallet is at block %d (saved and in memory equal: %v), want %d", name, b.w.State.Next, bytes.Equal(mem, saved), wantNext)
		}
		if bl := b.balance(); (wantNext == 0) != (bl == 0) {
			t.Fatalf("%s: balance %d at block %d", name, bl, wantNext)
		}
	}
	// The head replaced by a forged one (another state root): it links and
	// its commitment root agrees, so it applies, but no commit carries it.
	refused("forged head", func(s *certifiedSource) {
		orig := s.blocks[n].Header
		h := *orig
		h.StateRoot[0] ^= 1
		forged := *s.blocks[n]
		forged.Header = &h
		s.blocks[n] = &forged
		s.appHash = func(b *chain.Block) []byte {
			if b.Height == n {
				return certify.AppHash(orig) // the true head's, not the forged one's
			}
			return certify.AppHash(b)
		}
	}, saveEvery+1, "block 300 is not certified by the trusted validator set: certify: the header of height 301 carries app hash")
	refused("forged certificate", func(s *certifiedSource) {
		s.appHash = func(*chain.Block) []byte { return bytes.Repeat([]byte{7}, 32) }
	}, 0, "block 256 is not certified by the trusted validator set")
	refused("two of four signatures", func(s *certifiedSource) { s.signers = privs[:2] }, 0, "insufficient voting power")
	refused("certificates of another set", func(s *certifiedSource) { s.set, s.signers = other, otherPrivs[:3] }, 0,
		"the certificate's header was made by validator set")
	refused("blocks of another set", func(s *certifiedSource) { s.trusted = other }, 0,
		"block 1: the block names validator set")
	refused("signed blocks", func(s *certifiedSource) { s.blocks[1].Header.Signature[0] = 1 }, 0, "carries a signature")
	refused("another instance", func(s *certifiedSource) { s.blocks[1].Header.Instance[0] ^= 1 }, 0, "block 1: the block belongs to instance")
}

func equalHeights(a, b []uint64) bool {
	return len(a) == len(b) && (len(a) == 0 || a[0] == b[0] && equalHeights(a[1:], b[1:]))
}
