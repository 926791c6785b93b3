package fractal

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/phases"
)

// storeSet writes (value != nil) or deletes a raw store key, as an attacker
// with the store would, and returns the previous value (nil when none).
func storeSet(t testing.TB, in *Instance, key, value []byte) []byte {
	t.Helper()
	var old []byte
	err := in.db.Update(func(txn *badger.Txn) error {
		var err error
		if old, err = getValue(txn, key); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if value == nil {
			return txn.Delete(key)
		}
		return txn.Set(key, value)
	})
	if err != nil {
		t.Fatal(err)
	}
	return old
}

func storeGet(t testing.TB, in *Instance, key []byte) []byte {
	t.Helper()
	var v []byte
	if err := in.db.View(func(txn *badger.Txn) (err error) { v, err = getValue(txn, key); return err }); err != nil {
		t.Fatal(err)
	}
	return v
}

// wantVerify runs Verify and checks its error text (empty: success).
func wantVerify(t testing.TB, in *Instance, text string) {
	t.Helper()
	_, err := in.Verify(context.Background(), nil)
	switch {
	case text == "" && err != nil:
		t.Fatalf("verify: %v", err)
	case text != "" && (err == nil || err.Error() != text):
		t.Fatalf("verify: %v, want %q", err, text)
	}
}

// openedBatchFixture: a plaintext block, then batch 1 of two encrypted mints
// and a payload that does not decrypt, opened with keyholders 1 and 3 into
// block 2.
func openedBatchFixture(t testing.TB) (*encFixture, *phases.Tx, *phases.Tx) {
	t.Helper()
	f := newEncFixture(t, 3, 2, false)
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "coin", "1"))
	one := f.mint(f.allow, f.allow, f.alice, "one", "1")
	two := f.mint(f.allow, f.allow, f.bob, "two", "2")
	f.encrypt(t, one)
	f.submitPayload(t, garbagePayload(t, f.pk, EncryptedContext(f.in.ID())))
	f.encrypt(t, two)
	wantState(t, f.seal(t), BatchFixed, "[]")
	f.share(t, 1)
	f.share(t, 3)
	if s := f.seal(t); s.Block == nil || s.Block.Height != 2 || len(s.Block.TxIDs) != 2 {
		t.Fatalf("opened %+v", s)
	}
	return f, one, two
}

