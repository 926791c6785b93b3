package nodetest

import (
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// Trust adds other's trust entry to tk's trust file: tk imports other's
// exports.
func (tk *Token) Trust(t testing.TB, other *Token) {
	t.Helper()
	e, err := other.In.TrustEntry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.In.AddPeer(e); err != nil {
		t.Fatal(err)
	}
}

// ExportTx exports the note at key, unchanged, to the instance dest (the
// calculation of examples/demo-relay.sh), signed by its owner.
func ExportTx(t testing.TB, owner keys.PrivateKey, dest [32]byte, key notes.StateKey, nonce uint64) *phases.Tx {
	return Sign(t, &phases.Tx{
		Nonce: nonce, GasLimit: 1_000_000,
		Read:        notes.ConstraintSet{notes.ExactPattern(key)},
		Write:       notes.ConstraintSet{notes.ExactPattern(key)},
		Lookup:      []byte(`return { string.sub(extradata, 66) }`),
		Calculation: []byte(`return {}, { { to = string.sub(extradata, 1, 64), note = inputs[1] } }`),
		Extradata:   []byte(fmt.Sprintf("%x %s", dest, key)),
	}, owner)
}

// Pair is two token instances run as nodes, with alice holding a GOLD note
// of 100 on A.
type Pair struct {
	A, B     *Token // closed: their nodes hold them
	IDA, IDB [32]byte
	NA, NB   *Node
	Alice    keys.PrivateKey
	Seed     Note
}

// StartPair creates the two instances, lets trust fill their trust files
// while they are open (Token.Trust), mints alice's note on A and starts
// both nodes.
func StartPair(t testing.TB, trust func(a, b *Token)) *Pair {
	t.Helper()
	p := &Pair{A: NewToken(t), B: NewToken(t), Alice: Key(t)}
	trust(p.A, p.B)
	p.Seed = p.A.MintTo(t, []keys.PublicKey{p.Alice.Public()}, 100)[0]
	p.IDA, p.IDB = p.A.In.ID(), p.B.In.ID()
	p.A.Close(t)
	p.B.Close(t)
	p.NA, p.NB = Start(t, p.A.Home, Config()), Start(t, p.B.Home, Config())
	return p
}
