package tfhe

import (
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"

	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// Baby-step giant-step over [0, 2^32): a table of the 2^16 baby steps j·G
// (keyed by affine y) is built once per process, on first use, and each
// decryption takes at most 2^16 giant steps of −2^16·G. Points are brought
// to affine form 256 at a time with one field inversion (Montgomery's trick),
// so a giant step costs one addition and a few field multiplications. The
// table takes about 50 ms to build, so it is not kept on disk.
const (
	babyBits  = 16
	babySteps = 1 << babyBits
	chunk     = 256
)

var (
	babyOnce  sync.Once
	babyTable map[[32]byte]uint32
)

// affineY writes the canonical bytes of y = Y/Z for each point.
func affineY(ps []*edwards25519.Point, out [][32]byte) {
	zs := make([]field.Element, len(ps))
	ys := make([]field.Element, len(ps))
	prefix := make([]field.Element, len(ps))
	var acc field.Element
	acc.One()
	for i, p := range ps {
		_, y, z, _ := p.ExtendedCoordinates()
		zs[i].Set(z)
		ys[i].Set(y)
		prefix[i].Set(&acc)
		acc.Multiply(&acc, z)
	}
	acc.Invert(&acc)
	var inv field.Element
	for i := len(ps) - 1; i >= 0; i-- {
		inv.Multiply(&acc, &prefix[i]) // 1/z_i
		acc.Multiply(&acc, &zs[i])
		ys[i].Multiply(&ys[i], &inv)
		copy(out[i][:], ys[i].Bytes())
	}
}

func babySteps16() map[[32]byte]uint32 {
	babyOnce.Do(func() {
		babyTable = make(map[[32]byte]uint32, babySteps)
		g := edwards25519.NewGeneratorPoint()
		cur := edwards25519.NewIdentityPoint()
		ps := make([]*edwards25519.Point, chunk)
		ys := make([][32]byte, chunk)
		for base := 0; base < babySteps; base += chunk {
			for i := range ps {
				ps[i] = new(edwards25519.Point).Set(cur)
				cur.Add(cur, g)
			}
			affineY(ps, ys)
			for i, y := range ys {
				// y(j·G) = y(−j·G); distinct j below 2^16 never collide.
				babyTable[y] = uint32(base + i)
			}
		}
	})
	return babyTable
}

// discreteLog finds m < 2^32 with m·G = p.
func discreteLog(p *edwards25519.Point) (uint64, bool) {
	table := babySteps16()
	step := new(edwards25519.Point).ScalarBaseMult(group.ScalarFromUint64(babySteps))
	step.Negate(step)
	cur := new(edwards25519.Point).Set(p)
	ps := make([]*edwards25519.Point, chunk)
	ys := make([][32]byte, chunk)
	for base := 0; base < babySteps; base += chunk {
		for i := range ps {
			ps[i] = new(edwards25519.Point).Set(cur)
			cur.Add(cur, step)
		}
		affineY(ps, ys)
		for i, y := range ys {
			j, ok := table[y]
			if !ok {
				continue
			}
			// Same y means ±j·G; check the sign.
			m := uint64(base+i)<<babyBits | uint64(j)
			if new(edwards25519.Point).ScalarBaseMult(group.ScalarFromUint64(m)).Equal(p) == 1 {
				return m, true
			}
		}
	}
	return 0, false
}
