package wallet

import (
	"fmt"
	"strings"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/shielded"
)

// TokenNotes is the pattern of the transparent notes Shield can spend for
// owner: the token application's local notes whose key starts with the
// owner's public key and ":" (the layout of examples/token with the sig
// owner predicate).
func TokenNotes(tok Token, owner keys.PublicKey) notes.Pattern {
	return notes.AnyPattern().WithProvenance(nil).WithApplication(tok.App).WithKeyPrefix([]byte(owner.String() + ":"))
}

// PickTokenNotes picks, from the notes TokenNotes matches (in the order
// given, state-key order when listed by an instance), notes of the token
// (value "<issuer>:<SYMBOL>:<amount>") until they cover amount or
// shielded.MaxShieldIns are picked. It skips the token's pool notes and
// values that are not the token's. It refuses when the picked notes do not
// cover amount.
func PickTokenNotes(all []*notes.Note, tok Token, owner keys.PublicKey, amount uint64) ([]*notes.Note, error) {
	var picked []*notes.Note
	var total uint64
	for _, n := range all {
		v, ok := strings.CutPrefix(string(n.Value), tok.Name+":")
		var x uint64
		if _, err := fmt.Sscan(v, &x); !ok || err != nil || n.Owner == shielded.PoolOwner {
			continue
		}
		picked, total = append(picked, n), total+x
		if total >= amount || len(picked) == shielded.MaxShieldIns {
			break
		}
	}
	if total < amount {
		return nil, fmt.Errorf("%s holds %d %s in its first %d notes, %d wanted", owner, total, tok.Name, len(picked), amount)
	}
	return picked, nil
}
