package phases

import (
	"crypto/sha256"
	"sync"

	"github.com/fractalvm/fractal/vp"
)

// maxCachedPrograms bounds the compiled lookup and calculation code kept in
// memory; the cache starts over when full.
const maxCachedPrograms = 4096

// programCache keeps compiled lookup and calculation code by name and source
// hash: wallets send the same code in many transactions, and compiling
// (parse, instrument, compile) costs more than running it.
type programCache struct {
	mu sync.Mutex
	m  map[[32]byte]*vp.Program
}

var programs = programCache{m: make(map[[32]byte]*vp.Program)}

// compile returns the compiled program for src under name, from the cache
// when it is there. Compile errors are not cached.
func (c *programCache) compile(name string, src []byte) (*vp.Program, error) {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(src)
	var key [32]byte
	h.Sum(key[:0])
	c.mu.Lock()
	p := c.m[key]
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := vp.Compile(name, src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedPrograms {
		clear(c.m)
	}
	c.m[key] = p
	c.mu.Unlock()
	return p, nil
}
