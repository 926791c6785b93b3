package gateway_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// move spends the note at from and creates to with its value.
func (w *world) move(t *testing.T, from, to string) *phases.Tx {
	h := hex.EncodeToString(w.app[:])
	return w.sign(t, &phases.Tx{Read: notes.ConstraintSet{w.pattern()}, Write: notes.ConstraintSet{w.pattern()},
		Lookup:      fmt.Appendf(nil, "return {%q}", w.key(from).String()),
		Calculation: fmt.Appendf(nil, "return {{provenance={}, application=%q, owner=%q, key=%q, value=inputs[1].value}}", h, h, to)})
}

// TestEncryptedOverTheAPI: on an encrypted devnet of four validators
// served as fractal node serves them, a wallet holding only one
// validator's URL fetches the threshold key over the API (the key the
// validators made at genesis, bound to the instance), seals a transfer to
// it and submits it with SubmitEncrypted, as tx submit --encrypt --node
// does; a block fixes it, the next opens it with the validators' shares,
// and the transfer commits, its outcome and receipt readable over another
// validator's API. A payload that does not decode is invalid, the same
// payload again already exists, and one for another instance is
// refused with its reason.
func TestEncryptedOverTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four CometBFT validators")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, src := newWorld(t)
	dir := t.TempDir()
	dn, err := validator.WriteDevnet(filepath.Join(dir, "net"), validator.DevnetOptions{
		Validators: 4, BasePort: freeBase(t, 4), Instance: fractal.DefaultConfig(), Encrypted: true,
		TimeoutPropose: time.Second, TimeoutCommit: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var vs []*running
	for _, home := range dn.Homes {
		vs = append(vs, serveHome(t, home))
	}
	if w.app, err = vs[0].c.Deploy(ctx, src); err != nil {
		t.Fatal(err)
	}
	committed(t, ctx, vs[0].c, w.mint(t, "coin", "5"))

	// The wallet: a URL, nothing else.
	wallet, err := client.New(dn.API[2])
	if err != nil {
		t.Fatal(err)
	}
	pk, instance, err := wallet.ThresholdKey(ctx)
	if err != nil || pk.ID() != dn.ThresholdKey.ID() || instance != dn.Trust.ID || pk.K != 3 || pk.N != 4 {
		t.Fatalf("threshold key over the API: %v %x %v", pk, instance, err)
	}
	move := w.move(t, "coin", "coin2")
	p, err := fractal.EncryptTx(pk, instance, move)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := wallet.SubmitEncrypted(ctx, p.Encode())
	if err != nil || pid != p.ID() {
		t.Fatalf("submit encrypted: %x %v", pid, err)
	}
	var o *fractal.EncryptedOutcome
	for try := 0; o == nil; try++ {
		if o, _, err = vs[1].c.EncryptedOutcome(ctx, pid); err != nil && try == 300 {
			t.Fatalf("the payload never opened: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if o.TxID != move.ID() || o.Receipt.Status != phases.Accepted {
		t.Fatalf("outcome %+v", o.Receipt)
	}
	rc, err := vs[3].c.Receipt(ctx, move.ID())
	if err != nil || rc.State != v1.TransactionState_TRANSACTION_STATE_COMMITTED || rc.Receipt.Status != phases.Accepted {
		t.Fatalf("receipt on v3: %+v %v", rc, err)
	}
	if st, _, _, err := wallet.Pending(ctx, false); err != nil || st != nil {
		t.Fatalf("pending after the batch opened: %+v %v", st, err)
	}

	// Refusals, with their codes and reasons.
	_, err = wallet.API.SubmitEncrypted(ctx, connect.NewRequest(&v1.SubmitEncryptedRequest{Payload: []byte{4, 1}}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a payload that does not decode: %v", err)
	}
	_, err = wallet.SubmitEncrypted(ctx, p.Encode())
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Code != connect.CodeAlreadyExists || ce.Msg != fmt.Sprintf("payload %x was in encrypted batch %d, which closed (fractal tfhe outcome tells how) (already_exists)", pid[:8], o.Batch) {
		t.Fatalf("the same payload again: %v", err)
	}
	other, err := fractal.EncryptTx(pk, [32]byte{1}, w.move(t, "coin2", "coin3"))
	if err != nil {
		t.Fatal(err)
	}
	oid := other.ID()
	_, err = wallet.SubmitEncrypted(ctx, other.Encode())
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Code != connect.CodeFailedPrecondition || ce.Msg != fmt.Sprintf("check encrypted %x: payload is not bound to this instance (wrong context) (failed_precondition)", oid[:8]) {
		t.Fatalf("a payload for another instance: %v", err)
	}
}
