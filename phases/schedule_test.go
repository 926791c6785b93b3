package phases

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/internal/cache"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// mixedBlock builds a block over eight funded accounts: independent
// transfers, chains that spend an earlier transaction's output, double
// spends, overdrafts, a bad signature and a mint.
func mixedBlock(t testing.TB, w *world) []*Tx {
	var accts []keys.PrivateKey
	held := map[int]notes.Note{}
	bal := map[int]int{}
	issuer := testKey(t, 100)
	for i := 0; i < 8; i++ {
		k := testKey(t, byte(i+1))
		accts = append(accts, k)
		n := w.gold(issuer.Public(), k.Public(), 100, "genesis")
		w.st.put(n)
		held[i], bal[i] = n, 100
	}
	var txs []*Tx
	nonce := uint64(0)
	transfer := func(from, to, amount int) *Tx {
		nonce++
		tx := w.transferTx(t, accts[from], []notes.Note{held[from]}, accts[to].Public(), amount, nonce)
		txs = append(txs, tx)
		// The change note is the sender's next note.
		bal[from] -= amount
		held[from] = w.gold(issuer.Public(), accts[from].Public(), bal[from], transferTag(held[from])+":2")
		return tx
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 8; i++ {
			transfer(i, (i+1+round)%8, 10+round) // a chain per sender, independent across senders
		}
		// A double spend: account 0's old note again.
		nonce++
		txs = append(txs, w.transferTx(t, accts[0], []notes.Note{w.gold(issuer.Public(), accts[0].Public(), 100, "genesis")}, accts[1].Public(), 5, nonce))
		// An overdraft.
		nonce++
		txs = append(txs, w.transferTx(t, accts[3], []notes.Note{held[3]}, accts[4].Public(), 1000, nonce))
		// A bad signature.
		bad := w.transferTx(t, accts[5], []notes.Note{held[5]}, accts[6].Public(), 1, nonce+1000)
		bad.Signatures[0][0] ^= 1
		txs = append(txs, bad)
		// A mint by the issuer.
		txs = append(txs, w.mintTx(t, issuer, accts[7].Public(), 5, uint64(round)))
	}
	return txs
}

func encodeOutcomes(outs []*Outcome) []byte {
	var b bytes.Buffer
	for _, o := range outs {
		b.Write(o.Receipt.Encode())
		for _, n := range o.Spent {
			b.Write(n.Encode())
		}
		b.WriteString("|")
		for _, n := range o.Created {
			b.Write(n.Encode())
		}
		b.WriteString("#")
	}
	return b.Bytes()
}

func TestExecuteBlockEqualsSerial(t *testing.T) {
	w := newWorld(t)
	txs := mixedBlock(t, w)
	base := w.st.clone()
	serial, err := ExecuteSerial(base, w.code, w.pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, o := range serial {
		counts[o.Receipt.Status.String()+" "+o.Receipt.Phase.String()]++
	}
	want := map[string]int{"accepted ": 27, "refused admission": 3, "refused lookup": 3, "refused validity": 3}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("serial outcomes %v, want %v", counts, want)
	}
	wantBytes := encodeOutcomes(serial)
	serialState := base.clone()
	serialState.commit(serial)
	for run := 0; run < 20; run++ {
		outs, err := ExecuteBlock(base, w.code, w.pool, txs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encodeOutcomes(outs), wantBytes) {
			for i := range outs {
				if !bytes.Equal(outs[i].Receipt.Encode(), serial[i].Receipt.Encode()) {
					t.Fatalf("run %d tx %d: scheduled %v, serial %v", run, i, outs[i].Receipt.Err(), serial[i].Receipt.Err())
				}
			}
			t.Fatalf("run %d: effects differ from serial", run)
		}
		st := base.clone()
		st.commit(outs)
		if !bytes.Equal(st.dump(), serialState.dump()) {
			t.Fatalf("run %d: final state differs from serial", run)
		}
	}
	if bytes.Equal(serialState.dump(), base.dump()) {
		t.Fatal("block changed nothing")
	}
}

// TestExecuteBlockSameWithColdCaches: a block's outcomes, gas included, do
// not depend on what the process ran before. With every program compiled
// again (the lookup and calculation cache keeping nothing, the predicates
// compiled anew) and a new pool of VMs, serial and scheduled execution give
// the bytes of a process whose caches and VMs are warm.
func TestExecuteBlockSameWithColdCaches(t *testing.T) {
	w := newWorld(t)
	txs := mixedBlock(t, w)
	base := w.st.clone()
	if _, err := ExecuteSerial(base, w.code, w.pool, txs); err != nil { // warms the caches and the pool
		t.Fatal(err)
	}
	warm, err := ExecuteBlock(base, w.code, w.pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	want := encodeOutcomes(warm)

	kept := programs
	programs = programCache{cache.NewSized[[32]byte](0, (*vp.Program).Size)}
	t.Cleanup(func() { programs = kept })
	for name, execute := range map[string]func(State, Code, *vp.Pool, []*Tx) ([]*Outcome, error){
		"serial": ExecuteSerial, "scheduled": ExecuteBlock,
	} {
		cold := newWorld(t)
		outs, err := execute(base, cold.code, cold.pool, txs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encodeOutcomes(outs), want) {
			for i := range outs {
				if a, b := outs[i].Receipt, warm[i].Receipt; !bytes.Equal(a.Encode(), b.Encode()) {
					t.Fatalf("%s, cold: tx %d gas %+v (%v); warm: gas %+v (%v)", name, i, a.Gas, a.Err(), b.Gas, b.Err())
				}
			}
			t.Fatalf("%s, cold: effects differ from warm", name)
		}
	}
}
