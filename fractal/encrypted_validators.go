package fractal

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/tfhe"
)

// AttachGenesisThresholdKey stores pk, the key the validators made by
// their DKG at genesis (decision 160), as a validator-set instance's
// threshold key. Only before the first decided block: afterwards the key
// changes only through the chain. Attaching the stored key again changes
// nothing.
func (in *Instance) AttachGenesisThresholdKey(pk *tfhe.PublicKey) error {
	if in.validators == nil {
		return errors.New("fractal: attach genesis threshold key: not a validator-set instance")
	}
	if pk.Origin != tfhe.OriginDKG {
		return fmt.Errorf("fractal: attach genesis threshold key: the key's origin is %s, a validator set takes only a DKG's", pk.Origin)
	}
	return in.attachKey(pk, "attach genesis threshold key", func(txn *badger.Txn, old *tfhe.PublicKey) error {
		if old != nil {
			return errors.New("another threshold key is attached")
		}
		if _, err := getValue(txn, metaDecided); err == nil {
			return errors.New("the instance has decided blocks")
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return nil
	})
}
