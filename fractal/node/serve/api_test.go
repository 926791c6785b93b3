package serve_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// apiNode is a node serving 250 token notes of as many keys.
type apiNode struct {
	*nodetest.Node
	tk    *nodetest.Token
	keys  []keys.PrivateKey
	seeds []nodetest.Note
}

func newAPINode(t *testing.T, n int, tune func(*node.Config)) *apiNode {
	t.Helper()
	tk := nodetest.NewToken(t)
	a := &apiNode{tk: tk}
	a.keys, a.seeds = tk.Senders(t, n, 100)
	tk.Close(t)
	cfg := nodetest.Config()
	if tune != nil {
		tune(&cfg)
	}
	a.Node = nodetest.Start(t, tk.Home, cfg)
	return a
}

// TestListNotesPages: a listing read a page at a time lists every note
// once, in state-key order, whatever the page size, including pages the
// scan budget cuts short; a pattern matching nothing ends.
func TestListNotesPages(t *testing.T) {
	a := newAPINode(t, 250, nil)
	ctx := context.Background()
	st, err := a.Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := st.GetHead().GetHeight() // the minting took one block or more (max_block_gas)
	pattern := fmt.Sprintf("*/%x/%x/*", a.tk.App, a.tk.Sig)
	for _, size := range []uint32{1, 7, 100} {
		var keysSeen []string
		req := &v1.ListNotesRequest{Pattern: pattern, PageSize: size}
		for pages := 0; ; pages++ {
			if pages > 300 {
				t.Fatalf("page size %d: no end after 300 pages", size)
			}
			r, err := a.Client.API.ListNotes(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Msg.Notes) > int(size) || r.Msg.Height != head {
				t.Fatalf("page of %d notes for size %d at height %d", len(r.Msg.Notes), size, r.Msg.Height)
			}
			for _, n := range r.Msg.Notes {
				keysSeen = append(keysSeen, n.StateKey)
			}
			if req.PageToken = r.Msg.NextPageToken; req.PageToken == "" {
				break
			}
		}
		if len(keysSeen) != 250 {
			t.Fatalf("page size %d: %d notes listed, want 250", size, len(keysSeen))
		}
		for i := 1; i < len(keysSeen); i++ {
			if keysSeen[i] <= keysSeen[i-1] {
				t.Fatalf("page size %d: %s after %s", size, keysSeen[i], keysSeen[i-1])
			}
		}
	}
	r, err := a.Client.API.ListNotes(ctx, connect.NewRequest(&v1.ListNotesRequest{Pattern: "*/" + hex.EncodeToString(make([]byte, 32)) + "/*/*"}))
	if err != nil || len(r.Msg.Notes) != 0 || r.Msg.NextPageToken != "" {
		t.Fatalf("a pattern matching nothing: %v %v", r, err)
	}
	if _, err := a.Client.API.ListNotes(ctx, connect.NewRequest(&v1.ListNotesRequest{Pattern: "not a pattern"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a malformed pattern: %v", err)
	}
}

// TestTransactionsAndBlocks: a transaction queued (the block time is an
// hour) is QUEUED to GetTransaction and GetReceipt, and a wait for its
// receipt answers QUEUED before the call's deadline; a node restarted with
// a short block time commits it (height, index); a refused transaction's
// receipt is remembered, until a restart; ListBlocks pages both ways.
func TestTransactionsAndBlocks(t *testing.T) {
	a := newAPINode(t, 3, func(c *node.Config) { c.BlockTime = node.Duration(time.Hour) })
	ctx := context.Background()
	sink := nodetest.Key(t).Public()
	tx, _ := a.tk.Transfer(t, a.keys[0], a.seeds[0], sink, 1)
	txid := tx.ID()
	id := hex.EncodeToString(txid[:])
	if _, err := a.Client.Submit(ctx, tx, false); err != nil {
		t.Fatal(err)
	}
	get := func(c *nodetest.Node, id string) (*v1.GetTransactionResponse, error) {
		r, err := c.Client.API.GetTransaction(ctx, connect.NewRequest(&v1.GetTransactionRequest{TxId: id}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}
	q, err := get(a.Node, id)
	if err != nil || q.State != v1.TransactionState_TRANSACTION_STATE_QUEUED {
		t.Fatalf("a queued transaction: %v %v", q, err)
	}
	if back, err := phases.DecodeTx(q.Transaction.Encoding); err != nil || back.ID() != tx.ID() {
		t.Fatalf("the queued transaction's encoding: %v", err)
	}
	if rc, err := a.Client.Receipt(ctx, tx.ID()); err != nil || rc.State != v1.TransactionState_TRANSACTION_STATE_QUEUED || rc.Receipt != nil {
		t.Fatalf("the receipt of a queued transaction: %+v %v", rc, err)
	}
	missing := sha256.Sum256([]byte("nothing"))
	if _, err := get(a.Node, hex.EncodeToString(missing[:])); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("an unknown transaction: %v", err)
	}
	other, _ := a.tk.Transfer(t, a.keys[1], a.seeds[1], sink, 1)
	wctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	out, err := a.Client.Submit(wctx, other, true)
	cancel()
	if err != nil || out.State != v1.TransactionState_TRANSACTION_STATE_QUEUED {
		t.Fatalf("a wait the seal does not answer before the call's deadline: %+v %v", out, err)
	}

	// A short block time seals them.
	a.Stop(t)
	b := nodetest.Start(t, a.tk.Home, nodetest.Config())
	waitFor(t, "the queue to be sealed", func() bool {
		r, err := get(b, id)
		return err == nil && r.State == v1.TransactionState_TRANSACTION_STATE_COMMITTED
	})
	c, _ := get(b, id)
	if c.Height != 2 || c.Index != 0 {
		t.Fatalf("committed at height %d index %d, want 2 and 0", c.Height, c.Index)
	}
	// A transfer of a note that is not the signer's is refused at the
	// seal; its receipt is remembered, in memory only.
	bad, _ := a.tk.Transfer(t, a.keys[0], a.seeds[2], sink, 1)
	res, err := b.Client.Submit(ctx, bad, true)
	if err != nil || res.State != v1.TransactionState_TRANSACTION_STATE_REFUSED || res.Receipt.Phase != phases.PhaseValidity {
		t.Fatalf("a refused transfer: %+v %v", res, err)
	}
	if rc, err := b.Client.Receipt(ctx, bad.ID()); err != nil || rc.State != v1.TransactionState_TRANSACTION_STATE_REFUSED {
		t.Fatalf("the refused receipt: %+v %v", rc, err)
	}
	b.Stop(t)
	d := nodetest.Start(t, a.tk.Home, nodetest.Config())
	if _, err := d.Client.Receipt(ctx, bad.ID()); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("a refusal after a restart (decision 080: not stored): %v", err)
	}

	// ListBlocks: newest first a block at a time, then oldest first.
	var heights []uint64
	req := &v1.ListBlocksRequest{PageSize: 1}
	for {
		r, err := d.Client.API.ListBlocks(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range r.Msg.Blocks {
			heights = append(heights, h.Height)
		}
		if req.PageToken = r.Msg.NextPageToken; req.PageToken == "" {
			break
		}
	}
	if fmt.Sprint(heights) != "[2 1 0]" {
		t.Fatalf("newest first: %v", heights)
	}
	r, err := d.Client.API.ListBlocks(ctx, connect.NewRequest(&v1.ListBlocksRequest{OldestFirst: true, PageSize: 2}))
	if err != nil || len(r.Msg.Blocks) != 2 || r.Msg.Blocks[0].Height != 0 || r.Msg.NextPageToken == "" {
		t.Fatalf("oldest first: %v %v", r, err)
	}
	if _, err := d.Client.API.ListBlocks(ctx, connect.NewRequest(&v1.ListBlocksRequest{PageToken: r.Msg.NextPageToken})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a token of the other direction: %v", err)
	}
}

// TestSimulate: a signed transaction simulates accepted and commits
// nothing; an unsigned one only with allow_unsigned; one over the node's
// gas limit is refused (failed_precondition); one already executed is already_exists.
func TestSimulate(t *testing.T) {
	a := newAPINode(t, 2, func(c *node.Config) { c.SimulateGasLimit = 2_000_000 })
	ctx := context.Background()
	sink := nodetest.Key(t).Public()
	tx, _ := a.tk.Transfer(t, a.keys[0], a.seeds[0], sink, 1)
	sim := func(tx *phases.Tx, unsigned bool) (*v1.SimulateResponse, error) {
		r, err := a.Client.API.Simulate(ctx, connect.NewRequest(&v1.SimulateRequest{Tx: &v1.SimulateRequest_TxBytes{TxBytes: tx.Encode()}, AllowUnsigned: unsigned}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}
	r, err := sim(tx, false)
	if err != nil || r.Receipt.Status != v1.ReceiptStatus_RECEIPT_STATUS_ACCEPTED || r.Height != 1 || r.Receipt.Gas.Total == 0 {
		t.Fatalf("simulate: %v %v", r, err)
	}
	st, _ := a.Client.Status(ctx)
	if st.Head.Height != 1 || st.MempoolDepth != 0 {
		t.Fatalf("a simulation changed the node: head %d, depth %d", st.Head.Height, st.MempoolDepth)
	}
	unsigned := *tx
	unsigned.Signatures = nil
	if _, err := sim(&unsigned, false); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("unsigned without allow_unsigned: %v", err)
	}
	if r, err := sim(&unsigned, true); err != nil || r.Receipt.Status != v1.ReceiptStatus_RECEIPT_STATUS_ACCEPTED {
		t.Fatalf("unsigned with allow_unsigned: %v %v", r, err)
	}
	forged := *tx
	forged.Signatures = [][]byte{make([]byte, 64)}
	if _, err := sim(&forged, true); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a wrong signature with allow_unsigned: %v", err)
	}
	heavy, _ := a.tk.Transfer(t, a.keys[1], a.seeds[1], sink, 1)
	heavy.GasLimit = 3_000_000
	nodetest.Sign(t, heavy, a.keys[1])
	if _, err := sim(heavy, false); connect.CodeOf(err) != connect.CodeFailedPrecondition { // a cap, as every gas cap (decision 170)
		t.Fatalf("over the simulation gas limit: %v", err)
	}
	if _, err := a.Client.Submit(ctx, tx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := sim(tx, false); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("simulating an executed transaction: %v", err)
	}
}

// TestCodeAndEncrypted: DeployCode and GetCode; the deploy budget; the
// encrypted mempool closed without a threshold key.
func TestCodeAndEncrypted(t *testing.T) {
	a := newAPINode(t, 1, func(c *node.Config) { c.DeployBytesPerMinute = 100 })
	ctx := context.Background()
	src := []byte("return true -- 26 bytes..")
	h, err := a.Client.Deploy(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Client.API.GetCode(ctx, connect.NewRequest(&v1.GetCodeRequest{CodeHash: hex.EncodeToString(h[:])}))
	if err != nil || string(r.Msg.Code) != string(src) {
		t.Fatalf("GetCode: %v", err)
	}
	missing := sha256.Sum256([]byte("never deployed"))
	if _, err := a.Client.API.GetCode(ctx, connect.NewRequest(&v1.GetCodeRequest{CodeHash: hex.EncodeToString(missing[:])})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("GetCode of unknown code: %v", err)
	}
	if _, err := a.Client.Deploy(ctx, []byte("return not compiling (")); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("code that does not compile: %v", err)
	}
	// No code (a misspelt JSON field, which the JSON form ignores) is not
	// deployed as the empty program.
	if _, err := a.Client.Deploy(ctx, nil); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "code: empty") {
		t.Fatalf("empty code: %v", err)
	}
	var spent error
	for i := 0; i < 10 && spent == nil; i++ {
		_, spent = a.Client.Deploy(ctx, []byte(fmt.Sprintf("return %d -- pad pad pad pad", i)))
	}
	if connect.CodeOf(spent) != connect.CodeResourceExhausted {
		t.Fatalf("the deploy budget (100 bytes a minute): %v", spent)
	}
	if _, err := a.Client.API.GetThresholdKey(ctx, connect.NewRequest(&v1.GetThresholdKeyRequest{})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("GetThresholdKey without a key: %v", err)
	}
	if _, err := a.Client.API.SubmitEncrypted(ctx, connect.NewRequest(&v1.SubmitEncryptedRequest{Payload: []byte{4, 1, 2}})); connect.CodeOf(err) == connect.Code(0) {
		t.Fatal("a garbage payload was queued")
	}
}

// TestEstimateGasThroughNode: Simulate with estimate_gas answers what
// fractal.Instance.EstimateGas answers on the same state (the same search,
// decision 145), whatever gas limit and signatures the transaction
// carries; the limit signed then commits with the simulated gas; a
// transaction the node's simulation limit cannot fit gets a refused
// receipt and no limit.
func TestEstimateGasThroughNode(t *testing.T) {
	tk := nodetest.NewToken(t)
	ks, seeds := tk.Senders(t, 2, 100)
	tx, _ := tk.Transfer(t, ks[0], seeds[0], nodetest.Key(t).Public(), 1)
	other, _ := tk.Transfer(t, ks[1], seeds[1], nodetest.Key(t).Public(), 1)
	want, err := tk.In.EstimateGas(context.Background(), tx, 0)
	if err != nil || want.Receipt.Err() != nil || want.Limit == 0 {
		t.Fatalf("local estimate: %+v %v", want, err)
	}
	tk.Close(t)
	a := nodetest.Start(t, tk.Home, nodetest.Config())
	ctx := context.Background()
	estimate := func(tx *phases.Tx) (*v1.SimulateResponse, error) {
		r, err := a.Client.API.Simulate(ctx, connect.NewRequest(&v1.SimulateRequest{Tx: &v1.SimulateRequest_TxBytes{TxBytes: tx.Encode()}, EstimateGas: true}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}
	unsigned := *tx
	unsigned.Signatures, unsigned.GasLimit = nil, phases.MaxGasLimit // neither matters, nor the node's simulation limit
	r, err := estimate(&unsigned)
	if err != nil || r.GasLimit != want.Limit || r.Height != want.Height || r.TxId != fmt.Sprintf("%x", unsigned.ID()) {
		t.Fatalf("node estimate %v %v, local %d at %d", r, err, want.Limit, want.Height)
	}
	got, err := a.Client.EstimateGas(ctx, tx)
	if err != nil || got.Limit != want.Limit || string(got.Receipt.Encode()) != string(want.Receipt.Encode()) {
		t.Fatalf("client estimate %+v %v, want %+v", got, err, want)
	}
	tx.GasLimit = got.Limit
	nodetest.Sign(t, tx, ks[0])
	out, err := a.Client.Submit(ctx, tx, true)
	if err != nil || out.Receipt == nil || out.Receipt.Err() != nil || out.Receipt.Gas != want.Receipt.Gas {
		t.Fatalf("submitted with the estimate: %+v %v, simulated gas %+v", out, err, want.Receipt.Gas)
	}
	a.Stop(t)

	// A simulation limit below what the transaction needs: refused, no limit.
	cfg := nodetest.Config()
	cfg.SimulateGasLimit = want.Receipt.Gas.Total() - 1
	a = nodetest.Start(t, tk.Home, cfg)
	if r, err = estimate(other); err != nil || r.GasLimit != 0 || r.Receipt.Status != v1.ReceiptStatus_RECEIPT_STATUS_REFUSED || !strings.Contains(r.Receipt.Reason, "out of gas") {
		t.Fatalf("under the simulation limit: %v %v", r, err)
	}
}

// TestMempoolFull: a submission queued already is already_exists; with
// max_queue submissions queued, one more is refused with
// resource_exhausted naming the bound, and queues nothing.
func TestMempoolFull(t *testing.T) {
	tk := nodetest.NewToken(t)
	ks, seeds := tk.Senders(t, 4, 100)
	tk.Close(t)
	tk.SetConfig(t, map[string]any{"max_queue": 3})
	cfg := nodetest.Config()
	cfg.BlockTime = node.Duration(time.Hour) // nothing is sealed meanwhile
	n := nodetest.Start(t, tk.Home, cfg)
	ctx := context.Background()
	sink := nodetest.Key(t).Public()
	var txs []*phases.Tx
	for i := range ks {
		tx, _ := tk.Transfer(t, ks[i], seeds[i], sink, 1)
		txs = append(txs, tx)
	}
	refusal := func(tx *phases.Tx) (connect.Code, string) {
		_, err := n.Client.Submit(ctx, tx, false)
		var ce *connect.Error
		if !errors.As(err, &ce) {
			t.Fatalf("submission %x: %v, want a refusal", tx.ID(), err)
		}
		return ce.Code(), ce.Message()
	}
	for i, tx := range txs[:3] {
		if _, err := n.Client.Submit(ctx, tx, false); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			id := tx.ID()
			if code, msg := refusal(tx); code != connect.CodeAlreadyExists || msg != fmt.Sprintf("transaction %x is already queued", id[:8]) {
				t.Fatalf("a submission queued already: %v %q", code, msg)
			}
		}
	}
	if code, msg := refusal(txs[3]); code != connect.CodeResourceExhausted || msg != "mempool full (3 queued, max_queue 3)" {
		t.Fatalf("a fourth submission: %v %q", code, msg)
	}
	if st, err := n.Client.Status(ctx); err != nil || st.MempoolDepth != 3 {
		t.Fatalf("status after the refusals: %v %v", st, err)
	}
}

// refusedInLookup is a node whose last block refused tx in lookup: a
// transfer by alice of the note later, which does not exist yet.
type refusedInLookup struct {
	n      *nodetest.Node
	tk     *nodetest.Token
	alice  keys.PrivateKey
	later  nodetest.Note
	tx     *phases.Tx
	reason string
}

func newRefusedInLookup(t *testing.T) *refusedInLookup {
	t.Helper()
	tk := nodetest.NewToken(t)
	tk.Close(t)
	r := &refusedInLookup{n: nodetest.Start(t, tk.Home, nodetest.Config()), tk: tk, alice: nodetest.Key(t)}
	r.later = nodetest.Note{Key: notes.StateKey{Application: tk.App, Owner: tk.Sig, Key: []byte(r.alice.Public().String() + ":later")}, Value: tk.Gold(10)}
	r.tx, _ = tk.Transfer(t, r.alice, r.later, nodetest.Key(t).Public(), 1)
	out, err := r.n.Client.Submit(context.Background(), r.tx, true)
	if err != nil || out.Receipt == nil || out.Receipt.Phase != phases.PhaseLookup {
		t.Fatalf("a transfer of a note that does not exist: %+v %v, want refused in lookup", out, err)
	}
	r.reason = out.Receipt.Reason
	return r
}

// TestResendRefusedInLookup: a transfer whose input does not exist yet is
// refused in lookup in its block; sent again, it is refused at once with
// failed_precondition and the lookup's reason and nothing is queued (not
// refused again a block later); once a block creates its input, the same
// transaction is admitted and commits (decision 170).
func TestResendRefusedInLookup(t *testing.T) {
	r := newRefusedInLookup(t)
	n, tk, later, tx, reason := r.n, r.tk, r.later, r.tx, r.reason
	ctx := context.Background()
	id := tx.ID()
	var err error
	for i := 0; i < 2; i++ {
		_, err = n.Client.Submit(ctx, tx, true)
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeFailedPrecondition ||
			ce.Message() != fmt.Sprintf("transaction %x was refused in lookup in a recent block and would be again: %s", id[:8], reason) {
			t.Fatalf("resend %d: %v, want failed_precondition with the lookup's reason %q", i+1, err, reason)
		}
	}
	if st, err := n.Client.Status(ctx); err != nil || st.MempoolDepth != 0 {
		t.Fatalf("after the resends: %+v %v, want nothing queued", st, err)
	}
	for _, mint := range tk.MintTxs(t, []nodetest.Note{later}) {
		if out, err := n.Client.Submit(ctx, mint, true); err != nil || out.Receipt == nil || out.Receipt.Err() != nil {
			t.Fatalf("mint: %+v %v", out, err)
		}
	}
	if out, err := n.Client.Submit(ctx, tx, true); err != nil || out.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED {
		t.Fatalf("the resend once its input exists: %+v %v", out, err)
	}
}

// TestResendLookupsOncePerCommit: a flood of resends of a transaction a
// block refused in lookup, in a row and at once, runs its lookup once
// between two commits (fractal_resend_lookups_total), each refused with the
// lookup's reason; the next commit makes the next resend run it again
// (decision 176). Before, every resend ran the lookup, up to max_tx_gas of
// Lua each, with no fee and no queue slot: a store-read amplifier.
func TestResendLookupsOncePerCommit(t *testing.T) {
	r := newRefusedInLookup(t)
	n, tk, alice, tx := r.n, r.tk, r.alice, r.tx
	ctx := context.Background()
	id := tx.ID()
	want := fmt.Sprintf("transaction %x was refused in lookup in a recent block and would be again: %s", id[:8], r.reason)
	resend := func() error {
		_, err := n.Client.Submit(ctx, tx, false)
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeFailedPrecondition || ce.Message() != want {
			return fmt.Errorf("resend: %v, want failed_precondition %q", err, want)
		}
		return nil
	}
	for range 10 {
		if err := resend(); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 20)
	for range 20 {
		go func() { errs <- resend() }()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := metric(t, n.URL, "fractal_resend_lookups_total"); got != 1 {
		t.Fatalf("30 resends between two commits ran the lookup %v times, want 1", got)
	}
	// A commit (another transaction's) and the next resend looks again.
	other := nodetest.Note{Key: notes.StateKey{Application: tk.App, Owner: tk.Sig, Key: []byte(alice.Public().String() + ":other")}, Value: tk.Gold(10)}
	for _, mint := range tk.MintTxs(t, []nodetest.Note{other}) {
		if out, err := n.Client.Submit(ctx, mint, true); err != nil || out.Receipt == nil || out.Receipt.Err() != nil {
			t.Fatalf("mint: %+v %v", out, err)
		}
	}
	for range 3 {
		if err := resend(); err != nil {
			t.Fatal(err)
		}
	}
	if got := metric(t, n.URL, "fractal_resend_lookups_total"); got != 2 {
		t.Fatalf("resends after one more commit: %v lookups in all, want 2", got)
	}
}
