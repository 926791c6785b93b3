package wallet_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
	"github.com/fractalvm/fractal/zk"
)

// One development setup serves every test of the package (it takes ~10 s).
var (
	devOnce sync.Once
	devDir  string
	devKeys *zk.Keys
	devErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if devDir != "" {
		os.RemoveAll(devDir)
	}
	os.Exit(code)
}

// zkKeys returns the shared development keys and the cache folder holding them.
func zkKeys(t testing.TB) (*zk.Keys, string) {
	t.Helper()
	devOnce.Do(func() {
		if devDir, devErr = os.MkdirTemp("", "fractal-shielded-zk-*"); devErr != nil {
			return
		}
		cc, err := shielded.Compiled()
		if err != nil {
			devErr = err
			return
		}
		devKeys, devErr = zk.Cache{Dir: devDir}.DevSetup(cc)
	})
	if devErr != nil {
		t.Fatal(devErr)
	}
	return devKeys, devDir
}

// world is an instance with the token application, the sig owner
// predicate and the pool predicate deployed, an issuer and two people.
type world struct {
	t                  testing.TB
	home               string
	in                 *fractal.Instance
	pk                 *zk.Keys
	app, sig           notes.Hash
	issuer, alice, bob keys.PrivateKey
	tok                wallet.Token
	nonce              uint64
}

