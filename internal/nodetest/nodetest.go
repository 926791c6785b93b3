// Package nodetest builds what the node's tests, load and soak runs work
// on: an instance with the real token and sig applications of examples/,
// token notes minted to many keys, transfers between them made with the
// real transfer code, and a node serving an instance on a loopback port.
package nodetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/serve"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Repo returns the repository's root folder.
func Repo() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Example reads a file of examples/.
func Example(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Repo(), "examples", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Token is an instance with the token and sig applications deployed and an
// issuer of GOLD.
type Token struct {
	Home      string
	In        *fractal.Instance // open until Close
	App, Sig  notes.Hash
	Issuer    keys.PrivateKey
	lookup    []byte
	transfer  []byte
	mintNonce uint64
}

// NewToken creates an instance in a new folder of t's and deploys the
// token and sig applications on it.
func NewToken(t testing.TB) *Token {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	in, err := fractal.Init(home, fractal.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tk := &Token{Home: home, In: in, Issuer: Key(t), lookup: Example(t, "token/lookup.lua"), transfer: Example(t, "token/transfer.lua")}
	if tk.App, err = in.Deploy(Example(t, "token/token.lua")); err == nil {
		tk.Sig, err = in.Deploy(Example(t, "sig/sig.lua"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// SetConfig sets fields of the closed instance's config.json (by their
// JSON names) before a node opens it.
func (tk *Token) SetConfig(t testing.TB, fields map[string]any) {
	t.Helper()
	path := filepath.Join(tk.Home, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		cfg[k] = v
	}
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Close closes the instance (before a node opens it).
func (tk *Token) Close(t testing.TB) {
	t.Helper()
	if err := tk.In.Close(); err != nil {
		t.Fatal(err)
	}
	tk.In = nil
}

// Key returns a fresh key.
func Key(t testing.TB) keys.PrivateKey {
	t.Helper()
	k, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Keys returns n fresh keys.
func Keys(t testing.TB, n int) []keys.PrivateKey {
	out := make([]keys.PrivateKey, n)
	for i := range out {
		out[i] = Key(t)
	}
	return out
}

// Note is a token note a key holds: where it lives and its value.
type Note struct {
	Key   notes.StateKey
	Value string
}

// Gold is the value of a GOLD note of amount.
func (tk *Token) Gold(amount int) string {
	return tk.Issuer.Public().String() + ":GOLD:" + strconv.Itoa(amount)
}

// MintTo mints a GOLD note of amount to each owner (at "<owner>:seed"),
// many per transaction, on the open instance, and returns them in owners'
// order.
func (tk *Token) MintTo(t testing.TB, owners []keys.PublicKey, amount int) []Note {
	t.Helper()
	out := make([]Note, len(owners))
	for i, o := range owners {
		out[i] = Note{Key: notes.StateKey{Application: tk.App, Owner: tk.Sig, Key: []byte(o.String() + ":seed")}, Value: tk.Gold(amount)}
	}
	for _, tx := range tk.MintTxs(t, out) {
		if _, err := tk.In.Submit(tx); err != nil {
			t.Fatal(err)
		}
	}
	for {
		s, err := tk.In.Seal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Receipts) == 0 {
			return out
		}
		for _, rc := range s.Receipts {
			if err := rc.Err(); err != nil {
				t.Fatalf("mint: %v", err)
			}
		}
	}
}

// MintTxs returns the transactions, signed by the issuer, that mint ns
// (notes of this token's application and sig owner), many per transaction.
func (tk *Token) MintTxs(t testing.TB, ns []Note) []*phases.Tx {
	t.Helper()
	const perTx = 128 // within the code size limit
	var out []*phases.Tx
	for start := 0; start < len(ns); start += perTx {
		var lua []string
		for _, n := range ns[start:min(start+perTx, len(ns))] {
			lua = append(lua, fmt.Sprintf("{application=%q, owner=%q, key=%q, value=%q}",
				hex.EncodeToString(n.Key.Application[:]), hex.EncodeToString(n.Key.Owner[:]), n.Key.Key, n.Value))
		}
		tk.mintNonce++
		out = append(out, Sign(t, &phases.Tx{
			Nonce: tk.mintNonce, GasLimit: fractal.DefaultMaxTxGas,
			Write:       notes.ConstraintSet{notes.AnyPattern().WithProvenance(nil).WithApplication(tk.App).WithOwner(tk.Sig)},
			Calculation: []byte("return {" + strings.Join(lua, ", ") + "}"),
		}, tk.Issuer))
	}
	return out
}

// Senders returns n fresh keys, each holding a GOLD note of amount (minted
// on the open instance), and those notes.
func (tk *Token) Senders(t testing.TB, n, amount int) ([]keys.PrivateKey, []Note) {
	t.Helper()
	ks := Keys(t, n)
	pubs := make([]keys.PublicKey, n)
	for i, k := range ks {
		pubs[i] = k.Public()
	}
	return ks, tk.MintTo(t, pubs, amount)
}

// Sign makes keys the transaction's signers and signs it with each.
func Sign(t testing.TB, tx *phases.Tx, ks ...keys.PrivateKey) *phases.Tx {
	t.Helper()
	tx.Signers = nil
	for _, k := range ks {
		tx.Signers = append(tx.Signers, k.Public())
	}
	for _, k := range ks {
		if err := tx.Sign(rand.Reader, k); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

// Transfer is a signed transfer of amount from the note in (held by from)
// to the key to, made with examples/token's lookup and transfer code, and
// the change note it leaves from (the input of from's next transfer).
func (tk *Token) Transfer(t testing.TB, from keys.PrivateKey, in Note, to keys.PublicKey, amount int) (*phases.Tx, Note) {
	t.Helper()
	total, err := strconv.Atoi(in.Value[strings.LastIndexByte(in.Value, ':')+1:])
	if err != nil || total <= amount {
		t.Fatalf("transfer %d from a note of %q", amount, in.Value)
	}
	d := sha256.Sum256([]byte(string(in.Key.Key) + "\x00" + in.Value))
	tag := hex.EncodeToString(d[:8])
	out := func(owner keys.PublicKey, n string) notes.StateKey {
		return notes.StateKey{Application: tk.App, Owner: tk.Sig, Key: []byte(owner.String() + ":" + tag + ":" + n)}
	}
	change := Note{Key: out(from.Public(), "2"), Value: tk.Gold(total - amount)}
	tx := &phases.Tx{
		GasLimit: TransferGas,
		Read:     notes.ConstraintSet{notes.ExactPattern(in.Key)},
		Write:    notes.ConstraintSet{notes.ExactPattern(in.Key), notes.ExactPattern(out(to, "1")), notes.ExactPattern(change.Key)},
		Lookup:   tk.lookup, Calculation: tk.transfer,
		Extradata: []byte(fmt.Sprintf("%s %d %s", to, amount, in.Key)),
	}
	return Sign(t, tx, from), change
}

// TransferGas is the gas limit of Transfer and LeanTransfer: about twenty
// times what either uses (under 3,000 gas), as a wallet asks after a
// simulation. The default max_block_gas (100,000,000) holds more of them
// than max_block_txs, so blocks are cut by count, not by gas.
const TransferGas = 50_000

// Lean transfer code: one unit from the input note (its state key is the
// last field of extradata "<to> <tag> <input key>") to the key to, the
// change back to the signer, under keys tagged by the client, so that the
// next transfer's input is known in advance. The token and sig predicates
// check it as any transfer; it costs less Lua than examples/token's
// transfer.lua (no hash of the input to derive the tag).
const (
	leanLookup = `return { string.match(extradata, "^%S+ %S+ (%S+)$") }`
	leanCalc   = `
local to, tag = string.match(extradata, "^(%S+) (%S+) ")
local n = inputs[1]
local token, amount = string.match(n.value, "^(.*:)(%d+)$")
return {
  {application = n.application, owner = n.owner, key = to .. ":" .. tag .. ":1", value = token .. "1"},
  {application = n.application, owner = n.owner, key = signers[1] .. ":" .. tag .. ":2", value = token .. (tonumber(amount) - 1)},
}`
)

// LeanTransfer is a signed transfer of one unit from the note in (held by
// from) to to with the lean transfer code, its outputs tagged tag, and the
// change note it leaves from.
func (tk *Token) LeanTransfer(t testing.TB, from keys.PrivateKey, in Note, to keys.PublicKey, tag string) (*phases.Tx, Note) {
	t.Helper()
	total, err := strconv.Atoi(in.Value[strings.LastIndexByte(in.Value, ':')+1:])
	if err != nil || total <= 1 {
		t.Fatalf("transfer 1 from a note of %q", in.Value)
	}
	out := func(owner keys.PublicKey, n string) notes.StateKey {
		return notes.StateKey{Application: tk.App, Owner: tk.Sig, Key: []byte(owner.String() + ":" + tag + ":" + n)}
	}
	change := Note{Key: out(from.Public(), "2"), Value: tk.Gold(total - 1)}
	tx := &phases.Tx{
		GasLimit: TransferGas,
		Read:     notes.ConstraintSet{notes.ExactPattern(in.Key)},
		Write:    notes.ConstraintSet{notes.ExactPattern(in.Key), notes.ExactPattern(out(to, "1")), notes.ExactPattern(change.Key)},
		Lookup:   []byte(leanLookup), Calculation: []byte(leanCalc),
		Extradata: []byte(fmt.Sprintf("%s %s %s", to, tag, in.Key)),
	}
	return Sign(t, tx, from), change
}

// Config is a node configuration for tests: a free loopback port and a
// short block time.
func Config() node.Config {
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.BlockTime = node.Duration(50 * time.Millisecond)
	return cfg
}

// Node is a node run in this process.
type Node struct {
	URL    string
	Client *client.Client
	stop   context.CancelFunc
	done   chan error
}

// Start runs a node on home until Stop or the end of the test.
func Start(t testing.TB, home string, cfg node.Config) *Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{stop: cancel, done: make(chan error, 1)}
	started := make(chan string, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		level := slog.LevelWarn
		if os.Getenv("FRACTAL_NODE_LOG") != "" {
			level = slog.LevelInfo
		}
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	go func() {
		n.done <- serve.Run(ctx, home, serve.Options{Config: cfg, Log: log, Started: func(url string) { started <- url }})
	}()
	select {
	case n.URL = <-started:
	case err := <-n.done:
		t.Fatalf("node: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start in 30s")
	}
	var err error
	if n.Client, err = client.New(n.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(t) })
	return n
}

// Stop stops the node (once) and fails the test if it did not stop cleanly.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	if n.stop == nil {
		return
	}
	n.stop()
	n.stop = nil
	if err := <-n.done; err != nil {
		t.Errorf("node stopped with %v", err)
	}
}

// WaitFor calls ok every 20 ms until it holds, and fails the test naming
// what it waited for when it does not hold within the given time.
func WaitFor(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
