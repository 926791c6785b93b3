package fractal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Lua of an export: extradata "<destination hex> <count> <input state key>"
// exports count token notes of 1 from the input (count 0: the input note
// itself, unchanged, provenance included) and keeps the change.
const (
	exportLookup = `return { string.sub(extradata, string.find(extradata, " ", 66, true) + 1) }`
	exportCalc   = `
local to = string.sub(extradata, 1, 64)
local sp = string.find(extradata, " ", 66, true)
local count = tonumber(string.sub(extradata, 66, sp - 1))
local n = inputs[1]
if count == 0 then return {}, { { to = to, note = n } } end
local i = string.find(n.value, ":", 46, true)
local prefix, total = string.sub(n.value, 1, i), tonumber(string.sub(n.value, i + 1))
local owner = string.sub(n.key, 1, 44)
local ex = {}
for k = 1, count do
  ex[k] = { to = to, note = { application = n.application, owner = n.owner,
    key = owner .. ":x" .. string.sub(txid, 1, 8) .. ":" .. k, value = prefix .. "1" } }
end
local out = {}
if total > count then
  out[1] = { application = n.application, owner = n.owner,
    key = owner .. ":c" .. string.sub(txid, 1, 8), value = prefix .. (total - count) }
end
return out, ex`
)

// world is three (or more) instances, each with its own store and key,
// the token and sig predicates deployed on each, and an issuer.
type world struct {
	ins        []*Instance
	token, sig notes.Hash
	alice      keys.PrivateKey
	nonce      uint64
}

func newWorld(t testing.TB, n int) *world {
	t.Helper()
	w := &world{alice: genKey(t)}
	for i := 0; i < n; i++ {
		in, _ := newTestInstance(t)
		w.token = deploy(t, in, "../examples/token/token.lua")
		w.sig = deploy(t, in, "../examples/sig/sig.lua")
		w.ins = append(w.ins, in)
	}
	for i := range w.ins {
		for j := range w.ins {
			if i != j {
				w.trust(t, j, i)
			}
		}
	}
	return w
}

// trust makes instance to trust instance from.
func (w *world) trust(t testing.TB, to, from int) {
	t.Helper()
	e, err := w.ins[from].TrustEntry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ins[to].AddPeer(e); err != nil {
		t.Fatal(err)
	}
}

func (w *world) tokens() notes.Pattern {
	p, err := notes.ParsePattern(fmt.Sprintf("*/%x/%x/*", w.token, w.sig))
	if err != nil {
		panic(err)
	}
	return p
}

// run signs tx with alice (or signer), queues it on in and seals; it
// returns the receipt.
func (w *world) run(t testing.TB, in *Instance, tx *phases.Tx, signer ...keys.PrivateKey) *phases.Receipt {
	t.Helper()
	w.nonce++
	tx.Nonce, tx.GasLimit = w.nonce, 10_000_000
	k := w.alice
	if len(signer) > 0 {
		k = signer[0]
	}
	tx.Signers = []keys.PublicKey{k.Public()}
	if err := tx.Sign(rand.Reader, k); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Submit(tx); err != nil {
		t.Fatal(err)
	}
	s, err := in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Receipts[len(s.Receipts)-1]
}

// mint makes alice's note of amount on instance i.
func (w *world) mint(t testing.TB, i int, amount int) notes.StateKey {
	t.Helper()
	mint := readFile(t, "../examples/token/mint.lua")
	rc := w.run(t, w.ins[i], &phases.Tx{
		Write:       notes.ConstraintSet{w.tokens()},
		Calculation: mint,
		Extradata:   []byte(fmt.Sprintf("%x %x %s GOLD %d", w.token, w.sig, w.alice.Public(), amount)),
	})
	if err := rc.Err(); err != nil {
		t.Fatal(err)
	}
	return rc.Outputs[0].Key
}

// exportTx exports count notes of 1 (0: the whole note) from the note at
// key on instance from to instance to.
func (w *world) exportTx(from int, to [32]byte, count int, key notes.StateKey) *phases.Tx {
	return &phases.Tx{
		Read:        notes.ConstraintSet{notes.ExactPattern(key)},
		Write:       notes.ConstraintSet{w.tokens()},
		Lookup:      []byte(exportLookup),
		Calculation: []byte(exportCalc),
		Extradata:   []byte(fmt.Sprintf("%x %d %s", to, count, key)),
	}
}

