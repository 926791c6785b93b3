package phases

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/vp"
)

// world is a state, a code registry with the example predicates and a VM
// pool: everything Execute needs, with real Lua.
type world struct {
	st                  *memState
	code                memCode
	pool                *vp.Pool
	token, sig, escrow  notes.Hash
	mint, lookup, trans []byte
}

func newWorld(t testing.TB) *world {
	w := &world{st: newMemState(), code: memCode{}, pool: vp.NewPool()}
	w.token = w.code.deploy(t, "token", readExample(t, "token/token.lua"))
	w.sig = w.code.deploy(t, "sig", readExample(t, "sig/sig.lua"))
	w.escrow = w.code.deploy(t, "escrow", readExample(t, "escrow/escrow.lua"))
	w.mint = readExample(t, "token/mint.lua")
	w.lookup = readExample(t, "token/lookup.lua")
	w.trans = readExample(t, "token/transfer.lua")
	return w
}

// gold is a token note of issuer's GOLD owned (through sig) by owner.
func (w *world) gold(issuer, owner keys.PublicKey, amount int, tag string) notes.Note {
	return notes.Note{
		Application: w.token, Owner: w.sig,
		Key:   []byte(owner.String() + ":" + tag),
		Value: []byte(fmt.Sprintf("%s:GOLD:%d", issuer, amount)),
	}
}

// ownerPrefix is the write pattern for token notes keyed to owner.
func (w *world) ownerPrefix(owner keys.PublicKey) notes.Pattern {
	return notes.PatternFromKeyPrefix(notes.StateKey{Application: w.token, Owner: w.sig, Key: []byte(owner.String() + ":")})
}

func (w *world) mintTx(t testing.TB, issuer keys.PrivateKey, to keys.PublicKey, amount int, nonce uint64) *Tx {
	tx := &Tx{
		Nonce: nonce, GasLimit: 1_000_000,
		Write:       notes.ConstraintSet{w.ownerPrefix(to)},
		Calculation: w.mint,
		Extradata:   []byte(fmt.Sprintf("%x %x %s GOLD %d", w.token, w.sig, to, amount)),
		Signers:     []keys.PublicKey{issuer.Public()},
	}
	return signed(t, tx, issuer)
}

// transferTx sends amount from the notes ins (owned by from) to to, with
// the change back to from. Its write constraints are the inputs and the
// exact output keys.
func (w *world) transferTx(t testing.TB, from keys.PrivateKey, ins []notes.Note, to keys.PublicKey, amount int, nonce uint64) *Tx {
	tx := &Tx{Nonce: nonce, GasLimit: 1_000_000, Lookup: w.lookup, Calculation: w.trans, Signers: []keys.PublicKey{from.Public()}}
	words := []string{to.String(), fmt.Sprint(amount)}
	for _, n := range ins {
		k := n.StateKey()
		tx.Read = append(tx.Read, notes.ExactPattern(k))
		tx.Write = append(tx.Write, notes.ExactPattern(k))
		words = append(words, k.String())
	}
	tag := transferTag(ins[0])
	tx.Write = append(tx.Write, notes.ExactPattern(keyOf(w.gold(to, to, 1, tag+":1"))), notes.ExactPattern(keyOf(w.gold(to, from.Public(), 1, tag+":2"))))
	tx.Extradata = []byte(strings.Join(words, " "))
	return signed(t, tx, from)
}

// exec runs tx and commits an accepted outcome.
func (w *world) exec(t testing.TB, tx *Tx) *Outcome {
	t.Helper()
	out, err := Execute(w.st, w.code, w.pool, tx)
	if err != nil {
		t.Fatal(err)
	}
	w.st.commit([]*Outcome{out})
	return out
}

func accepted(t testing.TB, out *Outcome) {
	t.Helper()
	if err := out.Receipt.Err(); err != nil {
		t.Fatalf("%v (log %q)", err, out.Receipt.Log)
	}
}

func keyOf(n notes.Note) notes.StateKey { return n.StateKey() }

// transferTag is transfer.lua's output key tag for a first input n.
func transferTag(n notes.Note) string {
	h := sha256.Sum256(append(append(append([]byte{}, n.Key...), 0), n.Value...))
	return hex.EncodeToString(h[:8])
}
