package wallet

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/certtest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
)

// plainSource serves compact blocks with no trust entry: what a node
// serves to `shielded sync --node` without --trust.
type plainSource struct {
	id     [32]byte
	blocks []*CompactBlock
}

func (s *plainSource) ID() [32]byte                         { return s.id }
func (s *plainSource) Head() (*chain.Block, error)          { return s.blocks[len(s.blocks)-1].Header, nil }
func (s *plainSource) Block(h uint64) (*chain.Block, error) { return s.blocks[h].Header, nil }
func (s *plainSource) Transactions(*chain.Block) ([]*phases.Tx, error) {
	panic("compact blocks only")
}
func (s *plainSource) CompactBlocks(from, to uint64, fn func(*CompactBlock) error) error {
	for h := from; h <= to; h++ {
		if err := fn(s.blocks[h]); err != nil {
			return err
		}
	}
	return nil
}

// forgeAfter appends to blocks a block signed by a key of the attacker's
// own that links to the last one and pays the wallet of a a note of 1,000
// that no transaction ever made (its commitment root agrees: the attacker
// computes it).
func forgeAfter(a *applyWorld, id [32]byte, blocks []*CompactBlock) []*CompactBlock {
	t := a.t
	tree := merkle.New()
	for _, cb := range blocks[1:] {
		for _, tx := range cb.Txs {
			for _, cm := range tx.Commitments {
				if _, err := tree.Append(cm, false); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	nt := a.note(1000)
	cm := nt.Commitment()
	if _, err := tree.Append(cm, false); err != nil {
		t.Fatal(err)
	}
	last := blocks[len(blocks)-1].Header
	root := tree.Root()
	b := &chain.Block{Instance: id, Height: last.Height + 1, Prev: last.Hash(), CommitmentRoot: root.Bytes()}
	attacker, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := chain.SignBlock(context.Background(), b, keys.NewKeySigner(attacker)); err != nil {
		t.Fatal(err)
	}
	nf := randomNullifiers(t)
	forged := &CompactBlock{Header: b, Txs: []CompactTx{{ID: [32]byte{0xfe}, Asset: applyToken, Nullifiers: nf[:1],
		Commitments: []fr.Element{cm}, Ciphertexts: a.encrypt(shielded.BundleV2, nt)}}}
	return append(blocks[:len(blocks):len(blocks)], forged)
}

// TestSyncRefusesAnotherExecutor: a node serving blocks to a wallet that
// followed an instance before cannot sign the next block with a key of its
// own: every block must name the executor (or validator set) of the block
// the wallet last accepted, as `fractal verify` requires of every block.
// Without it, a wallet that synced a validator set's chain with its trust
// entry, then once without (or a wallet of a solo instance, from another
// node), took a forged note of 1,000 from a block the node signed itself.
func TestSyncRefusesAnotherExecutor(t *testing.T) {
	check := func(name string, a *applyWorld, src *plainSource, want string) {
		t.Helper()
		before, err := a.w.State.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		held := a.balance()
		_, err = a.w.Sync(src, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: sync: %v (balance %d, was %d), want %q", name, err, a.balance(), held, want)
		}
		after, err := a.w.State.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if string(after) != string(before) || a.balance() != held {
			t.Fatalf("%s: the refusal changed the wallet (balance %d, was %d)", name, a.balance(), held)
		}
	}

	// A validator set's chain, synced with its trust entry, then from a
	// node without one.
	set, privs := certtest.NewSet(t, 4)
	a := newApplyWorld(t)
	a.w.State = &State{Tree: merkle.New()}
	certified := newCertifiedSource(a, set, privs, 5)
	if _, err := a.w.Sync(certified, nil); err != nil {
		t.Fatal(err)
	}
	if a.balance() != 12 {
		t.Fatalf("balance %d after the certified sync, want 12", a.balance())
	}
	check("validator set", a, &plainSource{id: certified.id, blocks: forgeAfter(a, certified.id, certified.blocks)},
		"block 6: the block names executor")

	// A solo instance's chain signed by its executor, then a block signed
	// by another key.
	b := newApplyWorld(t)
	b.w.State = &State{Tree: merkle.New()}
	solo := soloSource(b, 3)
	if _, err := b.w.Sync(solo, nil); err != nil {
		t.Fatal(err)
	}
	if b.balance() != 5 {
		t.Fatalf("balance %d after the solo sync, want 5", b.balance())
	}
	check("solo", b, &plainSource{id: solo.id, blocks: forgeAfter(b, solo.id, solo.blocks)}, "block 4: the block names executor")
}

// soloSource is a solo instance's chain of n blocks after genesis, each
// signed by its executor, with a note of 5 for a's wallet in block 2.
func soloSource(a *applyWorld, n int) *plainSource {
	t := a.t
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	exec := keys.NewKeySigner(k)
	s := &plainSource{id: [32]byte{0x50, 1}}
	tree := merkle.New()
	for h := 0; h <= n; h++ {
		cb := &CompactBlock{Header: &chain.Block{Instance: s.id, Height: uint64(h)}}
		if h > 0 {
			cb.Header.Prev = s.blocks[h-1].Header.Hash()
		}
		if h == 2 {
			nt := a.note(5)
			cm, nf := nt.Commitment(), randomNullifiers(t)
			cb.Txs = []CompactTx{{ID: [32]byte{byte(h)}, Asset: applyToken, Nullifiers: nf[:1],
				Commitments: []fr.Element{cm}, Ciphertexts: a.encrypt(shielded.BundleV2, nt)}}
			if _, err := tree.Append(cm, false); err != nil {
				t.Fatal(err)
			}
		}
		root := tree.Root()
		cb.Header.CommitmentRoot = root.Bytes()
		if err := chain.SignBlock(context.Background(), cb.Header, exec); err != nil {
			t.Fatal(err)
		}
		s.blocks = append(s.blocks, cb)
	}
	return s
}
