package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// live reports whether a note lives at k on the node.
func (a *apiNode) live(t *testing.T, k notes.StateKey) bool {
	t.Helper()
	qp, err := a.Client.Prove(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return qp.Note != nil
}

// TestSubmitTransactionsInOrder: a batch is admitted in its order. Eight
// transfers from eight keys: the results come in the request's order with
// their IDs, all committed by one block that lists them in that order. A
// chain of transfers from one key, each spending the change of the one
// before (so that any other order refuses one in lookup): every one is
// committed, none in a block before the one before it, and the last
// change note lives.
func TestSubmitTransactionsInOrder(t *testing.T) {
	a := newAPINode(t, 9, nil)
	ctx := context.Background()
	sink := nodetest.Key(t).Public()
	var txs []*phases.Tx
	for i := 1; i < 9; i++ {
		tx, _ := a.tk.Transfer(t, a.keys[i], a.seeds[i], sink, 1)
		txs = append(txs, tx)
	}
	res := submitAll(t, a, txs)
	height := res[0].Height
	var ids []notes.Hash
	for i, r := range res {
		if r.Height != height {
			t.Fatalf("result %d committed at height %d, the first at %d: the batch was split", i, r.Height, height)
		}
		ids = append(ids, r.ID)
	}
	b, err := a.Client.Block(ctx, &height)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.TxIDs, ids) {
		t.Fatalf("block %d holds\n%x\nthe batch was\n%x", height, b.TxIDs, ids)
	}
	// The event stream tells of them as of any block's: a receipt each,
	// in order, then the block.
	var told []notes.Hash
	err = a.Client.Watch(ctx, &v1.WatchRequest{StartHeight: &height, Receipts: true}, func(ev *v1.WatchResponse) error {
		switch e := ev.Event.(type) {
		case *v1.WatchResponse_Receipt:
			id, err := wire.ParseHash(e.Receipt.TxId)
			told = append(told, id)
			return err
		case *v1.WatchResponse_Block:
			return errBlockSeen
		}
		return nil
	})
	if !errors.Is(err, errBlockSeen) || !slices.Equal(told, ids) {
		t.Fatalf("the stream's receipts of block %d: %x (%v)", height, told, err)
	}

	txs = nil
	in := a.seeds[0]
	for i := range 4 {
		var tx *phases.Tx
		tx, in = a.tk.LeanTransfer(t, a.keys[0], in, sink, fmt.Sprintf("c%d", i))
		txs = append(txs, tx)
	}
	res = submitAll(t, a, txs)
	for i := 1; i < len(res); i++ {
		if res[i].Height < res[i-1].Height {
			t.Fatalf("transfer %d of the chain at height %d, the one before at %d", i, res[i].Height, res[i-1].Height)
		}
	}
	if a.live(t, a.seeds[0].Key) || !a.live(t, in.Key) {
		t.Fatal("the chain's first input lives, or its last change does not")
	}
}

// errBlockSeen ends a Watch at its first block event.
var errBlockSeen = errors.New("block seen")

// TestSubmitTransactionsOverSubmitBatch: a batch larger than the node's
// submit_batch is admitted in several writes, still in its order: blocks
// list its transfers in that order.
func TestSubmitTransactionsOverSubmitBatch(t *testing.T) {
	a := newAPINode(t, 8, func(c *node.Config) { c.SubmitBatch = 3 })
	ctx := context.Background()
	sink := nodetest.Key(t).Public()
	var txs []*phases.Tx
	var ids []notes.Hash
	for i := range 8 {
		tx, _ := a.tk.Transfer(t, a.keys[i], a.seeds[i], sink, 1)
		txs, ids = append(txs, tx), append(ids, tx.ID())
	}
	res := submitAll(t, a, txs)
	var listed []notes.Hash
	for h := res[0].Height; h <= res[len(res)-1].Height; h++ {
		b, err := a.Client.Block(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, b.TxIDs...)
	}
	if !slices.Equal(listed, ids) {
		t.Fatalf("blocks %d to %d hold\n%x\nthe batch was\n%x", res[0].Height, res[len(res)-1].Height, listed, ids)
	}
}

// submitAll submits txs in one batch, waiting for their receipts, and
// fails the test unless every one is committed, its result in its place.
func submitAll(t *testing.T, a *apiNode, txs []*phases.Tx) []client.Submitted {
	t.Helper()
	res, err := a.Client.SubmitBatch(context.Background(), txs, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.ID != txs[i].ID() || r.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED || r.Receipt.Status != phases.Accepted {
			t.Fatalf("result %d: %+v %v", i, r.Outcome, r.Err)
		}
	}
	return res
}

