package phases

import (
	"crypto/sha256"

	"github.com/fractalvm/fractal/internal/cache"
	"github.com/fractalvm/fractal/vp"
)

// maxCachedProgramBytes bounds the compiled lookup and calculation code
// kept in memory (vp.Program.Size): a transaction of 1 MiB compiles to
// about 10 MiB. Code used again stays, one-off code passes (internal/cache).
const maxCachedProgramBytes = 256 << 20

// programs keeps compiled lookup and calculation code by name and source
// hash: wallets send the same code in many transactions, and compiling
// (parse, instrument, compile) costs more than running it.
type programCache struct {
	c *cache.Cache[[32]byte, *vp.Program]
}

var programs = programCache{cache.NewSized[[32]byte](maxCachedProgramBytes, (*vp.Program).Size)}

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
