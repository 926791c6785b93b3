package nodetest

import (
	"testing"

	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/zk"
)

// ShieldedKeys makes development keys of the shielded circuit in a
// temporary folder (a few seconds) and returns them with the folder, which
// a devnet copies into its homes (validator.DevnetOptions.ZK).
func ShieldedKeys(t testing.TB) (*zk.Keys, string) {
	t.Helper()
	dir := t.TempDir()
	cc, err := shielded.Compiled()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := zk.Cache{Dir: dir}.DevSetup(cc)
	if err != nil {
		t.Fatal(err)
	}
	return pk, dir
}
