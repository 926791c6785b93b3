package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// copyWallet copies a wallet folder (same key, same state) to a new one.
func copyWallet(t testing.TB, w *wallet.Wallet) *wallet.Wallet {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(dir, 0o700)
	for _, f := range []string{"spend.key", "state.bin"} {
		b, err := os.ReadFile(filepath.Join(w.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := wallet.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stopAfter is a node that fails after sending a number of blocks: a sync
// killed part-way (the wallet's saves are atomic files, so a kill leaves
// what this leaves).
type stopAfter struct {
	wallet.CompactChain
	n int
}

var errKilled = errors.New("killed")

// certifiedStop is stopAfter for a validator set's chain: it keeps the
// trusted set and the certificates.
type certifiedStop struct {
	wallet.CertifiedChain
	stop stopAfter
}

func (s certifiedStop) CompactBlocks(from, to uint64, fn func(*wallet.CompactBlock) error) error {
	return s.stop.CompactBlocks(from, to, fn)
}

// killAfter is node killed after sending n blocks.
func killAfter(node wallet.CompactChain, n int) wallet.Chain {
	if cc, ok := node.(wallet.CertifiedChain); ok {
		return certifiedStop{cc, stopAfter{node, n}}
	}
	return stopAfter{node, n}
}

func (s stopAfter) CompactBlocks(from, to uint64, fn func(*wallet.CompactBlock) error) error {
	seen := 0
	return s.CompactChain.CompactBlocks(from, to, func(cb *wallet.CompactBlock) error {
		if seen++; seen > s.n {
			return errKilled
		}
		return fn(cb)
	})
}

// walletInstance is the node c as a wallet's instance, reading compact
// blocks.
func walletInstance(t testing.TB, c *client.Client, ctx context.Context) wallet.CompactChain {
	t.Helper()
	in, err := c.WalletInstance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cc, ok := in.(wallet.CompactChain)
	if !ok {
		t.Fatal("a node's wallet instance does not serve compact blocks")
	}
	return cc
}

// twoWallets is a fresh wallet and a copy of it (same key), and a node
// serving n blocks of txs shielded transactions of the bundle versions
// given (nodetest.NewShieldedChain), one output in mineEvery the wallet's,
// read through the client for at most a minute. newChain is
// nodetest.NewShieldedChain or, for a validator set's chain read through
// TrustedWalletInstance, nodetest.NewCertifiedShieldedChain.
func twoWallets(t *testing.T, newChain chainMaker, n, txs, mineEvery int, versions ...byte) (w, twin *wallet.Wallet, chain *nodetest.ShieldedChain, node wallet.CompactChain) {
	t.Helper()
	w, err := wallet.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	chain = newChain(t, w.Keys.Address(), n, txs, mineEvery, versions...)
	c, err := client.New(chain.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	node = walletInstance(t, c, ctx)
	if chain.Validators != nil {
		in, err := c.TrustedWalletInstance(ctx, node.ID(), chain.GenesisHash(), chain.Validators)
		if err != nil {
			t.Fatal(err)
		}
		node = in.(wallet.CompactChain)
	}
	return w, copyWallet(t, w), chain, node
}

// TestWalletSyncResumes: a sync over the API killed after 300 of 600 blocks
// resumes from its last save (block 256) and ends in exactly the state of a
// sync that was never interrupted, having found every note once; the same
// for a validator set's chain, whose saves are certified.
func TestWalletSyncResumes(t *testing.T) {
	for _, certified := range []bool{false, true} {
		t.Run(map[bool]string{false: "signed", true: "certified"}[certified], func(t *testing.T) {
			testWalletSyncResumes(t, certified)
		})
	}
}

func testWalletSyncResumes(t *testing.T, certified bool) {
	newChain := chainMaker(nodetest.NewShieldedChain)
	if certified {
		newChain = nodetest.NewCertifiedShieldedChain
	}
	w, twin, chain, node := twoWallets(t, newChain, 600, 2, 7)
	if _, err := w.Sync(killAfter(node, 300), nil); !errors.Is(err, errKilled) {
		t.Fatalf("interrupted sync: %v", err)
	}
	again, err := wallet.Open(w.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.State.Next != 257 {
		t.Fatalf("after the kill the wallet resumes at block %d, want 257 (saved every 256)", again.State.Next)
	}
	rep, err := again.Sync(node, nil)
	if err != nil || rep.From != 257 || rep.To != 600 {
		t.Fatalf("resumed sync: %+v %v", rep, err)
	}
	if _, err := twin.Sync(node, nil); err != nil {
		t.Fatal(err)
	}
	a, _ := again.State.MarshalBinary()
	b, _ := twin.State.MarshalBinary()
	if string(a) != string(b) {
		t.Fatal("the resumed wallet's state differs from the uninterrupted one's")
	}
	var total uint64
	for _, bal := range again.Balances() {
		total += bal.Value
	}
	if int(total) != chain.Mine || chain.Mine < 100 {
		t.Fatalf("balance %d, the chain holds %d notes of the wallet", total, chain.Mine)
	}
}

// TestParallelSyncMatchesSequential: a sync that tries outputs on four
// goroutines ends in exactly the state (notes, positions, witnesses, tree)
// of one that tries them on one, and finds every note of the wallet, in a
// chain of version-2 bundles and in one of both versions alternately.
func TestParallelSyncMatchesSequential(t *testing.T) {
	for _, versions := range [][]byte{{shielded.BundleV2}, {shielded.BundleV1, shielded.BundleV2}} {
		t.Run(fmt.Sprint(versions), func(t *testing.T) {
			w, seq, chain, node := twoWallets(t, nodetest.NewShieldedChain, 300, 5, 3, versions...)
			w.Workers, seq.Workers = 4, 1
			for _, wl := range []*wallet.Wallet{w, seq} {
				if rep, err := wl.Sync(node, nil); err != nil || rep.Found != chain.Mine {
					t.Fatalf("sync on %d goroutines: %+v %v, the chain holds %d notes of the wallet", wl.Workers, rep, err, chain.Mine)
				}
			}
			a, _ := w.State.MarshalBinary()
			b, _ := seq.State.MarshalBinary()
			if string(a) != string(b) {
				t.Fatal("the parallel sync's state differs from the sequential one's")
			}
		})
	}
}

// A validator set's node whose genesis block is not the trust entry's is
// refused before the wallet records anything.
func TestCertifiedWalletSyncRefusesAnotherGenesis(t *testing.T) {
	w, err := wallet.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	chain := nodetest.NewCertifiedShieldedChain(t, w.Keys.Address(), 2, 1, 3)
	c, _ := client.New(chain.URL)
	ctx := context.Background()
	in, err := c.TrustedWalletInstance(ctx, walletInstance(t, c, ctx).ID(), [32]byte{7}, chain.Validators)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Sync(in, nil); err == nil || !strings.Contains(err.Error(), "its genesis block hashes to ") || !strings.Contains(err.Error(), ", the trust entry names 0700000000000000") || w.State.Next != 0 {
		t.Fatalf("another genesis: %v, next %d", err, w.State.Next)
	}
}

// A node that lies is caught: a compact block whose signature does not
// verify, and one that does not follow the last block seen.
func TestWalletSyncRefusesForgedBlocks(t *testing.T) {
	w, err := wallet.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	chain := nodetest.NewShieldedChain(t, w.Keys.Address(), 4, 1, 3)
	chain.Blocks[2].Manifest[len(chain.Blocks[2].Manifest)-1] ^= 1 // block 3's signature
	c, _ := client.New(chain.URL)
	rep, err := w.Sync(walletInstance(t, c, context.Background()), nil)
	if err == nil || w.State.Next != 3 {
		t.Fatalf("a forged block 3: %+v %v, next %d", rep, err, w.State.Next)
	}
}

// BenchmarkWalletSync syncs a fresh wallet over the API from a chain of
// 2048 blocks of 16 shielded transactions (32 outputs each, one in 1024 the
// wallet's), of version-2 bundles (one X25519 per transaction) and of
// version-1 bundles (one per output): blocks per second and CPU per block,
// everything checked.
func BenchmarkWalletSync(b *testing.B) {
	for _, v := range []byte{shielded.BundleV2, shielded.BundleV1} {
		b.Run(fmt.Sprintf("bundle=v%d", v), func(b *testing.B) { benchmarkWalletSync(b, nodetest.NewShieldedChain, v) })
	}
}

// BenchmarkWalletSyncCertified is BenchmarkWalletSync for a validator
// set's chain of version-2 bundles: unsigned blocks, a certificate checked
// before each save.
func BenchmarkWalletSyncCertified(b *testing.B) {
	benchmarkWalletSync(b, nodetest.NewCertifiedShieldedChain, shielded.BundleV2)
}

// chainMaker makes and serves a shielded chain (nodetest.NewShieldedChain
// or nodetest.NewCertifiedShieldedChain).
type chainMaker func(t testing.TB, addr wallet.Address, n, txs, mineEvery int, versions ...byte) *nodetest.ShieldedChain

func benchmarkWalletSync(b *testing.B, newChain chainMaker, version byte) {
	w, err := wallet.Create(filepath.Join(b.TempDir(), "w"))
	if err != nil {
		b.Fatal(err)
	}
	chain := newChain(b, w.Keys.Address(), 2048, 16, 1024, version)
	c, err := client.New(chain.URL)
	if err != nil {
		b.Fatal(err)
	}
	var node wallet.Chain = walletInstance(b, c, context.Background())
	if chain.Validators != nil {
		if node, err = c.TrustedWalletInstance(context.Background(), node.ID(), chain.GenesisHash(), chain.Validators); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		fresh := copyWallet(b, w)
		if _, err := fresh.Sync(node, nil); err != nil {
			b.Fatal(err)
		}
	}
	blocks := float64(b.N * len(chain.Blocks))
	b.ReportMetric(blocks/b.Elapsed().Seconds(), "blocks/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/blocks, "cpu-µs/block")
}

// cpuTime is the CPU time the process has used (the node's side of the
// stream included): steadier than wall time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
