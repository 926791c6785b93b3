package phases

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/keys"
)

// TestVerifyAllEqualsVerifySignatures checks that batch verification gives
// each transaction exactly the error of VerifySignatures, over several
// chunks with bad signatures and malformed signature lists among good ones.
func TestVerifyAllEqualsVerifySignatures(t *testing.T) {
	w := newWorld(t)
	block := mixedBlock(t, w) // holds three transactions with a bad signature
	a, b := testKey(t, 1), testKey(t, 2)
	two := func(nonce uint64) *Tx {
		return signed(t, &Tx{Nonce: nonce, GasLimit: 1, Signers: []keys.PublicKey{a.Public(), b.Public()}}, a, b)
	}
	secondBad := two(1)
	secondBad.Signatures[1] = append([]byte{}, secondBad.Signatures[0]...)
	missing := two(2)
	missing.Signatures[0] = nil
	fewer := two(3)
	fewer.Signatures = fewer.Signatures[:1]
	unsigned := two(4)
	unsigned.Signatures = nil
	noSigners := &Tx{Nonce: 5}
	special := []*Tx{two(6), secondBad, missing, fewer, unsigned, noSigners}

	var txs []*Tx
	for len(txs) < 3*verifyChunk {
		txs = append(txs, block...)
		txs = append(txs, special...)
	}
	got := VerifyAll(txs)
	refused := 0
	for i, tx := range txs {
		want := tx.VerifySignatures()
		if fmt.Sprint(got[i]) != fmt.Sprint(want) {
			t.Fatalf("tx %d: VerifyAll = %v, VerifySignatures = %v", i, got[i], want)
		}
		if want != nil {
			refused++
		}
	}
	if refused == 0 || refused == len(txs) {
		t.Fatalf("%d of %d refused: the workload tests nothing", refused, len(txs))
	}
	if errs := VerifyAll(nil); len(errs) != 0 {
		t.Fatalf("VerifyAll(nil) = %v", errs)
	}
}

// TestExecuteBlockFuncStreams checks that outcomes arrive once each, in
// block order, equal to serial execution, and that an error from emit stops
// the block and is returned.
func TestExecuteBlockFuncStreams(t *testing.T) {
	w := newWorld(t)
	txs := mixedBlock(t, w)
	base := w.st.clone()
	serial, err := ExecuteSerial(base, w.code, w.pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	var got []*Outcome
	err = ExecuteBlockFunc(base, w.code, w.pool, txs, func(i int, out *Outcome) error {
		if i != len(got) {
			return fmt.Errorf("outcome %d emitted after %d others", i, len(got))
		}
		got = append(got, out)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodeOutcomes(got), encodeOutcomes(serial)) {
		t.Fatal("streamed outcomes differ from serial")
	}

	stop := errors.New("commit failed")
	emitted := 0
	err = ExecuteBlockFunc(base, w.code, w.pool, txs, func(i int, out *Outcome) error {
		emitted++
		if i == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || emitted != 11 {
		t.Fatalf("emit error at 10: err = %v after %d outcomes, want %v after 11", err, emitted, stop)
	}
}
