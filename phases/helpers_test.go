package phases

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

// memState is an in-memory State for tests (the instance's is badger).
type memState struct {
	mu sync.RWMutex
	m  map[string]*notes.Note
}

func newMemState() *memState { return &memState{m: make(map[string]*notes.Note)} }

func (s *memState) put(n notes.Note) { s.m[n.StateKey().String()] = &n }

func (s *memState) Get(k notes.StateKey) (*notes.Note, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[k.String()], nil
}

func (s *memState) Scan(p notes.Pattern, fn func(*notes.Note) error) error {
	s.mu.RLock()
	var ks []string
	for k, n := range s.m {
		if p.Match(n.StateKey()) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	found := make([]*notes.Note, len(ks))
	for i, k := range ks {
		found[i] = s.m[k]
	}
	s.mu.RUnlock()
	for _, n := range found {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// commit applies outcomes as phase 4 would (Outcome.Effects).
func (s *memState) commit(outs []*Outcome) {
	for _, o := range outs {
		o.Effects(func(n *notes.Note, created bool) {
			if created {
				s.put(*n)
			} else {
				delete(s.m, n.StateKey().String())
			}
		})
	}
}

// dump is the whole state as bytes, in key order.
func (s *memState) dump() []byte {
	var ks []string
	for k := range s.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b bytes.Buffer
	for _, k := range ks {
		b.WriteString(k)
		b.Write(s.m[k].Encode())
	}
	return b.Bytes()
}

func (s *memState) clone() *memState {
	c := newMemState()
	for k, n := range s.m {
		c.m[k] = n
	}
	return c
}

// memCode is an in-memory code registry with the host functions an
// instance registers.
type memCode map[notes.Hash]*vp.Program

var testHosts = MustHosts(HostFunc{Name: smartlua.HostName, Stages: StagePredicate,
	New: func(run HostRun) vp.HostFuncCtx { return smartlua.HostCheck(run.Pool) }})

func (memCode) Hosts() *Hosts { return testHosts }

func (c memCode) Program(h notes.Hash) (*vp.Program, error) {
	if p := c[h]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("code %x: %w", h, ErrUnknownCode)
}

func (c memCode) deploy(t testing.TB, name string, src []byte) notes.Hash {
	t.Helper()
	p, err := vp.Compile(name, src)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(src)
	c[h] = p
	return h
}

func readExample(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKey returns a fixed private key.
func testKey(t testing.TB, seed byte) keys.PrivateKey {
	t.Helper()
	k, err := keys.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPattern(t testing.TB, s string) notes.Pattern {
	t.Helper()
	p, err := notes.ParsePattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signed signs tx with each key and returns it.
func signed(t testing.TB, tx *Tx, privs ...keys.PrivateKey) *Tx {
	t.Helper()
	for _, k := range privs {
		if err := tx.Sign(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), k); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}
