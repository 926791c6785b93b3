package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cometbft/cometbft/types"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/relay"
	"github.com/fractalvm/fractal/fractal/node/serve"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/fractal/validator/gateway"
	"github.com/fractalvm/fractal/internal/logbuf"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// freeBase returns a base port whose devnet ports are free now.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	base, err := validator.FreeDevnetBase(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// running is a node served on a home as fractal node serves it.
type running struct {
	url  string
	c    *client.Client
	log  *logbuf.Buffer
	stop func() error
}

// serveHome runs serve.Run on home (its node-config.json's address, or a
// free loopback port) until stopped; the test's end stops it.
func serveHome(t *testing.T, home string) *running {
	t.Helper()
	cfg, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if _, statErr := os.Stat(filepath.Join(home, node.ConfigFile)); statErr != nil {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.BlockTime = node.Duration(100 * time.Millisecond)
	r := &running{log: &logbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	urls, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, home, serve.Options{Config: cfg, Log: slog.New(slog.NewTextHandler(r.log, nil)),
			Started: func(url string) { urls <- url }, Other: gateway.Opener(validator.Options{Log: r.log})})
	}()
	select {
	case r.url = <-urls:
	case err := <-done:
		cancel()
		t.Fatalf("serve %s: %v\n%s", home, err, tail(r.log.String(), 3000))
	case <-time.After(60 * time.Second):
		t.Fatalf("serve %s: not serving after a minute\n%s", home, tail(r.log.String(), 3000))
	}
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(60 * time.Second):
				stopErr = errors.New("not stopped after a minute")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stop %s: %v", home, err)
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", home, tail(r.log.String(), 3000))
		}
	})
	if r.c, err = client.New(r.url); err != nil {
		t.Fatal(err)
	}
	return r
}

// newWorld returns a world with a fresh key, and the source of its
// predicate (to deploy; w.app is its hash once deployed).
func newWorld(t *testing.T) (*world, []byte) {
	t.Helper()
	alice, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../testdata/allow.lua")
	if err != nil {
		t.Fatal(err)
	}
	return &world{alice: alice}, src
}

// world signs the test's transactions: notes under one application whose
// predicate allows everything.
type world struct {
	alice keys.PrivateKey
	app   notes.Hash
	nonce uint64
}

func (w *world) pattern() notes.Pattern {
	return notes.AnyPattern().WithApplication(w.app).WithOwner(w.app)
}

func (w *world) key(k string) notes.StateKey {
	return notes.StateKey{Application: w.app, Owner: w.app, Key: []byte(k)}
}

func (w *world) sign(t *testing.T, tx *phases.Tx) *phases.Tx {
	t.Helper()
	w.nonce++
	tx.Nonce, tx.GasLimit, tx.Signers = w.nonce, 1_000_000, []keys.PublicKey{w.alice.Public()}
	if err := tx.Sign(rand.Reader, w.alice); err != nil {
		t.Fatal(err)
	}
	return tx
}

// mint creates the note key = value.
func (w *world) mint(t *testing.T, key, value string) *phases.Tx {
	h := hex.EncodeToString(w.app[:])
	return w.sign(t, &phases.Tx{Write: notes.ConstraintSet{w.pattern().WithProvenance(nil)},
		Calculation: fmt.Appendf(nil, "return {{provenance={}, application=%q, owner=%q, key=%q, value=%q}}", h, h, key, value)})
}

// export spends the note at key and exports it whole to instance to.
func (w *world) export(t *testing.T, key notes.StateKey, to [32]byte) *phases.Tx {
	return w.sign(t, &phases.Tx{
		Read: notes.ConstraintSet{notes.ExactPattern(key)}, Write: notes.ConstraintSet{notes.ExactPattern(key)},
		Lookup:      fmt.Appendf(nil, "return {%q}", key.String()),
		Calculation: fmt.Appendf(nil, "return {}, {{to = %q, note = inputs[1]}}", hex.EncodeToString(to[:]))})
}

// committed submits tx through c, waiting, and fails unless it committed.
func committed(t *testing.T, ctx context.Context, c *client.Client, tx *phases.Tx) *client.Outcome {
	t.Helper()
	out, err := c.Submit(ctx, tx, true)
	if err != nil {
		t.Fatalf("submit to %s: %v", c.URL, err)
	}
	if out.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED || out.Receipt.Status != phases.Accepted {
		t.Fatalf("submit to %s: %v %+v", c.URL, out.State, out.Receipt)
	}
	return out
}

