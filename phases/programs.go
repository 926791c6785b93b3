package phases

import (
	"crypto/sha256"

	"github.com/fractalvm/fractal/internal/cache"
	"github.com/fractalvm/fractal/vp"
)

// maxCachedPrograms bounds the compiled lookup and calculation code kept in
// memory (internal/cache: code used again stays, one-off code passes).
const maxCachedPrograms = 4096

// programCache keeps compiled lookup and calculation code by name and source
// hash: wallets send the same code in many transactions, and compiling
// (parse, instrument, compile) costs more than running it.
type programCache struct {
	c *cache.Cache[[32]byte, *vp.Program]
}

var programs = programCache{cache.New[[32]byte, *vp.Program](maxCachedPrograms)}

// compile returns the compiled program for src under name, from the cache
// when it is there. Compile errors are not cached.
func (pc programCache) compile(name string, src []byte) (*vp.Program, error) {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(src)
	var key [32]byte
	h.Sum(key[:0])
	if p, ok := pc.c.Get(key); ok {
		return p, nil
	}
	p, err := vp.Compile(name, src)
	if err != nil {
		return nil, err
	}
	pc.c.Put(key, p)
	return p, nil
}
