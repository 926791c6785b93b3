package vp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/fractalvm/fractal/internal/cache"
)

// TestRunStateCacheEvictionSameBytes: when the chunk cache has forgotten a
// source between the step's own fragment being fetched and the state being
// decoded, the fragment and the state's copy of the same source become two
// compiled chunks. The state must still name that source once: its bytes
// may not depend on what the process ran before.
func TestRunStateCacheEvictionSameBytes(t *testing.T) {
	init := []byte("kept = {}\nfunction keep(f) kept[#kept+1] = f end\n")
	// The fragment stores a closure of its own chunk in the state; its hash
	// must sort after the initial chunk's, so that decoding meets the
	// initial chunk before the fragment's source.
	var frag []byte
	for i := 0; ; i++ {
		frag = []byte(fmt.Sprintf("keep(function() return 1 end) -- %d\n", i))
		a, b := sha256.Sum256(init), sha256.Sum256(frag)
		if bytes.Compare(a[:], b[:]) < 0 {
			break
		}
	}
	p := NewPool()
	step := func(src, st []byte) []byte {
		t.Helper()
		_, out, err := p.RunState(src, st, signers(pub1))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	s1 := step(init, nil)
	s2 := step(frag, s1)
	want := step(frag, s2)

	// Same step again with a cache that forgets at once, so every fetch of
	// a source compiles a chunk of its own.
	kept := chunkCache
	chunkCache = cache.New[[32]byte, *chunk](0)
	t.Cleanup(func() { chunkCache = kept })
	got := step(frag, s2)
	if !bytes.Equal(got, want) {
		t.Fatalf("state bytes depend on the chunk cache: %d bytes, want %d", len(got), len(want))
	}
	step(frag, got) // and the state stays readable
}
