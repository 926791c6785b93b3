package validator

import (
	"fmt"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/cometbft/cometbft/store"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
)

// CertifiedManifests returns the certified manifest file of the running
// validator's chain (decision 138) and the number of blocks in it.
func (n *Node) CertifiedManifests() ([]byte, int, error) {
	return certifiedManifests(n.in, n.node.BlockStore())
}

// ExportManifests returns the certified manifest file of the chain in
// home, a validator's home whose validator is not running (CometBFT's
// block store, which holds the certificates, is opened for reading), and
// the number of blocks in it.
func ExportManifests(home string) ([]byte, int, error) {
	conf, err := loadConfig(home)
	if err != nil {
		return nil, 0, fmt.Errorf("validator: %w", err)
	}
	in, err := fractal.Open(home)
	if err != nil {
		return nil, 0, fmt.Errorf("validator: %w", err)
	}
	defer in.Close()
	db, err := dbm.NewDB("blockstore", dbm.BackendType(conf.DBBackend), conf.DBDir())
	if err != nil {
		return nil, 0, fmt.Errorf("validator: CometBFT's block store: %w", err)
	}
	defer db.Close()
	return certifiedManifests(in, store.NewBlockStore(db))
}

// certifiedManifests is the file of in's blocks from genesis, each with
// the certificate bs holds for it, up to the last block a committed
// header certifies (the head's waits for the next consensus block).
func certifiedManifests(in *fractal.Instance, bs *store.BlockStore) ([]byte, int, error) {
	all, err := in.Manifests()
	if err != nil {
		return nil, 0, err
	}
	var blocks []*chain.Block
	certs := [][]byte{} // a certified file even when empty
	for _, b := range all {
		at, side, err := in.DecidedAt(b.Height)
		if err != nil {
			return nil, 0, err
		}
		if bs.Height() < int64(at)+1 {
			break // not certified yet
		}
		cert, _, err := certificateAt(bs, int64(at)+1, side)
		if err != nil {
			return nil, 0, fmt.Errorf("validator: block %d: %w", b.Height, err)
		}
		blocks, certs = append(blocks, b), append(certs, cert)
	}
	return chain.EncodeCertifiedManifests(blocks, certs), len(blocks), nil
}
