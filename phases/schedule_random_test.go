package phases

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/notes"
)

// randomBlock is a block of transactions over six keys that spend what a
// scan finds and create notes whose values name what they spent, under
// random exact and prefix constraints: many conflict, many are refused
// (an input outside the write constraints, an output key taken, a scan
// outside the read constraints), and every outcome depends on what earlier
// transactions did.
func randomBlock(t testing.TB, r *rand.Rand, w *world, app notes.Hash) []*Tx {
	appHex := hex.EncodeToString(app[:])
	key := func() string { return fmt.Sprintf("k%d", r.IntN(6)) }
	exact := func(k string) notes.Pattern {
		return notes.ExactPattern(notes.StateKey{Application: app, Owner: app, Key: []byte(k)})
	}
	all := notes.PatternFromKeyPrefix(notes.StateKey{Application: app, Owner: app, Key: []byte("k")})
	set := func(wide, most int) notes.ConstraintSet {
		if r.IntN(wide) == 0 {
			return notes.ConstraintSet{all}
		}
		var s notes.ConstraintSet
		for range r.IntN(most + 1) {
			s = append(s, exact(key()))
		}
		return s
	}
	lookup := []byte(`local p, n = string.match(extradata, "^(%S+) (%d+)")
local found, out = scan(p), {}
for i = 1, math.min(tonumber(n), #found) do out[#out + 1] = found[i] end
return out`)
	calc := []byte(fmt.Sprintf(`local parts = {}
for w in string.gmatch(extradata, "%%S+") do parts[#parts + 1] = w end
local acc = ""
for _, n in ipairs(inputs) do acc = acc .. n.key .. "=" .. n.value .. ";" end
local outs = {}
for i = 3, #parts do
  outs[#outs + 1] = {application = %[1]q, owner = %[1]q, key = parts[i], value = string.sub(txid, 1, 8) .. "|" .. string.sub(acc, 1, 48)}
end
return outs`, appHex))
	txs := make([]*Tx, 40)
	for i := range txs {
		scanP := all
		if r.IntN(2) == 0 {
			scanP = exact(key())
		}
		words := []string{scanP.String(), fmt.Sprint(r.IntN(3))}
		for range r.IntN(3) {
			words = append(words, key())
		}
		tx := &Tx{Nonce: uint64(i), GasLimit: 1_000_000, Read: set(4, 2), Write: set(8, 3),
			Lookup: lookup, Calculation: calc, Extradata: []byte(strings.Join(words, " "))}
		tx.MarkVerified() // no signers: the scheduler, not admission, is under test
		txs[i] = tx
	}
	return txs
}

// TestExecuteBlockEqualsSerialRandom: for many random conflicting blocks,
// the scheduled outcomes and final state are byte for byte the serial ones.
func TestExecuteBlockEqualsSerialRandom(t *testing.T) {
	w := newWorld(t)
	app := w.code.deploy(t, "yes", []byte("return true"))
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 1))
		base := newMemState()
		for k := range 6 {
			if r.IntN(2) == 0 {
				base.put(notes.Note{Application: app, Owner: app, Key: []byte(fmt.Sprintf("k%d", k)), Value: []byte("genesis")})
			}
		}
		txs := randomBlock(t, r, w, app)
		serial, err := ExecuteSerial(base, w.code, w.pool, txs)
		if err != nil {
			t.Fatal(err)
		}
		accepted := 0
		for _, o := range serial {
			if o.Receipt.Status == Accepted {
				accepted++
			}
		}
		if accepted == 0 || accepted == len(txs) {
			t.Fatalf("seed %d: %d of %d accepted; the workload must mix both", seed, accepted, len(txs))
		}
		want := encodeOutcomes(serial)
		for run := range 3 {
			outs, err := ExecuteBlock(base, w.code, w.pool, txs)
			if err != nil {
				t.Fatal(err)
			}
			if got := encodeOutcomes(outs); !bytes.Equal(got, want) {
				for i := range outs {
					if !bytes.Equal(outs[i].Receipt.Encode(), serial[i].Receipt.Encode()) {
						t.Fatalf("seed %d run %d tx %d: scheduled %v, serial %v", seed, run, i, outs[i].Receipt.Err(), serial[i].Receipt.Err())
					}
				}
				t.Fatalf("seed %d run %d: effects differ from serial", seed, run)
			}
		}
	}
}