// TestAPIOnValidators: four validators, each run as fractal node runs a
// validator's home (CometBFT plus the fractal.v1 API), beside a solo node.
// Code deployed and a mint submitted through one validator's API commit
// with their receipts, which another validator's Watch stream shows; a
// refused transaction gets the solo node's code and reason; a note's proof
// from a third validator's API checks offline against the genesis
// validator set alone; relay moves a note from the solo node to the
// validators and back over the two APIs; compact blocks and the explorer
// are served; without a threshold key SubmitEncrypted is a failed
// precondition, and SubmitShares is unimplemented. Stopped, one home's
// certified manifests import into another home, and tampered ones are
// refused with their reasons.
func TestAPIOnValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, src := newWorld(t)
	alice := w.alice
	dir := t.TempDir()
	solo, err := fractal.Init(filepath.Join(dir, "solo"), fractal.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	soloEntry, err := solo.TrustEntry()
	if err != nil {
		t.Fatal(err)
	}
	dn, err := validator.WriteDevnet(filepath.Join(dir, "net"), validator.DevnetOptions{
		Validators: 4, BasePort: freeBase(t, 4), Instance: fractal.DefaultConfig(),
		TimeoutPropose: time.Second, TimeoutCommit: 300 * time.Millisecond, Trust: []fractal.Peer{soloEntry},
	})
	if err != nil {
		t.Fatal(err)
	}
	trust := dn.Trust
	if _, err := solo.AddPeer(trust); err != nil {
		t.Fatal(err)
	}
	if w.app, err = solo.Deploy(src); err != nil {
		t.Fatal(err)
	}
	if err := solo.Close(); err != nil {
		t.Fatal(err)
	}
	s := serveHome(t, filepath.Join(dir, "solo"))
	var vs []*running
	for i, home := range dn.Homes {
		vs = append(vs, serveHome(t, home))
		if vs[i].url != dn.API[i] {
			t.Fatalf("v%d serves at %s, devnet wrote %s", i, vs[i].url, dn.API[i])
		}
	}

	// Code goes in through v0's API and is there once its block committed.
	if h, err := vs[0].c.Deploy(ctx, src); err != nil || h != w.app {
		t.Fatalf("deploy through v0: %x %v", h, err)
	}

	// v3's Watch stream, from the next block on.
	head, err := vs[3].c.Block(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *v1.WatchResponse, 256)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go vs[3].c.Watch(wctx, &v1.WatchRequest{StartHeight: ptr(head.Height + 1), Receipts: true,
		NotePatterns: []string{w.pattern().String()}}, func(ev *v1.WatchResponse) error { events <- ev; return nil })

	// A mint through v1: its receipt, then the same on v3's stream.
	mint := w.mint(t, "coin", "1")
	out := committed(t, ctx, vs[1].c, mint)
	if out.ID != mint.ID() || out.Height == 0 {
		t.Fatalf("mint: %+v", out)
	}
	var sawReceipt, sawNote bool
	for !sawReceipt || !sawNote {
		select {
		case ev := <-events:
			switch e := ev.Event.(type) {
			case *v1.WatchResponse_Receipt:
				sawReceipt = sawReceipt || e.Receipt.TxId == wire.Hex(mint.ID()) && ev.Height == out.Height
			case *v1.WatchResponse_NoteCreated:
				sawNote = sawNote || e.NoteCreated.Note != nil && string(e.NoteCreated.Note.Value) == "1" && ev.Height == out.Height
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("v3's Watch: receipt %v, note %v after 30 s", sawReceipt, sawNote)
		}
	}

	// v2 commits the mint's block in its turn.
	for try := 0; ; try++ {
		got, err := vs[2].c.Receipt(ctx, mint.ID())
		if err == nil && got.State == v1.TransactionState_TRANSACTION_STATE_COMMITTED {
			break
		}
		if try == 300 {
			t.Fatalf("v2 did not commit the mint: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// v2's seal metrics count the block it committed, as a solo node's
	// count the blocks it seals (the deploy made no Fractal block).
	resp, err := http.Get(vs[2].url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nfractal_blocks_total 1\n",
		fmt.Sprintf("\nfractal_head_height %d\n", out.Height),
		`fractal_transactions_total{phase="none",status="accepted"} 1` + "\n",
		"\nfractal_seal_duration_seconds_count 1\n",
		"\nfractal_block_gas_count 1\n",
		"\nfractal_block_transactions_sum 1\n",
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("v2's /metrics lacks %q", strings.TrimSpace(want))
		}
	}

	// A refused transaction: the solo node's code and reason.
	forged := *w.mint(t, "forged", "1")
	forged.Nonce++ // the signature no longer covers it
	unsigned := *w.mint(t, "unsigned", "1")
	unsigned.Signatures = nil
	for _, tc := range []struct {
		name string
		tx   *phases.Tx
		code connect.Code
	}{{"bad signature", &forged, connect.CodeInvalidArgument}, {"unsigned", &unsigned, connect.CodeInvalidArgument}} {
		_, soloErr := s.c.Submit(ctx, tc.tx, true)
		_, valErr := vs[2].c.Submit(ctx, tc.tx, true)
		var se, ve *client.Error
		if !errors.As(soloErr, &se) || !errors.As(valErr, &ve) || se.Code != tc.code || ve.Code != se.Code || ve.Msg != strings.Replace(se.Msg, s.url, vs[2].url, 1) {
			t.Fatalf("%s: solo %v, validator %v", tc.name, soloErr, valErr)
		}
	}
	_, err = vs[2].c.Submit(ctx, mint, true)
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Code != connect.CodeAlreadyExists || !strings.Contains(ce.Msg, fmt.Sprintf("was already executed in block %d", out.Height)) {
		t.Fatalf("replay: %v", err)
	}

	// A batch through v2: each transaction as SubmitTransaction would
	// answer it on the validator, in order; the good one commits.
	fresh := w.mint(t, "batch", "2")
	batch, err := vs[2].c.SubmitBatch(ctx, []*phases.Tx{fresh, &forged, mint, fresh}, true)
	if err != nil {
		t.Fatal(err)
	}
	if r := batch[0]; r.Err != nil || r.ID != fresh.ID() || r.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED || r.Receipt.Status != phases.Accepted {
		t.Fatalf("batch: the good mint: %+v %v", r.Outcome, r.Err)
	}
	for i, code := range map[int]connect.Code{1: connect.CodeInvalidArgument, 2: connect.CodeAlreadyExists, 3: connect.CodeAlreadyExists} {
		if ce := (*client.Error)(nil); !errors.As(batch[i].Err, &ce) || ce.Code != code {
			t.Fatalf("batch: result %d: %v, want %v", i, batch[i].Err, code)
		}
	}

	// A certified proof from v2's API, checked with the genesis set alone.
	qp, err := vs[2].c.Prove(ctx, w.key("coin"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := chain.CheckQueryProofBy(qp, trust.Validators, &trust.ID)
	if err != nil || st.Note == nil || string(st.Note.Value) != "1" {
		t.Fatalf("proof: %+v %v", st, err)
	}
	bare := *qp
	bare.Certificate = nil
	if _, err := chain.CheckQueryProofBy(&bare, trust.Validators, &trust.ID); err == nil {
		t.Fatal("a proof without its certificate checked")
	}

	// Solo → validators → solo, over the APIs only.
	committed(t, ctx, s.c, w.mint(t, "gold", "7"))
	committed(t, ctx, s.c, w.export(t, w.key("gold"), trust.ID))
	res, err := relay.New(s.c, vs[1].c, alice, slog.New(slog.NewTextHandler(io.Discard, nil))).Once(ctx)
	if err != nil || len(res.Imported) != 1 || len(res.Refused) != 0 {
		t.Fatalf("relay to the validators: %+v %v", res, err)
	}
	there := importedNote(t, ctx, vs[3].c, w, "7", soloEntry.ID)
	committed(t, ctx, vs[2].c, w.export(t, there.StateKey(), soloEntry.ID))
	res, err = relay.New(vs[2].c, s.c, alice, slog.New(slog.NewTextHandler(io.Discard, nil))).Once(ctx)
	if err != nil || len(res.Imported) != 1 || len(res.Refused) != 0 {
		t.Fatalf("relay back: %+v %v", res, err)
	}
	importedNote(t, ctx, s.c, w, "7", trust.ID)

	// Compact blocks for wallets, from genesis to the head.
	vhead, err := vs[0].c.Block(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := vs[0].c.API.CompactBlocks(ctx, connect.NewRequest(&v1.CompactBlocksRequest{EndHeight: ptr(vhead.Height)}))
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	for ; stream.Receive(); n++ {
		if got := stream.Msg().CompactBlock.Height; got != n {
			t.Fatalf("compact block %d at place %d", got, n)
		}
	}
	if stream.Err() != nil || n != vhead.Height+1 {
		t.Fatalf("compact blocks: %d of %d, %v", n, vhead.Height+1, stream.Err())
	}

	// The explorer, from the same service: the trust file's solo instance.
	resp, err = http.Get(vs[0].url + "/exports")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(page), wire.Hex(soloEntry.ID)) {
		t.Fatalf("explorer on v0: %d %v", resp.StatusCode, err)
	}

	// Without a threshold key the encrypted mempool is closed; shares are
	// never taken over the API (they ride in vote extensions).
	_, err = vs[1].c.API.SubmitEncrypted(ctx, connect.NewRequest(&v1.SubmitEncryptedRequest{Payload: []byte{1}}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.HasSuffix(err.Error(), ": this validator set has no threshold key: its encrypted mempool is closed (fractal devnet --encrypted makes one)") {
		t.Fatalf("submit encrypted: %v", err)
	}
	_, err = vs[1].c.API.SubmitShares(ctx, connect.NewRequest(&v1.SubmitSharesRequest{Shares: []byte{1}}))
	if connect.CodeOf(err) != connect.CodeUnimplemented || !strings.HasSuffix(err.Error(), "the API takes no shares on a validator set: the validators' shares ride in their vote extensions (decision 161)") {
		t.Fatalf("submit shares: %v", err)
	}

	// Stopped, v0's certified manifests import into v1's home.
	stopWatch()
	for i, v := range vs {
		if err := v.stop(); err != nil {
			t.Fatalf("stop v%d: %v", i, err)
		}
	}
	certifiedImports(t, dn.Homes[0], dn.Homes[1])
}

// importedNote waits for the note of value value imported from instance
// from to be listed by c, and returns it.
func importedNote(t *testing.T, ctx context.Context, c *client.Client, w *world, value string, from [32]byte) *notes.Note {
	t.Helper()
	for try := 0; try < 100; try++ {
		list, err := c.Notes(ctx, w.pattern().String())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range list {
			if string(n.Value) == value && len(n.Provenance) > 0 && [32]byte(n.Provenance[0]) == from {
				return n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s lists no note %q from %x", c.URL, value, from[:8])
	return nil
}

// certifiedImports exports the certified manifests of the validator home
// from and imports them into the home to, then refuses tampered copies.
func certifiedImports(t *testing.T, from, to string) {
	t.Helper()
	file, count, err := validator.ExportManifests(from)
	if err != nil || count < 4 {
		t.Fatalf("export: %d blocks, %v", count, err)
	}
	blocks, certs, err := chain.DecodeManifestFile(file)
	if err != nil || len(certs) != count {
		t.Fatalf("decode: %d certificates, %v", len(certs), err)
	}
	in, err := fractal.Open(to)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	res, err := in.ImportManifests(file)
	if err != nil || res.Known+res.Ahead != count || res.Known == 0 || res.Stored != 0 {
		t.Fatalf("import: %+v %v", res, err)
	}
	last := len(blocks) - 1
	tampered := func(edit func(b *chain.Block, sh *types.SignedHeader)) []byte {
		bs := append([]*chain.Block(nil), blocks...)
		cs := append([][]byte(nil), certs...)
		b := *bs[last]
		sh, side, err := certify.DecodeCertificate(cs[last])
		if err != nil {
			t.Fatal(err)
		}
		edit(&b, sh)
		bs[last] = &b
		if cs[last], err = certify.EncodeCertificate(sh, side); err != nil {
			t.Fatal(err)
		}
		return chain.EncodeCertifiedManifests(bs, cs)
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"another set", tampered(func(b *chain.Block, _ *types.SignedHeader) { b.Executor[0] ^= 1 }), "not the trusted"},
		{"too little power", tampered(func(_ *chain.Block, sh *types.SignedHeader) {
			for i := range sh.Commit.Signatures[:2] {
				sh.Commit.Signatures[i] = types.NewCommitSigAbsent()
			}
		}), "insufficient voting power"},
		{"tampered app hash", tampered(func(_ *chain.Block, sh *types.SignedHeader) { sh.Header.AppHash[0] ^= 1 }), "commit signs block"},
		{"tampered manifest", tampered(func(b *chain.Block, _ *types.SignedHeader) { b.CommitmentRoot[0] ^= 1 }), "manifest hashes to"},
		{"signed blocks", chain.EncodeManifests(blocks), "the file holds signed blocks"},
	} {
		want := fmt.Sprintf("fractal: manifest import: block %d of the file: height %d: ", last, blocks[last].Height)
		if tc.name == "signed blocks" {
			want = "fractal: manifest import: "
		}
		_, err := in.ImportManifests(tc.file)
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