// TestSubmitTransactionsRefusals: in one batch with wait_for_receipt, a
// transaction that does not decode, a wrongly signed one, one executed
// before, one over max_tx_gas and a second copy of a good one get the code
// and message SubmitTransaction gives each; the good ones are committed and
// their inputs spent; the refused ones change nothing. The node counts the
// submissions as it counts single ones.
func TestSubmitTransactionsRefusals(t *testing.T) {
	a := newAPINode(t, 5, nil)
	ctx := context.Background()
	sink := nodetest.Key(t).Public()
	done, _ := a.tk.Transfer(t, a.keys[0], a.seeds[0], sink, 1)
	first, err := a.Client.Submit(ctx, done, true)
	if err != nil || first.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED {
		t.Fatalf("the transfer executed before: %+v %v", first, err)
	}
	good1, next1 := a.tk.Transfer(t, a.keys[1], a.seeds[1], sink, 1)
	good2, next2 := a.tk.Transfer(t, a.keys[2], a.seeds[2], sink, 1)
	forged, _ := a.tk.Transfer(t, a.keys[3], a.seeds[3], sink, 1)
	forged.Signatures = [][]byte{make([]byte, 64)}
	heavy, _ := a.tk.Transfer(t, a.keys[4], a.seeds[4], sink, 1)
	heavy.GasLimit = node.DefaultConfig().MaxTxGas + 1
	nodetest.Sign(t, heavy, a.keys[4])
	garbage := []byte{0, 1, 2, 3}
	inputs := []*v1.TransactionInput{
		{Tx: &v1.TransactionInput_TxBytes{TxBytes: good1.Encode()}},
		{Tx: &v1.TransactionInput_TxBytes{TxBytes: garbage}},
		{Tx: &v1.TransactionInput_TxBytes{TxBytes: forged.Encode()}},
		{Tx: &v1.TransactionInput_TxBytes{TxBytes: done.Encode()}},
		{Tx: &v1.TransactionInput_TxBytes{TxBytes: heavy.Encode()}},
		{Tx: &v1.TransactionInput_TxBytes{TxBytes: good2.Encode()}},
		{Tx: &v1.TransactionInput_TxBytes{TxBytes: good1.Encode()}},
	}
	r, err := a.Client.API.SubmitTransactions(ctx, connect.NewRequest(&v1.SubmitTransactionsRequest{Transactions: inputs, WaitForReceipt: true}))
	if err != nil {
		t.Fatal(err)
	}
	res := r.Msg.Results
	if len(res) != len(inputs) {
		t.Fatalf("%d results for %d transactions", len(res), len(inputs))
	}
	hexID := func(tx *phases.Tx) string { id := tx.ID(); return fmt.Sprintf("%x", id) }
	short := func(tx *phases.Tx) string { id := tx.ID(); return fmt.Sprintf("%x", id[:8]) }
	_, decodeErr := phases.DecodeTx(garbage)
	want := []struct{ id, code, msg string }{
		{hexID(good1), "", ""},
		{"", "invalid_argument", decodeErr.Error()},
		{hexID(forged), "invalid_argument", fmt.Sprintf("submit %s: signature of signer 1 (%s) does not verify", short(forged), a.keys[3].Public())},
		{hexID(done), "already_exists", fmt.Sprintf("transaction %s was already executed in block %d", short(done), first.Height)},
		{hexID(heavy), "failed_precondition", ""}, // the instance's own wording, compared with the single call's below
		{hexID(good2), "", ""},
		{hexID(good1), "already_exists", fmt.Sprintf("transaction %s is already queued", short(good1))},
	}
	for i, w := range want {
		got := res[i]
		if got.TxId != w.id || got.GetError().GetCode() != w.code || (w.msg != "" && got.GetError().GetMessage() != w.msg) {
			t.Errorf("result %d: %s %v, want %s %s %q", i, got.TxId, got.Error, w.id, w.code, w.msg)
		}
		if w.code != "" && (got.State != v1.TransactionState_TRANSACTION_STATE_UNSPECIFIED || got.Receipt != nil) {
			t.Errorf("result %d: a refusal with state %v", i, got.State)
		}
	}
	for _, i := range []int{0, 5} {
		if res[i].State != v1.TransactionState_TRANSACTION_STATE_COMMITTED || res[i].Height == 0 || res[i].Receipt.Status != v1.ReceiptStatus_RECEIPT_STATUS_ACCEPTED {
			t.Errorf("result %d: %v", i, res[i])
		}
	}
	// Counted as single submissions are: what admission took or refused
	// (the earlier single one, the two good ones; the forged one, the
	// executed one, the duplicate), not what failed to decode or what the
	// gas cap refused before admission.
	for name, want := range map[string]float64{`fractal_submissions_total{result="accepted"}`: 3, `fractal_submissions_total{result="refused"}`: 3} {
		if got := metric(t, a.URL, name); got != want {
			t.Errorf("%s %v, want %v", name, got, want)
		}
	}
	// Each refusal is the single call's, code and message.
	for i, tx := range map[int]*phases.Tx{2: forged, 3: done, 4: heavy} {
		_, err := a.Client.API.SubmitTransaction(ctx, connect.NewRequest(&v1.SubmitTransactionRequest{Tx: &v1.SubmitTransactionRequest_TxBytes{TxBytes: tx.Encode()}}))
		var ce *connect.Error
		if !asConnect(err, &ce) || ce.Code().String() != res[i].Error.Code || ce.Message() != res[i].Error.Message {
			t.Errorf("result %d: %v; the single call: %v", i, res[i].Error, err)
		}
	}
	// The good ones spent their inputs; the refused ones changed nothing.
	if a.live(t, a.seeds[1].Key) || a.live(t, a.seeds[2].Key) || !a.live(t, next1.Key) || !a.live(t, next2.Key) {
		t.Error("the good transfers' inputs live, or their change does not")
	}
	if !a.live(t, a.seeds[3].Key) || !a.live(t, a.seeds[4].Key) {
		t.Error("a refused transfer spent its input")
	}
	if st, err := a.Client.Status(ctx); err != nil || st.MempoolDepth != 0 {
		t.Fatalf("status after the batch: %v %v", st, err)
	}
}

