package vp

import (
	"crypto/sha256"
	"testing"
)

const bigState = `local t = {}
for i = 1, 10000 do t['key' .. i] = i end
function get(k) return t[k] end
function put(k, v) t[k] = v end`

// BenchmarkSerializeHash10k serializes and hashes a state holding a
// 10,000-entry table (the work after every step).
func BenchmarkSerializeHash10k(b *testing.B) {
	_, st, err := NewPool().RunState([]byte(bigState), nil, signers())
	if err != nil {
		b.Fatal(err)
	}
	v := newVM(200)
	libs := newLibIndex(v.libs)
	used := stepChunks{}
	d := &decoder{L: v.L, env: v.L.NewTable(), libs: libs, meter: v.meterByName, compile: func(src []byte) (*chunk, error) {
		c, err := cachedChunk(src)
		if err == nil {
			used.add(c)
		}
		return c, err
	}}
	G, err := d.decode(st)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(st)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := serialize(G, libs, used.lookup)
		if err != nil {
			b.Fatal(err)
		}
		sha256.Sum256(out)
	}
}

// BenchmarkRunState10k is one whole step on that state: deserialize, check
// the canonical form, run a one-line fragment, serialize.
func BenchmarkRunState10k(b *testing.B) {
	p := NewPool()
	_, st, err := p.RunState([]byte(bigState), nil, signers())
	if err != nil {
		b.Fatal(err)
	}
	frag := []byte(`put('key5', get('key5') + 1)`)
	b.SetBytes(int64(len(st)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.RunState(frag, st, signers()); err != nil {
			b.Fatal(err)
		}
	}
}