// TestVerifyEncryptedBatch: verify re-derives an opened batch from its
// record, payloads and stored shares, and names each tampering.
func TestVerifyEncryptedBatch(t *testing.T) {
	f, one, two := openedBatchFixture(t)
	rep, err := f.in.Verify(context.Background(), nil)
	if err != nil || rep.Height != 2 || rep.Transactions != 3 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	batchKey := encKeyOf(encBatch, u64(1))

	t.Run("batch record signature", func(t *testing.T) {
		raw := storeGet(t, f.in, batchKey)
		bad := bytes.Clone(raw)
		bad[150] ^= 1 // inside the executor signature
		storeSet(t, f.in, batchKey, bad)
		wantVerify(t, f.in, "verify: encrypted batch 1: bad executor signature on the batch record")
		storeSet(t, f.in, batchKey, raw)
		wantVerify(t, f.in, "")
	})
	t.Run("batch record order", func(t *testing.T) {
		raw := storeGet(t, f.in, batchKey)
		b, err := chain.DecodeEncryptedBatch(raw)
		if err != nil {
			t.Fatal(err)
		}
		// Re-signed with the slots swapped: the stored payloads no longer match.
		b.PayloadIDs[0], b.PayloadIDs[2] = b.PayloadIDs[2], b.PayloadIDs[0]
		sig, err := f.in.signer.Sign(context.Background(), b.SignedMessage())
		if err != nil {
			t.Fatal(err)
		}
		copy(b.Signature[:], sig)
		storeSet(t, f.in, batchKey, b.Encode())
		wantVerify(t, f.in, "verify: encrypted batch 1 slot 0: stored payload differs from the batch record")
		storeSet(t, f.in, batchKey, raw)
	})
	t.Run("dropped share", func(t *testing.T) {
		k := encKeyOf(encShares, u64(1), u32(3))
		raw := storeSet(t, f.in, k, nil)
		wantVerify(t, f.in, "verify: encrypted batch 1 keyholder 3: shares that opened the batch are not stored")
		bad := bytes.Clone(raw)
		bad[len(bad)-1] ^= 1 // the last share's proof
		storeSet(t, f.in, k, bad)
		_, err := f.in.Verify(context.Background(), nil)
		wantErr(t, err, "verify: encrypted batch 1 keyholder 3: ")
		storeSet(t, f.in, k, raw)
		wantVerify(t, f.in, "")
	})
	t.Run("swapped block", func(t *testing.T) {
		k := seqKey(prefixBlock, 2)
		raw := storeGet(t, f.in, k)
		b, err := chain.DecodeBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		b.TxIDs[0], b.TxIDs[1] = b.TxIDs[1], b.TxIDs[0]
		b.TxsHash = chain.TxsHash(b.TxIDs)
		if err := chain.SignBlock(context.Background(), b, f.in.signer); err != nil {
			t.Fatal(err)
		}
		storeSet(t, f.in, k, b.Encode())
		id1, id2 := two.ID(), one.ID()
		wantVerify(t, f.in, "verify: encrypted batch 1 block 2: transaction 0 is "+hexPrefix(id1)+", the batch's slot order gives "+hexPrefix(id2))
		storeSet(t, f.in, k, raw)
		wantVerify(t, f.in, "")
	})
	t.Run("rewritten drop receipt", func(t *testing.T) {
		o, err := f.in.Outcome(slotPayload(t, f, 1))
		if err != nil {
			t.Fatal(err)
		}
		k := encKeyOf(encOutcome, o.Receipt.TxID[:])
		o.Receipt.Reason = "encrypted transaction dropped: plaintext does not parse: x"
		raw := storeSet(t, f.in, k, o.encode())
		wantVerify(t, f.in, "verify: encrypted batch 1 slot 1: stored outcome differs from the re-derived one (encrypted transaction dropped: payload does not decrypt)")
		storeSet(t, f.in, k, raw)
	})
	t.Run("a block before the batch's", func(t *testing.T) {
		k := encKeyOf(encOpened, u64(1))
		raw := storeGet(t, f.in, k)
		c, err := decodeClose(raw)
		if err != nil {
			t.Fatal(err)
		}
		c.Block = 3
		storeSet(t, f.in, k, c.encode())
		wantVerify(t, f.in, "verify: encrypted batch 1: opened into block 3, but its order was fixed at height 1: something ran before it")
		storeSet(t, f.in, k, raw)
		wantVerify(t, f.in, "")
	})
}