// supply sums GOLD over every instance's live token notes and every
// export its destination has not imported yet.
func (w *world) supply(t testing.TB) int {
	t.Helper()
	total := 0
	amount := func(n *notes.Note) int {
		v := string(n.Value)
		a, err := strconv.Atoi(v[strings.LastIndexByte(v, ':')+1:])
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	byID := map[[32]byte]*Instance{}
	for _, in := range w.ins {
		byID[in.ID()] = in
	}
	for _, in := range w.ins {
		ns, err := in.Notes(w.tokens())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			total += amount(n)
		}
		recs, err := in.Exports(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			done, err := byID[r.To].Imported(r.ID())
			if err != nil {
				t.Fatal(err)
			}
			if !done {
				total += amount(&r.Note)
			}
		}
	}
	return total
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestTransferAcrossThree moves alice's GOLD a → b → c and back to a,
// relaying with a real store on each side, and checks provenance, supply
// conservation, idempotent relays and replay verification of all three.
func TestTransferAcrossThree(t *testing.T) {
	w := newWorld(t, 3)
	a, b, c := w.ins[0], w.ins[1], w.ins[2]
	name := map[[32]byte]string{a.ID(): "a", b.ID(): "b", c.ID(): "c"}
	short := func(n *notes.Note) string {
		var p []string
		for _, id := range n.Provenance {
			p = append(p, name[[32]byte(id)])
		}
		return "[" + strings.Join(p, ",") + "]"
	}
	minted := w.mint(t, 0, 100)
	if got := w.supply(t); got != 100 {
		t.Fatalf("supply after mint %d", got)
	}
	// a exports 30 of 1 to b and keeps 70.
	rc := w.run(t, a, w.exportTx(0, b.ID(), 30, minted))
	if err := rc.Err(); err != nil {
		t.Fatal(err)
	}
	if got := w.supply(t); got != 100 {
		t.Fatalf("supply with exports in the outbox %d", got)
	}
	hop := func(from, to *Instance, want int) {
		t.Helper()
		res, err := Relay(context.Background(), from, to, w.alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Imported) != want || len(res.Refused) != 0 {
			t.Fatalf("relay imported %d refused %v, want %d", len(res.Imported), res.Refused, want)
		}
		again, err := Relay(context.Background(), from, to, w.alice)
		if err != nil || again.Pending != 0 || len(again.Imported) != 0 {
			t.Fatalf("second relay: %+v %v", again, err)
		}
		if got := w.supply(t); got != 100 {
			t.Fatalf("supply after relay %d", got)
		}
	}
	hop(a, b, 30)
	onB, err := b.Notes(w.tokens())
	if err != nil || len(onB) != 30 {
		t.Fatalf("b holds %d notes, %v", len(onB), err)
	}
	if got := short(onB[0]); got != "[a]" {
		t.Fatalf("provenance on b %s", got)
	}
	// b sends one of them on, whole, to c.
	rc = w.run(t, b, w.exportTx(1, c.ID(), 0, onB[0].StateKey()))
	if err := rc.Err(); err != nil {
		t.Fatal(err)
	}
	hop(b, c, 1)
	onC, _ := c.Notes(w.tokens())
	if len(onC) != 1 || short(onC[0]) != "[b,a]" {
		t.Fatalf("c holds %d notes, provenance %s", len(onC), short(onC[0]))
	}
	idA, idB := a.ID(), b.ID()
	if want := hex.EncodeToString(idB[:]) + "," + hex.EncodeToString(idA[:]) + "/"; !strings.HasPrefix(onC[0].StateKey().String(), want) {
		t.Fatalf("state key on c %s does not start with %s", onC[0].StateKey(), want)
	}
	// Return path: c sends it back to a, where it is a new note [c,b,a],
	// never merged with a's local change.
	rc = w.run(t, c, w.exportTx(2, a.ID(), 0, onC[0].StateKey()))
	if err := rc.Err(); err != nil {
		t.Fatal(err)
	}
	hop(c, a, 1)
	onA, _ := a.Notes(w.tokens())
	var got []string
	for _, n := range onA {
		got = append(got, short(n)+string(n.Value[strings.LastIndexByte(string(n.Value), ':'):]))
	}
	if strings.Join(got, " ") != "[]:70 [c,b,a]:1" {
		t.Fatalf("notes on a: %v", got)
	}
	for i, in := range w.ins {
		if _, err := in.Verify(context.Background(), nil); err != nil {
			t.Fatalf("instance %d: verify: %v", i, err)
		}
	}
}
