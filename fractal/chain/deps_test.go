package chain

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const mod = "github.com/fractalvm/fractal/"

// goList runs go list with args and returns its output's lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goCmd, append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestNoStoreDependencies: what a wallet, a referee or a proof checker
// imports (this package, fractal/dispute, shielded/wallet) builds without
// the storage engine and without the instance's store package; and only
// two packages of the module import badger: the store and its opener.
func TestNoStoreDependencies(t *testing.T) {
	pkgs := []string{mod + "fractal/chain", mod + "fractal/dispute", mod + "shielded/wallet"}
	for _, p := range pkgs {
		deps := goList(t, "-deps", p)
		if len(deps) < 10 || deps[len(deps)-1] != p {
			t.Fatalf("go list -deps %s listed %d packages, ending %q", p, len(deps), deps[len(deps)-1])
		}
		for _, d := range deps {
			if strings.Contains(d, "dgraph-io/badger") || d == mod+"fractal" || d == mod+"internal/badgerdb" {
				t.Errorf("%s depends on %s", p, d)
			}
		}
	}
	var importers []string
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...") {
		if strings.Contains(line, " github.com/dgraph-io/badger/") {
			importers = append(importers, strings.Fields(line)[0])
		}
	}
	if got := strings.Join(importers, " "); got != mod+"fractal "+mod+"internal/badgerdb" {
		t.Fatalf("packages importing badger: %s", got)
	}
}