// slotPayload is the payload ID in slot of batch 1.
func slotPayload(t testing.TB, f *encFixture, slot int) [32]byte {
	t.Helper()
	var id [32]byte
	err := f.in.db.View(func(txn *badger.Txn) error {
		raw, err := getValue(txn, encKeyOf(encBatch, u64(1)))
		if err != nil {
			return err
		}
		b, err := chain.DecodeEncryptedBatch(raw)
		if err != nil {
			return err
		}
		id = b.PayloadIDs[slot]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestExpireEncrypted: with one of two shares in, the executor expires the
// waiting batch: every slot is dropped with a receipt, the plaintext that
// arrived after it runs, a late share is refused, and verify replays it.
func TestExpireEncrypted(t *testing.T) {
	f := newEncFixture(t, 3, 2, false)
	f.commit(t, f.mint(f.allow, f.allow, f.alice, "coin", "1"))
	secret := f.move(f.allow, f.allow, f.alice, "coin", "sealed", "1")
	pid := f.encrypt(t, secret)
	wantState(t, f.seal(t), BatchFixed, "[]")
	after := f.mint(f.allow, f.allow, f.bob, "after", "2")
	if _, err := f.in.Submit(after); err != nil {
		t.Fatal(err)
	}
	f.share(t, 2)
	wantState(t, f.seal(t), BatchWaiting, "[2]")
	late, err := f.in.MakeShares(context.Background(), f.sks[0])
	if err != nil {
		t.Fatal(err)
	}

	before := dumpStore(t, f.in)
	_, err = f.in.ExpireEncrypted(context.Background(), 2)
	wantErr(t, err, "fractal: expire: encrypted batch 2 is not waiting (batch 1 is)")
	if dumpStore(t, f.in) != before {
		t.Fatal("a refused expiry changed the store")
	}
	s, err := f.in.ExpireEncrypted(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, s, BatchExpired, "[2]")
	const reason = "encrypted transaction dropped: expired: not decrypted by 2 keyholders"
	if s.Block != nil || len(s.Receipts) != 1 || s.Receipts[0].Reason != reason || s.Receipts[0].TxID != pid {
		t.Fatalf("expiry %+v", s.Receipts)
	}
	if o, err := f.in.Outcome(pid); err != nil || o.Batch != 1 || o.Receipt.Reason != reason || o.TxID != ([32]byte{}) {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	_, err = f.in.SubmitShares(late.Encode())
	wantErr(t, err, "fractal: submit shares: encrypted batch 1 expired: shares are no longer accepted")
	_, err = f.in.ExpireEncrypted(context.Background(), 1)
	wantErr(t, err, "fractal: expire: no encrypted batch is waiting for shares")

	// The plaintext that arrived after the batch runs now.
	if s := f.seal(t); s.Block == nil || s.Block.Height != 2 || s.Block.TxIDs[0] != after.ID() {
		t.Fatalf("after expiry: %+v", s)
	}
	if got := strings.Join(liveKeys(t, f.in), " "); got != "after=2 coin=1" {
		t.Fatalf("notes %q", got)
	}
	wantVerify(t, f.in, "")

	// A batch with k shares in is opened, not expired.
	f.encrypt(t, secret)
	f.seal(t)
	f.share(t, 1)
	f.share(t, 3)
	before = dumpStore(t, f.in)
	_, err = f.in.ExpireEncrypted(context.Background(), 2)
	wantErr(t, err, "fractal: expire: encrypted batch 2 has 2 of 2 shares: seal opens it")
	if dumpStore(t, f.in) != before {
		t.Fatal("a refused expiry changed the store")
	}
	if s := f.seal(t); s.Block == nil || s.Block.TxIDs[0] != secret.ID() {
		t.Fatalf("batch 2: %+v", s)
	}
	wantVerify(t, f.in, "")

	// Tampering with the expiry is named.
	k := encKeyOf(encOpened, u64(1))
	raw := storeGet(t, f.in, k)
	bad := bytes.Clone(raw)
	bad[5] ^= 1
	storeSet(t, f.in, k, bad)
	wantVerify(t, f.in, "verify: encrypted batch 1: bad executor signature on the expiry")
	storeSet(t, f.in, k, raw)
	o := &EncryptedOutcome{Batch: 1, Receipt: dropReceipt(pid, "payload does not decrypt")}
	storeSet(t, f.in, encKeyOf(encOutcome, pid[:]), o.encode())
	wantVerify(t, f.in, "verify: encrypted batch 1 slot 0: stored outcome differs from the re-derived one ("+reason+")")
}

func FuzzDecodeClose(f *testing.F) {
	f.Add((&batchClose{Block: 7, Keyholders: []int{1, 3}}).encode())
	f.Add((&batchClose{Expired: true, Signature: [64]byte{9}}).encode())
	f.Add((&batchClose{Expired: true, At: 12}).encode())
	f.Add([]byte{1, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeClose(data)
		if err != nil {
			return
		}
		if !bytes.Equal(c.encode(), data) {
			t.Fatal("decoded close record re-encodes differently")
		}
	})
}

func FuzzDecodeLastShares(f *testing.F) {
	f.Add((&lastShares{Height: 9, Keyholders: []int{1, 2}}).encode())
	f.Add((&lastShares{Height: 3}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := decodeLastShares(data)
		if err != nil {
			return
		}
		if !bytes.Equal(l.encode(), data) {
			t.Fatal("decoded last shares record re-encodes differently")
		}
	})
}
