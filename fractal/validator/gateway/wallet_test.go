package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// hostile is a validator's node as a wallet reads it, with what it serves
// changed: each compact block through block, each certificate through
// cert.
type hostile struct {
	wallet.CertifiedChain
	block func(*wallet.CompactBlock)
	cert  func(height uint64, cert []byte) []byte
}

func (h hostile) CompactBlocks(from, to uint64, fn func(*wallet.CompactBlock) error) error {
	return h.CertifiedChain.(wallet.CompactChain).CompactBlocks(from, to, func(cb *wallet.CompactBlock) error {
		if h.block != nil {
			h.block(cb)
		}
		return fn(cb)
	})
}

func (h hostile) Certificate(height uint64) ([]byte, error) {
	cert, err := h.CertifiedChain.Certificate(height)
	if err == nil && h.cert != nil {
		cert = h.cert(height, cert)
	}
	return cert, err
}

// TestShieldedWalletOverValidatorAPI: on four validators, each served as
// fractal node serves it, a wallet shields and sends a shielded note
// through one validator's API, and the recipient's wallet, syncing over
// another validator's API with only the trust entry's validator set,
// receives it: every save it makes is covered by a commit of more than two
// thirds of the set. A node that serves a forged block, a forged
// certificate, another instance, or a chain of another validator set is
// refused with the reason, the wallet's state in memory and on disk left
// as it was; an honest sync then goes on from there.
func TestShieldedWalletOverValidatorAPI(t *testing.T) {
	if os.Getenv("FRACTAL_DEVNET_LONG") == "" {
		t.Skip("four validators and Groth16 proofs: make devnet-long runs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pk, zkDir := nodetest.ShieldedKeys(t)
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dir := t.TempDir()
	dn, err := validator.WriteDevnet(filepath.Join(dir, "net"), validator.DevnetOptions{
		Validators: 4, BasePort: freeBase(t, 4), Instance: fractal.DefaultConfig(), ZK: zkDir,
		TimeoutPropose: time.Second, TimeoutCommit: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	trust := dn.Trust
	var vs []*running
	for _, home := range dn.Homes {
		vs = append(vs, serveHome(t, home))
	}

	// A token and 100 of it for alice, through v0's API.
	token, err := vs[0].c.Deploy(ctx, read("../../../examples/token/token.lua"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := vs[0].c.Deploy(ctx, read("../../../examples/sig/sig.lua"))
	if err != nil {
		t.Fatal(err)
	}
	issuer, alice := newKey(t), newKey(t)
	tok := wallet.Token{App: token, Name: issuer.Public().String() + ":TOK"}
	mint := func(nonce uint64) *phases.Tx {
		tx := &phases.Tx{Nonce: nonce, GasLimit: 1_000_000, Calculation: read("../../../examples/token/mint.lua"),
			Write:     notes.ConstraintSet{notes.PatternFromKeyPrefix(notes.StateKey{Application: token, Owner: sig, Key: []byte(alice.Public().String() + ":")})},
			Extradata: fmt.Appendf(nil, "%x %x %s TOK %d", token, sig, alice.Public(), 100), Signers: []keys.PublicKey{issuer.Public()}}
		if err := tx.Sign(rand.Reader, issuer); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	committed(t, ctx, vs[0].c, mint(1))

	through := func(i int, set *certify.ValidatorSet) wallet.Instance {
		t.Helper()
		in, err := vs[i].c.TrustedWalletInstance(ctx, trust.ID, trust.Genesis, set)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, err := wallet.Create(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := wallet.Create(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendShield(ctx, through(0, trust.Validators), pk, tok, 100, alice, a.Keys.Address(), wallet.Progress{}); err != nil {
		t.Fatal(err)
	}
	sent, err := a.SendTransfer(ctx, through(1, trust.Validators), pk, tok, 30, b.Keys.Address(), wallet.Progress{})
	if err != nil || sent.Receipt.Status != phases.Accepted {
		t.Fatalf("transfer: %+v %v", sent, err)
	}
	var seen []uint64
	rep, err := b.Sync(through(2, trust.Validators), func(done, total uint64) { seen = append(seen, done) })
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != 1 || rep.Found != 1 || balance(b, tok) != 30 || balance(a, tok) != 70 || uint64(len(seen)) != rep.To || seen[len(seen)-1] != rep.To {
		t.Fatalf("b's sync: %+v, progress %v, balances %d and %d", rep, seen, balance(b, tok), balance(a, tok))
	}

	// New blocks for the refusals to be about.
	committed(t, ctx, vs[3].c, mint(2))
	committed(t, ctx, vs[3].c, mint(3))
	other := otherSet(t)
	unchanged := func(name string, w *wallet.Wallet, sync func() error, want string) {
		t.Helper()
		before, err := os.ReadFile(filepath.Join(w.Dir, "state.bin"))
		if err != nil {
			t.Fatal(err)
		}
		next := w.State.Next
		if err := sync(); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want %q", name, err, want)
		}
		after, err := os.ReadFile(filepath.Join(w.Dir, "state.bin"))
		if err != nil {
			t.Fatal(err)
		}
		mem, err := w.State.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) || !bytes.Equal(mem, after) || w.State.Next != next {
			t.Fatalf("%s: the wallet's state changed (block %d, was %d)", name, w.State.Next, next)
		}
	}
	honest := through(2, trust.Validators).(wallet.CertifiedChain)
	head, err := honest.Head()
	if err != nil {
		t.Fatal(err)
	}
	unchanged("forged head", b, func() error {
		_, err := b.Sync(hostile{CertifiedChain: honest, block: func(cb *wallet.CompactBlock) {
			if cb.Header.Height == head.Height {
				cb.Header.StateRoot[0] ^= 1
			}
		}}, nil)
		return err
	}, "is not certified by the trusted validator set: certify: the header of height")
	unchanged("too few signatures", b, func() error {
		_, err := b.Sync(hostile{CertifiedChain: honest, cert: func(_ uint64, cert []byte) []byte {
			sh, side, err := certify.DecodeCertificate(cert)
			if err != nil {
				t.Fatal(err)
			}
			for i := range sh.Commit.Signatures[:2] {
				sh.Commit.Signatures[i] = types.NewCommitSigAbsent()
			}
			if cert, err = certify.EncodeCertificate(sh, side); err != nil {
				t.Fatal(err)
			}
			return cert
		}}, nil)
		return err
	}, "insufficient voting power")
	unchanged("another validator set", b, func() error { _, err := b.Sync(through(3, other), nil); return err },
		"the block names validator set")
	unchanged("another instance", b, func() error {
		_, err := vs[3].c.TrustedWalletInstance(ctx, [32]byte{1}, trust.Genesis, trust.Validators)
		return err
	}, "the trust entry names 0100000000000000")
	unchanged("no trust entry", b, func() error {
		in, err := vs[3].c.WalletInstance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Sync(in, nil)
		return err
	}, "the block carries no signature: it is a validator set's, and the wallet needs the set's trust entry to check it")

	// Honest again, b goes on from where it was.
	from := b.State.Next
	if rep, err = b.Sync(through(3, trust.Validators), nil); err != nil || rep.From != from || rep.To < from+1 || balance(b, tok) != 30 {
		t.Fatalf("b's sync after the refusals: %+v %v", rep, err)
	}

	// A fresh wallet syncing the whole chain over the API.
	c, err := wallet.Create(filepath.Join(dir, "c"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err = c.Sync(through(1, trust.Validators), nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("a fresh wallet synced blocks %d..%d over v1's API in %v (%.0f blocks/s, one certificate)", rep.From, rep.To, took, float64(rep.To-rep.From+1)/took.Seconds())
}

func newKey(t *testing.T) keys.PrivateKey {
	t.Helper()
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// otherSet is a validator set of four fresh keys.
func otherSet(t *testing.T) *certify.ValidatorSet {
	t.Helper()
	var vals []certify.Validator
	for range 4 {
		v := certify.Validator{Power: 10}
		copy(v.PubKey[:], ed25519.GenPrivKey().PubKey().Bytes())
		vals = append(vals, v)
	}
	set, err := certify.NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// balance is w's unspent total of tok.
func balance(w *wallet.Wallet, tok wallet.Token) uint64 {
	for _, bl := range w.Balances() {
		if bl.Name == fmt.Sprintf("%x/%s", tok.App, tok.Name) {
			return bl.Value
		}
	}
	return 0
}
