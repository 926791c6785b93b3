// Package keyholdertest makes keyholder homes for tests: new homes with a
// peers file on loopback, and homes that have run a DKG together, each its
// own party with its own endpoint.
package keyholdertest

import (
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// Homes makes n keyholder homes and their peers file, with a listener
// each on a free loopback port (pass it as DKGConfig.Listener).
func Homes(t testing.TB, n int) ([]*keyholder.Home, *keyholder.Peers, []net.Listener) {
	t.Helper()
	var hs []*keyholder.Home
	var lns []net.Listener
	p := &keyholder.Peers{}
	for range n {
		h, err := keyholder.Init(filepath.Join(t.TempDir(), "kh"))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		hs, lns = append(hs, h), append(lns, ln)
		p.Keys, p.Addrs = append(p.Keys, h.Key.Public()), append(p.Addrs, ln.Addr().String())
	}
	return hs, p, lns
}

// DKG runs a k-of-n DKG for instance and epoch among n new homes, at once,
// and fails the test unless every keyholder ends with its share.
func DKG(t testing.TB, instance [32]byte, epoch uint64, n, k int) ([]*keyholder.Home, []*keyholder.DKGResult) {
	t.Helper()
	hs, p, lns := Homes(t, n)
	res := make([]*keyholder.DKGResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = h.RunDKG(t.Context(), keyholder.DKGConfig{Instance: instance, Epoch: epoch, Attempt: 1, N: n, K: k,
				Peers: p, RoundTimeout: 20 * time.Second, Listener: lns[i]})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("keyholder %d: %v", i+1, err)
		}
	}
	return hs, res
}
