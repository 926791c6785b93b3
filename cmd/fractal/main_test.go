package main

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
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

// TestPanicIsOneLine: whatever panics under a verb, the user gets one line
// on stderr and status 2, never a stack trace.
func TestPanicIsOneLine(t *testing.T) {
	boom := &cobra.Command{Use: "zz-boom", RunE: func(*cobra.Command, []string) error {
		panic("runtime error: slice bounds out of range [:7]\n\ngoroutine 1 [running]:\nmain.boom()")
	}}
	rootCmd.AddCommand(boom)
	defer rootCmd.RemoveCommand(boom)
	rootCmd.SetArgs([]string{"zz-boom"})
	defer rootCmd.SetArgs(nil)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	status := run()
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	want := "fractal: internal error: runtime error: slice bounds out of range [:7] (if the instance's store is damaged, see docs/cli/backup.md)\n"
	if status != 2 || string(out) != want {
		t.Fatalf("status %d, stderr %q\nwant %q", status, out, want)
	}
}
