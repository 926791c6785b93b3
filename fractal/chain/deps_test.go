package chain

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoStoreDependencies: what a wallet, a referee or a proof checker
// imports (this package, fractal/dispute, shielded/wallet) builds without
// the storage engine and without the instance's store package.
func TestNoStoreDependencies(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	const mod = "github.com/fractalvm/fractal/"
	pkgs := []string{mod + "fractal/chain", mod + "fractal/dispute", mod + "shielded/wallet"}
	for _, p := range pkgs {
		out, err := exec.Command(goCmd, "list", "-deps", p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 || deps[len(deps)-1] != p {
			t.Fatalf("go list -deps %s listed %d packages, ending %q", p, len(deps), deps[len(deps)-1])
		}
		for _, d := range deps {
			if strings.Contains(d, "dgraph-io/badger") || d == mod+"fractal" || d == mod+"internal/badgerdb" {
				t.Errorf("%s depends on %s", p, d)
			}
		}
	}
}
