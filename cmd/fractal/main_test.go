package main

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fractal": func() { os.Exit(run()) },
	})
}

// TestScripts runs one script per user story in testdata/scripts. Scripts see
// the repository root as $REPO, so stories can use the real examples/.
func TestScripts(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/scripts",
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", repo)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"flipbyte": flipByte},
	})
}

// flipByte is the script command "flipbyte GLOB OFFSET": it flips the
// lowest bit of the byte at OFFSET (from the end when negative) of the
// last file, in name order, matching GLOB: a damaged disk.
func flipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte GLOB OFFSET")
	}
	files, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(files) == 0 {
		ts.Fatalf("no file matches %s", args[0])
	}
	sort.Strings(files)
	data, err := os.ReadFile(files[len(files)-1])
	ts.Check(err)
	at, err := strconv.Atoi(args[1])
	ts.Check(err)
	if at < 0 {
		at += len(data)
	}
	data[at] ^= 1
	ts.Check(os.WriteFile(files[len(files)-1], data, 0o600))
}
