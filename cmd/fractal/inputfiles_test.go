package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fractalvm/fractal/internal/inputfile/badfile"
)

// fractalCmd runs the fractal program (put on PATH by testscript.Main) in
// dir, killing it after the deadline so that a command that blocks fails
// the test instead of hanging it.
func fractalCmd(t *testing.T, dir string, deadline time.Duration, args ...string) (stdout, stderr string, code int, maxRSS int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "fractal", args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("fractal %s still ran after %v: killed", strings.Join(args, " "), deadline)
	}
	code = cmd.ProcessState.ExitCode()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("fractal %s: %v", strings.Join(args, " "), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSS = ru.Maxrss << 10 // kilobytes on Linux
	}
	return out.String(), errOut.String(), code, maxRSS
}

// mustFractal runs a command that has to succeed, for the fixtures.
func mustFractal(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code, _ := fractalCmd(t, dir, time.Minute, args...)
	if code != 0 {
		t.Fatalf("fractal %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// A bad file is one of three things a person can give where a file is
// expected: a named pipe (opening it waits for a writer), a device that
// never ends, and a file far larger than any limit (sparse, so the test
// does not fill the disk).
var badKinds = []struct {
	name string
	make func(t *testing.T, path string)
	want func(name string) string
}{
	{"named pipe", func(t *testing.T, p string) { badfile.Pipe(t, p) },
		func(n string) string { return n + ": not a regular file (a named pipe)" }},
	{"device", func(t *testing.T, p string) {
		if err := os.Symlink("/dev/zero", p); err != nil {
			t.Fatal(err)
		}
	}, func(n string) string { return n + ": not a regular file (a device)" }},
	{"64 GiB", func(t *testing.T, p string) { badfile.Sparse(t, p, 64<<30) },
		func(n string) string { return n + ": too large: 68719476736 bytes, the limit is " }},
}

// TestEveryInputFileBounded gives a named pipe, /dev/zero and a 64 GiB file
// wherever a verb reads a file: each is refused at once with one line on
// stderr naming the file, and the oversize file is not read.
func TestEveryInputFileBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	fx := t.TempDir()
	mustFractal(t, fx, "keys", "gen", "--out", "valid.key")
	mustFractal(t, fx, "tfhe", "setup", "--dev-dealer", "--n", "1", "--k", "1", "--trusted-dealer", "--out", "tk")
	mustFractal(t, fx, "tfhe", "encrypt", "--key", "tk/public.key", "--counter", "1", "--out", "ct")
	mustFractal(t, fx, "tfhe", "partdec", "--share", "tk/keyholder-1/share.key", "--out", "share", "ct")
	os.WriteFile(filepath.Join(fx, "f.lua"), []byte("x = 1\n"), 0o600)
	os.WriteFile(filepath.Join(fx, "tx.json"), []byte(`{"nonce": 1, "gas_limit": 1000}`), 0o600)
	f := func(name string) string { return filepath.Join(fx, name) }
	hash := strings.Repeat("ab", 32)

	// Files named on the command line: the bad file is dir/bad.
	args := map[string][]string{
		"lua run":              {"lua", "run", "bad"},
		"code deploy":          {"code", "deploy", "bad"},
		"tx submit":            {"tx", "submit", "bad", "--key", f("valid.key")},
		"tx submit --key":      {"tx", "submit", f("tx.json"), "--key", "bad"},
		"keys show":            {"keys", "show", "bad"},
		"check-proof":          {"check-proof", "bad", "--instance-key", "HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE="},
		"manifest import":      {"manifest", "import", "bad"},
		"dispute":              {"dispute", "bad"},
		"import":               {"import", "bad", "--key", f("valid.key")},
		"import --key":         {"import", f("tx.json"), "--key", "bad"},
		"relay --key":          {"relay", "--from", "a", "--to", "b", "--key", "bad"},
		"smartlua --fragment":  {"smartlua", "init", "--dir", "chain", "--fragment", "bad"},
		"smartlua --key":       {"smartlua", "init", "--dir", "chain", "--fragment", f("f.lua"), "--key", "bad"},
		"shielded --to @":      {"shielded", "transfer", "--to", "@bad", "--app", hash, "--token", "k:T", "--amount", "1"},
		"shielded --key":       {"shielded", "shield", "--key", "bad", "--app", hash, "--token", "k:T", "--amount", "1"},
		"tfhe encrypt --key":   {"tfhe", "encrypt", "--key", "bad", "--counter", "1", "--out", "o"},
		"tfhe encrypt --in":    {"tfhe", "encrypt", "--key", f("tk/public.key"), "--in", "bad", "--out", "o"},
		"tfhe eval":            {"tfhe", "eval", "--key", f("tk/public.key"), "--circuit", "sum", "--out", "o", "bad"},
		"tfhe partdec --share": {"tfhe", "partdec", "--share", "bad", "--out", "o", f("ct")},
		"tfhe combine --ct":    {"tfhe", "combine", "--key", f("tk/public.key"), "--ct", "bad", f("share")},
		"tfhe combine SHARE":   {"tfhe", "combine", "--key", f("tk/public.key"), "--ct", f("ct"), "bad"},
		"tfhe attach":          {"tfhe", "attach", "--key", "bad"},
		"tfhe share":           {"tfhe", "share", "--share", "bad"},
		"tfhe submit-share":    {"tfhe", "submit-share", "bad"},
	}
	// Files a verb finds on its own: setup prepares dir and returns the bad
	// file's path relative to dir, and the command that reads it.
	found := map[string]func(t *testing.T, dir string) (string, []string){
		"tx calculation_file": func(t *testing.T, dir string) (string, []string) {
			os.WriteFile(filepath.Join(dir, "tx.json"), []byte(`{"nonce": 1, "gas_limit": 1000, "calculation_file": "bad"}`), 0o600)
			return "bad", []string{"tx", "submit", "tx.json", "--key", f("valid.key")}
		},
	}
	for _, file := range []string{"config.json", "executor.key", "peers.json"} {
		found["home "+file] = func(t *testing.T, dir string) (string, []string) {
			mustFractal(t, dir, "init", "--home", "h")
			return filepath.Join("h", file), []string{"--home", "h", "peers", "list"}
		}
	}
	for _, file := range []string{"spend.key", "state.bin"} {
		found["wallet "+file] = func(t *testing.T, dir string) (string, []string) {
			mustFractal(t, dir, "shielded", "address", "--new", "--wallet", "w")
			return filepath.Join("w", file), []string{"shielded", "balance", "--wallet", "w"}
		}
	}
	found["smartlua store"] = func(t *testing.T, dir string) (string, []string) {
		h := strings.TrimSpace(mustFractal(t, dir, "smartlua", "init", "--dir", "chain", "--fragment", f("f.lua")))
		return filepath.Join("chain", "transitions", h), []string{"smartlua", "verify", "--dir", "chain"}
	}
	for name, argv := range args {
		found[name] = func(*testing.T, string) (string, []string) { return "bad", argv }
	}

	for name, setup := range found {
		for _, kind := range badKinds {
			t.Run(name+"/"+kind.name, func(t *testing.T) {
				dir := t.TempDir()
				bad, argv := setup(t, dir)
				os.Remove(filepath.Join(dir, bad))
				kind.make(t, filepath.Join(dir, bad))
				want := kind.want(bad)
				if name == "tx calculation_file" && kind.name == "device" {
					want = "bad: resolves outside its folder" // the link to /dev/zero leaves the folder
				}
				_, errOut, code, rss := fractalCmd(t, dir, 20*time.Second, argv...)
				lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
				if code != 1 || len(lines) != 1 || !strings.Contains(errOut, want) {
					t.Fatalf("exit %d, stderr:\n%s\nwant one line with %q", code, errOut, want)
				}
				if rss > 256<<20 {
					t.Errorf("the refusal used %d MiB of memory: the file was read", rss>>20)
				}
			})
		}
	}
}
