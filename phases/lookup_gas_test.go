package phases

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// luaGas is the gas src uses as a lookup when get and scan are free host
// functions returning ret: what the lookup's own Lua costs, so that the
// receipt's lookup gas less it is exactly what the oracle charged.
func luaGas(t *testing.T, w *world, src string, ret any) uint64 {
	t.Helper()
	prog, err := vp.Compile("lookup", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	free := vp.HostFunc(func([]any) ([]any, error) { return []any{ret}, nil })
	res, err := w.pool.Run(prog, vp.Call{Globals: map[string]any{"get": free, "scan": free}, Limits: limitsWithGas(1_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	return res.GasUsed
}

// lookupTx is a lookup-only transaction signed by priv, reading and
// writing read.
func lookupTx(t *testing.T, priv keys.PrivateKey, read notes.ConstraintSet, src string, gas uint64) *Tx {
	tx := &Tx{Nonce: 1, GasLimit: gas, Read: read, Write: read, Lookup: []byte(src), Signers: []keys.PublicKey{priv.Public()}}
	return signed(t, tx, priv)
}

// spans is ⌈size/32⌉, written out so the tests do not reuse noteGas.
func spans(size int) uint64 { return uint64((size + 31) / 32) }

func TestGetGas(t *testing.T) {
	w := newWorld(t)
	alice := testKey(t, 1)
	present := notes.Note{Application: w.token, Owner: w.sig, Provenance: [][]byte{bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20)},
		Key: []byte("0123456789"), Value: bytes.Repeat([]byte("v"), 100)}
	w.st.put(present)
	absent := notes.StateKey{Application: w.token, Owner: w.sig, Key: []byte("nothing here")}
	read := notes.ConstraintSet{notes.AnyPattern().WithApplication(w.token)}
	for _, tc := range []struct {
		name string
		key  notes.StateKey
		ret  any
		want uint64 // what get charges beyond the 1 of every host call
	}{
		{"absent", absent, nil, 10},
		// 10 + 8 + ⌈(10 key + 100 value + 40 provenance) / 32⌉ = 10 + 8 + 5
		{"present", present.StateKey(), &present, 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("local n = get(%q) return {}", tc.key.String())
			out, err := Execute(w.st, w.code, w.pool, lookupTx(t, alice, read, src, 100_000))
			if err != nil {
				t.Fatal(err)
			}
			accepted(t, out)
			if got := out.Receipt.Gas.Lookup - luaGas(t, w, src, tc.ret); got != tc.want {
				t.Fatalf("get charged %d, want %d", got, tc.want)
			}
		})
	}
}

// scanWorld holds n notes of A with values of growing size, and notes of B
// that the scan pattern matches but A's read constraints leave out.
func scanWorld(t *testing.T, n int) (*world, keys.PrivateKey, string, []any) {
	w := newWorld(t)
	alice, bob := testKey(t, 1), testKey(t, 2)
	var found []any
	for i := range n {
		note := w.gold(alice.Public(), alice.Public(), 1, fmt.Sprintf("%03d", i))
		note.Value = append(note.Value, bytes.Repeat([]byte("x"), 7*i)...)
		w.st.put(note)
		found = append(found, &note)
		w.st.put(w.gold(bob.Public(), bob.Public(), 1, fmt.Sprintf("%03d", i)))
	}
	all := notes.AnyPattern().WithApplication(w.token).WithOwner(w.sig).String()
	return w, alice, all, found
}

func TestScanGasByWork(t *testing.T) {
	const n = 40
	w, alice, all, found := scanWorld(t, n)
	src := fmt.Sprintf("local found = scan(%q) assert(#found == %d) return {}", all, n)
	out, err := Execute(w.st, w.code, w.pool, lookupTx(t, alice, notes.ConstraintSet{w.ownerPrefix(alice.Public())}, src, 1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, out)
	want := uint64(LookupCallGas) + n*LookupNoteGas
	for _, v := range found {
		note := v.(*notes.Note)
		want += spans(len(note.Key) + len(note.Value))
	}
	if got := out.Receipt.Gas.Lookup - luaGas(t, w, src, found); got != want {
		t.Fatalf("scan of %d notes charged %d, want %d (B's notes outside the read constraints are free)", n, got, want)
	}
}

// countingState counts the notes its Scan hands out.
type countingState struct {
	State
	seen atomic.Int64
}

func (s *countingState) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	return s.State.Scan(p, func(n *notes.Note) error {
		s.seen.Add(1)
		return fn(n)
	})
}

func TestScanOutOfGasStopsEarly(t *testing.T) {
	const n = 200
	w, alice, all, found := scanWorld(t, n)
	// pcall cannot turn out of gas into a partial result.
	src := fmt.Sprintf("local ok, r = pcall(scan, %q) if ok then return r end return {}", all)
	first := found[0].(*notes.Note)
	// Enough for the Lua, the call and 5 notes (the first ones are the smallest).
	limit := luaGas(t, w, src, []any{}) + LookupCallGas + 5*(LookupNoteGas+spans(len(first.Key)+len(first.Value)))
	st := &countingState{State: w.st}
	before := w.st.dump()
	out, err := Execute(st, w.code, w.pool, lookupTx(t, alice, notes.ConstraintSet{w.ownerPrefix(alice.Public())}, src, limit))
	if err != nil {
		t.Fatal(err)
	}
	rc := out.Receipt
	wantReason := fmt.Sprintf("lookup:1: out of gas (limit %d)", limit)
	if rc.Status != Refused || rc.Phase != PhaseLookup || rc.Reason != wantReason || rc.Gas.Lookup != limit {
		t.Fatalf("got %s in %s: %q gas %d, want refused in lookup: %q gas %d", rc.Status, rc.Phase, rc.Reason, rc.Gas.Lookup, wantReason, limit)
	}
	if out.Spent != nil || out.Created != nil || !bytes.Equal(before, w.st.dump()) {
		t.Fatal("refusal had effects")
	}
	// The scan stopped at the note it could not pay for: A's sixth (A's keys
	// sort before B's), not after reading all 400.
	if seen := st.seen.Load(); seen != 6 {
		t.Fatalf("scan read %d notes after the budget ran out", seen)
	}
}

// A scan's gas must not depend on notes outside the read constraints, which
// a non-conflicting transaction running beside it may be writing.
func TestScanGasScheduledEqualsSerial(t *testing.T) {
	w, alice, all, _ := scanWorld(t, 10)
	issuer, carol := testKey(t, 3), testKey(t, 4)
	var txs []*Tx
	for i := range 8 {
		txs = append(txs, w.mintTx(t, issuer, carol.Public(), 5, uint64(i+1)))
		src := fmt.Sprintf("local found = scan(%q) return {}", all)
		tx := &Tx{Nonce: uint64(100 + i), GasLimit: 1_000_000, Read: notes.ConstraintSet{w.ownerPrefix(alice.Public())},
			Write: notes.ConstraintSet{w.ownerPrefix(alice.Public())}, Lookup: []byte(src), Signers: []keys.PublicKey{alice.Public()}}
		txs = append(txs, signed(t, tx, alice))
	}
	serial, err := ExecuteSerial(w.st, w.code, w.pool, txs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range serial {
		if err := o.Receipt.Err(); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	want := encodeOutcomes(serial)
	for run := range 20 {
		outs, err := ExecuteBlock(w.st, w.code, w.pool, txs)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeOutcomes(outs); !bytes.Equal(got, want) {
			var diff []string
			for i := range outs {
				if outs[i].Receipt.Gas != serial[i].Receipt.Gas {
					diff = append(diff, fmt.Sprintf("tx %d gas %+v, serial %+v", i, outs[i].Receipt.Gas, serial[i].Receipt.Gas))
				}
			}
			t.Fatalf("run %d differs from serial: %s", run, strings.Join(diff, "; "))
		}
	}
}

// BenchmarkScan1024 is a lookup scanning the most notes a scan may return
// (1 KiB values): its time beside the gas it is now charged.
func BenchmarkScan1024(b *testing.B) {
	w := newWorld(b)
	alice := testKey(b, 1)
	for i := range MaxScanNotes {
		note := w.gold(alice.Public(), alice.Public(), 1, fmt.Sprintf("%04d", i))
		note.Value = bytes.Repeat([]byte("x"), 1024)
		w.st.put(note)
	}
	p := w.ownerPrefix(alice.Public())
	tx := &Tx{Nonce: 1, GasLimit: 10_000_000, Read: notes.ConstraintSet{p}, Write: notes.ConstraintSet{p},
		Lookup: []byte(fmt.Sprintf("local found = scan(%q) return {}", p.String())), Signers: []keys.PublicKey{alice.Public()}}
	tx = signed(b, tx, alice)
	b.ResetTimer()
	var gas uint64
	for b.Loop() {
		out, err := Execute(w.st, w.code, w.pool, tx)
		if err != nil || out.Receipt.Status != Accepted {
			b.Fatal(err, out.Receipt.Err())
		}
		gas = out.Receipt.Gas.Lookup
	}
	b.ReportMetric(float64(gas), "gas/op")
}
