package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/fractalvm/fractal/fractal/validator"
)

// freeDevnetPort returns a base port whose devnet ports (P2P, RPC, API)
// are free now.
func freeDevnetPort(t *testing.T, n int) int {
	t.Helper()
	base, err := validator.FreeDevnetBase(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// startValidators runs verb ("validator run" or "node") on net/v0 …
// net/v(n-1) in dir; the function it returns stops them (SIGTERM, each must
// exit 0 within 30 s) and may be called again.
func startValidators(t *testing.T, dir string, n int, verb func(i int) string) (stop func()) {
	t.Helper()
	var procs []*exec.Cmd
	for i := range n {
		cmd := exec.Command("fractal", append([]string{"--home", fmt.Sprintf("net/v%d", i)}, strings.Fields(verb(i))...)...)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		for i, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("validator %d: %v", i, err)
				}
			case <-time.After(30 * time.Second):
				p.Process.Kill() // only the process this test started
				t.Errorf("validator %d did not stop on SIGTERM", i)
			}
		}
	}
}

// retryFractal runs the program until it exits 0 (validators need a moment
// to listen), for at most 40 s, and returns its output.
func retryFractal(t *testing.T, dir, what string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		out, errOut, code, _ := fractalCmd(t, dir, time.Minute, args...)
		if code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: exit %d: %s", what, code, errOut)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestDevnetProcesses is a validator-set instance run as four processes,
// as "make devnet" runs it: fractal devnet writes the homes (with a
// threshold key), fractal validator run runs three and fractal node the
// fourth; code and a mint go in through one validator's RPC, a certified
// proof comes out of another and checks offline against trust.json alone
// and not against another set; a shielded wallet syncs over a validator's
// API with trust.json and is refused without it or with another
// instance's; a transfer, and a mint sealed with tx submit --encrypt
// --node, go in through the fourth's API; SIGTERM stops each (exit 0) and
// the homes show the same block.
func TestDevnetProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four validator processes")
	}
	dir := t.TempDir()
	ar, err := txtar.ParseFile("testdata/scripts/instance_mint_transfer.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := freeDevnetPort(t, 4)
	out := mustFractal(t, dir, "devnet", "--validators", "4", "--out", "net", "--base-port", fmt.Sprint(base), "--timeout-commit", "300ms", "--encrypted")
	if !strings.Contains(out, "4 validators\n  net/v0 rpc http://127.0.0.1:") {
		t.Fatalf("devnet:\n%s", out)
	}
	mustFractal(t, dir, "devnet", "--validators", "1", "--out", "other", "--base-port", fmt.Sprint(base))
	stop := startValidators(t, dir, 4, func(i int) string {
		if i == 3 {
			return "node" // node runs a validator's home as validator run does
		}
		return "validator run"
	})
	defer stop()
	retry := func(what string, args ...string) string { return retryFractal(t, dir, what, args...) }
	retry("deploy", "--home", "net/v0", "validator", "deploy", "allow.lua")
	retry("deploy", "--home", "net/v0", "validator", "deploy", "owner.lua")
	key := "/ea247e820cda9e68c4b2268fe9ff4f376a32f82a422a8c0cdd274ce08048cc34/8fea4092d39867c4ad83aaf5cb83dec5a3fdf1fa9df282fed8b5a060d91acf27/636f696e31"
	// The mint is refused in its block until the code's block committed;
	// it is handed in again until a proof shows its note.
	for try := 0; ; try++ {
		fractalCmd(t, dir, time.Minute, "--home", "net/v1", "validator", "submit", "mint.json", "--key", "alice.key")
		proof := fmt.Sprintf("coin1-%d.proof", try)
		var got struct{ Live bool }
		if err := json.Unmarshal([]byte(retry("prove", "--home", "net/v2", "validator", "prove", "--key", key, "--out", proof, "--json")), &got); err != nil {
			t.Fatal(err)
		}
		if got.Live {
			out := mustFractal(t, dir, "check-proof", proof, "--trust", "net/trust.json")
			if !strings.HasPrefix(out, "valid: note ") || !strings.Contains(out, " lives at "+key+" in instance ") {
				t.Fatalf("check-proof:\n%s", out)
			}
			_, errOut, code, _ := fractalCmd(t, dir, time.Minute, "check-proof", proof, "--trust", "other/trust.json")
			if code != 1 || !strings.HasPrefix(errOut, "fractal: check proof: the proof is for instance ") {
				t.Fatalf("another instance's trust entry: exit %d, %s", code, errOut)
			}
			break
		}
		if try == 20 {
			t.Fatal("the mint never committed")
		}
		time.Sleep(500 * time.Millisecond)
	}
	// v3 runs fractal node: the verbs run on its home go through its API.
	out = retry("node status", "--home", "net/v3", "node", "status")
	if !strings.HasPrefix(out, fmt.Sprintf("node http://127.0.0.4:%d (pid ", validator.DevnetAPIPort(3, base))) {
		t.Fatalf("node status:\n%s", out)
	}
	out = mustFractal(t, dir, "--home", "net/v3", "tx", "submit", "transfer.json", "--key", "alice.key")
	if !strings.HasPrefix(out, "transaction ") || !strings.Contains(out, " accepted\n  in block ") {
		t.Fatalf("tx submit through v3's API:\n%s", out)
	}
	coin2 := strings.Replace(key, "636f696e31", "636f696e32", 1)
	if out := mustFractal(t, dir, "--home", "net/v3", "notes"); !strings.Contains(out, coin2+"\n") || strings.Contains(out, key+"\n") {
		t.Fatalf("notes through v3's API:\n%s", out)
	}
	mustFractal(t, dir, "--home", "net/v3", "query", "--key", coin2, "--prove", "--out", "coin2.proof")
	if out := mustFractal(t, dir, "check-proof", "coin2.proof", "--trust", "net/trust.json"); !strings.HasPrefix(out, "valid: note ") {
		t.Fatalf("check-proof of v3's API proof:\n%s", out)
	}
	{ // A wallet syncs over v3's API against trust.json's validator set.
		api := fmt.Sprintf("http://127.0.0.4:%d", validator.DevnetAPIPort(3, base))
		mustFractal(t, dir, "shielded", "address", "--new", "--wallet", "w")
		mustFractal(t, dir, "shielded", "address", "--new", "--wallet", "fresh")
		if out := mustFractal(t, dir, "shielded", "sync", "--wallet", "w", "--node", api, "--trust", "net/trust.json"); !strings.HasPrefix(out, "scanned blocks 1..2: 0 notes found, 0 spent\n") {
			t.Fatalf("shielded sync over v3's API:\n%s", out)
		}
		for _, tc := range []struct{ trust, want string }{
			{"", "the block carries no signature: it is a validator set's, and the wallet needs the set's trust entry to check it\n"},
			{"other/trust.json", ", the trust entry names "},
		} {
			args := []string{"shielded", "sync", "--wallet", "fresh", "--node", api} // from block 1
			if tc.trust != "" {
				args = append(args, "--trust", tc.trust)
			}
			_, errOut, code, _ := fractalCmd(t, dir, time.Minute, args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("shielded sync with trust %q: exit %d, %s", tc.trust, code, errOut)
			}
		}
	}
	// A wallet with only v3's URL seals a mint to the validators' key
	// (decisions 161, 165): fixed in one block, opened in the next.
	raw, err := os.ReadFile(filepath.Join(dir, "mint.json"))
	if err != nil {
		t.Fatal(err)
	}
	mint3 := strings.Replace(strings.Replace(string(raw), `"nonce": 1`, `"nonce": 3`, 1), "key='coin1'", "key='coin3'", 1)
	if err := os.WriteFile(filepath.Join(dir, "mint3.json"), []byte(mint3), 0o600); err != nil {
		t.Fatal(err)
	}
	api := fmt.Sprintf("http://127.0.0.4:%d", validator.DevnetAPIPort(3, base))
	out = mustFractal(t, dir, "--node", api, "tx", "submit", "mint3.json", "--key", "alice.key", "--encrypt")
	var payload, txid string
	if _, err := fmt.Sscanf(out, "queued encrypted payload %s (transaction %64s)\n", &payload, &txid); err != nil {
		t.Fatalf("tx submit --encrypt --node: %v\n%s", err, out)
	}
	out = retry("the payload opens", "--node", api, "tfhe", "outcome", payload)
	if !strings.HasPrefix(out, "payload "+payload+" opened in encrypted batch 1 slot 0\ntransaction "+txid+" accepted\n") {
		t.Fatalf("tfhe outcome --node:\n%s", out)
	}
	if out := mustFractal(t, dir, "--node", api, "tfhe", "pending"); out != "no encrypted batch is waiting for shares\n0 encrypted transactions queued\n" {
		t.Fatalf("tfhe pending --node:\n%s", out)
	}
	_, errOut, code, _ := fractalCmd(t, dir, time.Minute, "--home", "net/v3", "validator", "submit", "mint.json", "--key", "alice.key")
	if code != 1 || !strings.Contains(errOut, "refused the transaction (code 12): fractal: check ") || !strings.HasSuffix(errOut, "replayed transaction: already executed in block 1\n") {
		t.Fatalf("replay: exit %d, %s", code, errOut)
	}
	stop()
	var blocks []string
	for i := range 4 {
		out := mustFractal(t, dir, "--home", fmt.Sprintf("net/v%d", i), "block", "1")
		if !strings.Contains(out, "(certified by their commit, not signed)") {
			t.Fatalf("block on v%d:\n%s", i, out)
		}
		blocks = append(blocks, out)
		if out := mustFractal(t, dir, "--home", fmt.Sprintf("net/v%d", i), "evidence"); out != "0 misbehaviours\n" {
			t.Fatalf("evidence on v%d: %s", i, out)
		}
	}
	for i := 1; i < 4; i++ {
		if blocks[i] != blocks[0] {
			t.Fatalf("v%d's block 1 differs from v0's:\n%s\n%s", i, blocks[i], blocks[0])
		}
	}
	// v0's certified manifests, checked by v1 against its validator set.
	if out := mustFractal(t, dir, "--home", "net/v0", "manifest", "export", "v0.manifests"); !strings.HasPrefix(out, "exported ") {
		t.Fatalf("manifest export:\n%s", out)
	}
	if out := mustFractal(t, dir, "--home", "net/v1", "manifest", "import", "v0.manifests"); !strings.HasSuffix(out, " known, 0 new, 0 forks found\n") && !strings.Contains(out, "ahead of this chain") {
		t.Fatalf("manifest import:\n%s", out)
	}
	_, errOut, code, _ = fractalCmd(t, dir, time.Minute, "--home", "other/v0", "manifest", "import", "v0.manifests")
	if code != 1 || !strings.Contains(errOut, "belongs to instance ") {
		t.Fatalf("another instance's manifests: exit %d, %s", code, errOut)
	}
}