func newWorld(t testing.TB) *world {
	t.Helper()
	pk, dir := zkKeys(t)
	home := filepath.Join(t.TempDir(), "inst")
	// The per-key limit (decision 142) is off: the tests put several
	// transactions of one wallet in one block (a double spend in one block).
	cfg := fractal.DefaultConfig()
	cfg.PerKeyLimit = false
	in, err := fractal.Init(home, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, home: home, in: in, pk: pk}
	t.Cleanup(func() { w.in.Close() })
	if err := os.Symlink(dir, filepath.Join(home, "zk")); err != nil {
		t.Fatal(err)
	}
	w.app = w.deploy(read(t, "../../examples/token/token.lua"))
	w.sig = w.deploy(read(t, "../../examples/sig/sig.lua"))
	if h := w.deploy(shielded.PoolPredicate); h != shielded.PoolOwner {
		t.Fatalf("pool predicate deployed as %x, want %x", h, shielded.PoolOwner)
	}
	w.issuer, w.alice, w.bob = genKey(t), genKey(t), genKey(t)
	w.tok = wallet.Token{App: w.app, Name: w.issuer.Public().String() + ":TOK"}
	return w
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func genKey(t testing.TB) keys.PrivateKey {
	t.Helper()
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (w *world) deploy(src []byte) notes.Hash {
	w.t.Helper()
	h, err := w.in.Deploy(src)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

// mint has the issuer mint amount TOK to key's owner.
func (w *world) mint(to keys.PublicKey, amount uint64) {
	w.t.Helper()
	w.nonce++
	tx := &phases.Tx{Nonce: w.nonce, GasLimit: 1_000_000, Calculation: read(w.t, "../../examples/token/mint.lua"),
		Write:     notes.ConstraintSet{notes.PatternFromKeyPrefix(notes.StateKey{Application: w.app, Owner: w.sig, Key: []byte(to.String() + ":")})},
		Extradata: fmt.Appendf(nil, "%x %x %s TOK %d", w.app, w.sig, to, amount), Signers: []keys.PublicKey{w.issuer.Public()}}
	if err := tx.Sign(rand.Reader, w.issuer); err != nil {
		w.t.Fatal(err)
	}
	w.mustAccept(tx)
}

// seal submits txs and seals one block, returning the receipts.
func (w *world) seal(txs ...*phases.Tx) []*phases.Receipt {
	w.t.Helper()
	for i, err := range w.in.SubmitAll(txs) {
		if err != nil {
			w.t.Fatalf("submit %d: %v", i, err)
		}
	}
	s, err := w.in.Seal(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return s.Receipts
}

func (w *world) mustAccept(txs ...*phases.Tx) {
	w.t.Helper()
	for i, rc := range w.seal(txs...) {
		if rc.Status != phases.Accepted {
			w.t.Fatalf("transaction %d refused: %s: %s", i, rc.Phase, rc.Reason)
		}
	}
}

// tokenNotes returns the live TOK notes whose key starts with owner's key.
func (w *world) tokenNotes(owner keys.PublicKey) []*notes.Note {
	w.t.Helper()
	ns, err := w.in.Notes(notes.PatternFromKeyPrefix(notes.StateKey{Application: w.app, Owner: w.sig, Key: []byte(owner.String() + ":")}))
	if err != nil {
		w.t.Fatal(err)
	}
	return ns
}

// supply returns the transparent TOK outside the pool and the pool note's
// amount.
func (w *world) supply() (transparent, pool uint64) {
	w.t.Helper()
	ns, err := w.in.Notes(notes.AnyPattern().WithProvenance(nil).WithApplication(w.app))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, n := range ns {
		f := strings.Split(string(n.Value), ":")
		v, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			w.t.Fatal(err)
		}
		if n.Owner == shielded.PoolOwner {
			pool += v
		} else {
			transparent += v
		}
	}
	return transparent, pool
}

// newWallet creates a wallet in a temporary folder.
func (w *world) newWallet() *wallet.Wallet {
	w.t.Helper()
	wl, err := wallet.Create(filepath.Join(w.t.TempDir(), "wallet"))
	if err != nil {
		w.t.Fatal(err)
	}
	return wl
}

func (w *world) sync(wl *wallet.Wallet) *wallet.SyncReport {
	w.t.Helper()
	rep, err := wl.Sync(w.in, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return rep
}

// balance is the wallet's unspent TOK.
func (w *world) balance(wl *wallet.Wallet) uint64 {
	for _, b := range wl.Balances() {
		if b.Name == fmt.Sprintf("%x/%s", w.app, w.tok.Name) {
			return b.Value
		}
	}
	return 0
}

// dump returns every key and value in the instance's store; it closes and
// reopens the instance to read the store directly.
func (w *world) dump() map[string]string {
	w.t.Helper()
	if err := w.in.Close(); err != nil {
		w.t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(w.home, "db")).WithLogger(nil))
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = string(v)
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	db.Close()
	if w.in, err = fractal.Open(w.home); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// sameStore fails unless two dumps are equal, naming a differing key.
func sameStore(t testing.TB, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if a, ok := after[k]; !ok || a != v {
			t.Fatalf("store changed at key %q", k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Fatalf("store gained key %q", k)
		}
	}
}

// forgeHead rewrites the head block with f and re-signs it with the
// executor key, as a dishonest executor could (storage layout:
// docs/formats/instance.md).
func (w *world) forgeHead(f func(*chain.Block)) {
	w.t.Helper()
	head, err := w.in.Head()
	if err != nil {
		w.t.Fatal(err)
	}
	f(head)
	exec, err := keys.LoadKeyFile(filepath.Join(w.home, "executor.key"))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := chain.SignBlock(context.Background(), head, keys.NewKeySigner(exec)); err != nil {
		w.t.Fatal(err)
	}
	if err := w.in.Close(); err != nil {
		w.t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(w.home, "db")).WithLogger(nil))
	if err != nil {
		w.t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		return txn.Set(binary.BigEndian.AppendUint64([]byte{'b'}, head.Height), head.Encode())
	})
	db.Close()
	if err != nil {
		w.t.Fatal(err)
	}
	// A dishonest executor ignores its guard, which records the block it
	// signed first and would refuse the store (decision 095).
	if err := os.Remove(filepath.Join(w.home, "guard.json")); err != nil {
		w.t.Fatal(err)
	}
	if w.in, err = fractal.Open(w.home); err != nil {
		w.t.Fatal(err)
	}
}
