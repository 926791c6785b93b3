package chain

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fractalvm/fractal/keys"
)

// An Authority is what an instance's blocks answer to, as whoever checks
// them trusts it: the executor keys that sign a solo instance's blocks
// (ExecutorKeys), or the validator set whose consensus commits certify a
// validator-set instance's blocks (certify.ValidatorSet). Certify checks
// b with the certificate carried beside it (none for a signed block); the
// error says why b is not certified.
type Authority interface {
	Certify(b *Block, cert []byte) error
}

// ExecutorKeys is a solo instance's authority: a block is certified when
// one of the keys signed it.
type ExecutorKeys []keys.PublicKey

// Certify checks that one of the keys signed b and that b carries no
// certificate.
func (ks ExecutorKeys) Certify(b *Block, cert []byte) error {
	if len(cert) != 0 {
		return errors.New("a block signed by an executor carries no certificate")
	}
	if !slices.Contains(ks, keys.PublicKey(b.Executor)) {
		return fmt.Errorf("block %d is signed by %s, not by a trusted executor key", b.Height, keys.PublicKey(b.Executor))
	}
	return VerifyBlock(b)
}