func asConnect(err error, ce **connect.Error) bool {
	e, ok := err.(*connect.Error)
	*ce = e
	return ok
}

// TestSubmitTransactionsRequestRefused: an empty list, more than 256
// transactions, and a body over max_request_bytes fail the call with
// invalid_argument, invalid_argument and resource_exhausted, and queue
// nothing, not even the good transfer they hold.
func TestSubmitTransactionsRequestRefused(t *testing.T) {
	a := newAPINode(t, 1, func(c *node.Config) { c.MaxRequestBytes = 1 << 20 })
	ctx := context.Background()
	good, _ := a.tk.Transfer(t, a.keys[0], a.seeds[0], nodetest.Key(t).Public(), 1)
	in := func(b []byte) *v1.TransactionInput {
		return &v1.TransactionInput{Tx: &v1.TransactionInput_TxBytes{TxBytes: b}}
	}
	many := []*v1.TransactionInput{in(good.Encode())}
	for range 256 {
		many = append(many, in([]byte{1}))
	}
	big := []*v1.TransactionInput{in(good.Encode()), in(make([]byte, 700_000)), in(make([]byte, 700_000))}
	for _, c := range []struct {
		name   string
		inputs []*v1.TransactionInput
		code   connect.Code
		msg    string
	}{
		{"empty", nil, connect.CodeInvalidArgument, "transactions: none given; give 1 to 256"},
		{"257 transactions", many, connect.CodeInvalidArgument, "transactions: 257 elements exceed the limit 256"},
		{"1.4 MB, over max_request_bytes", big, connect.CodeResourceExhausted, ""},
	} {
		_, err := a.Client.API.SubmitTransactions(ctx, connect.NewRequest(&v1.SubmitTransactionsRequest{Transactions: c.inputs, WaitForReceipt: true}))
		var ce *connect.Error
		if !asConnect(err, &ce) || ce.Code() != c.code || (c.msg != "" && ce.Message() != c.msg) {
			t.Errorf("%s: %v, want %v %q", c.name, err, c.code, c.msg)
		}
	}
	if _, err := a.Client.Receipt(ctx, good.ID()); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("the good transfer of a refused call: %v", err)
	}
	if st, err := a.Client.Status(ctx); err != nil || st.MempoolDepth != 0 {
		t.Fatalf("status after the refused calls: %v %v", st, err)
	}
}

// TestSubmitTransactionsJSON: the JSON form over plain HTTP, a transaction
// as tx_json beside one as tx_bytes; the answer in the schema's field
// names.
func TestSubmitTransactionsJSON(t *testing.T) {
	a := newAPINode(t, 2, nil)
	sink := nodetest.Key(t).Public()
	one, _ := a.tk.Transfer(t, a.keys[0], a.seeds[0], sink, 1)
	two, _ := a.tk.Transfer(t, a.keys[1], a.seeds[1], sink, 1)
	form, err := json.Marshal(one)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"transactions":     []map[string]any{{"tx_json": string(form)}, {"tx_bytes": two.Encode()}},
		"wait_for_receipt": true,
	})
	resp, err := http.Post(a.URL+"/fractal.v1.FractalService/SubmitTransactions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Results []struct {
			TxID  string `json:"tx_id"`
			State string `json:"state"`
		} `json:"results"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || len(out.Results) != 2 {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	for i, tx := range []*phases.Tx{one, two} {
		id := tx.ID()
		if r := out.Results[i]; r.TxID != fmt.Sprintf("%x", id) || r.State != "TRANSACTION_STATE_COMMITTED" {
			t.Errorf("result %d: %+v, want %x committed", i, r, id)
		}
	}
}
