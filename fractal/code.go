package fractal

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/cache"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/vp"
)

// registry is the code registry: Lua source stored by SHA-256, compiled
// programs cached in memory up to maxCachedCodeBytes (vp.Program.Size).
// Stored code is immutable, so a cached program never goes stale.
type registry struct {
	db    *badger.DB
	cache *cache.Cache[notes.Hash, *vp.Program]
}

// maxCachedCodeBytes bounds the compiled deployed code kept in memory.
const maxCachedCodeBytes = 256 << 20

func newRegistry(db *badger.DB) *registry {
	return &registry{db: db, cache: cache.NewSized[notes.Hash](maxCachedCodeBytes, (*vp.Program).Size)}
}

// Deploy compiles src and stores it under its SHA-256. Code that does not
// compile is refused and nothing is stored. Deploying the same code again
// returns the same hash and changes nothing.
func (in *Instance) Deploy(src []byte) (notes.Hash, error) {
	if len(src) > chain.MaxCodeBytes {
		return notes.Hash{}, fmt.Errorf("fractal: deploy: code is %d bytes, limit %d", len(src), chain.MaxCodeBytes)
	}
	if err := in.errValidatorSet("deploy"); err != nil {
		return notes.Hash{}, err
	}
	h := sha256.Sum256(src)
	prog, err := vp.Compile(chain.CodeName(h), src)
	if err != nil {
		return notes.Hash{}, fmt.Errorf("fractal: deploy: %w", err)
	}
	in.lock()
	defer in.mu.Unlock()
	err = in.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(hashKey(prefixCode, h)); err == nil {
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.Set(hashKey(prefixCode, h), src)
	})
	if err != nil {
		return notes.Hash{}, fmt.Errorf("fractal: deploy: %w", err)
	}
	in.code.cache.Put(h, prog)
	return h, nil
}

// Program returns the compiled program whose source has SHA-256 h, from the
// cache or compiled from the store. It implements phases.Code: an unknown
// hash gives an error wrapping phases.ErrUnknownCode.
func (in *Instance) Program(h notes.Hash) (*vp.Program, error) {
	return in.code.program(h)
}

// Code returns the deployed source with SHA-256 h.
func (in *Instance) Code(h notes.Hash) ([]byte, error) {
	var src []byte
	err := in.db.View(func(txn *badger.Txn) (err error) {
		src, err = getValue(txn, hashKey(prefixCode, h))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("fractal: unknown code %x", h)
	}
	if err != nil {
		return nil, fmt.Errorf("fractal: code %x: %w", h, err)
	}
	return src, nil
}

func (r *registry) program(h notes.Hash) (*vp.Program, error) {
	if p, ok := r.cache.Get(h); ok {
		return p, nil
	}
	var src []byte
	err := r.db.View(func(txn *badger.Txn) (err error) {
		src, err = getValue(txn, hashKey(prefixCode, h))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w %x", phases.ErrUnknownCode, h)
	}
	if err != nil {
		return nil, fmt.Errorf("code %x: %w", h, err)
	}
	// Stored code compiled when deployed; a failure here means the store
	// or the compiler changed. The *vp.Error is returned as is, so phases
	// refuses the transaction rather than failing the host.
	p, err := vp.Compile(chain.CodeName(h), src)
	if err != nil {
		return nil, err
	}
	r.cache.Put(h, p)
	return p, nil
}
