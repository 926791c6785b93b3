package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/nodefile"
	"github.com/fractalvm/fractal/internal/logbuf"
	"github.com/fractalvm/fractal/tfhe"
)

// daemon is a long-running fractal process of a test.
type daemon struct {
	cmd  *exec.Cmd
	out  *logbuf.Buffer // stdout and stderr
	done chan struct{}
}

// startDaemon runs fractal with args in dir until stop or the end of the
// test, which kills it by its PID.
func startDaemon(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command("fractal", args...), out: &logbuf.Buffer{}, done: make(chan struct{})}
	d.cmd.Dir, d.cmd.Stdout, d.cmd.Stderr = dir, d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop sends SIGINT and returns the exit code; the process has 10 s.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("fractal %s did not stop within 10s of SIGINT:\n%s", strings.Join(d.cmd.Args[1:], " "), d.out)
		return -1
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dkgAll runs a 3-of-4 DKG among four keyholder processes with homes
// kh1..kh4 in dir, for epoch, and fails unless each ends with its share.
func dkgAll(t *testing.T, dir, instance string, epoch int) {
	t.Helper()
	keyholderHomes(t, dir, 4)
	runs, _ := runKeyholders(t, dir, 4, 3, instance, time.Minute, []int{1, 2, 3, 4}, "--epoch", fmt.Sprint(epoch))
	for i, r := range runs {
		if r.code != 0 {
			t.Fatalf("keyholder %d of epoch %d: exit %d: %s", i, epoch, r.code, r.stderr)
		}
	}
}

// TestKeyholdersApartThroughNode is the encrypted mempool of a solo
// instance with its keyholders apart, every part its own process over
// loopback: four keyholders make a 3-of-4 key by DKG, the instance attaches
// it, a node runs the instance, an encrypted transfer is submitted through
// the node. With two keyholders serving, the batch waits and tfhe pending
// names the two not yet in; a wrong share, a repeated keyholder's share, a
// share of another epoch's key are refused with their reasons and change
// nothing. The third keyholder to serve opens the batch, which executes:
// the transfer is accepted. The next batch, a competing spend of the same
// coin, is answered by the serving keyholders on their own and refused in
// its fixed place after the transfer; shares of the opened batch are
// refused. No folder holds more than one share.
func TestKeyholdersApartThroughNode(t *testing.T) {
	dir := t.TempDir()
	m := instanceLine.FindStringSubmatch(mustFractal(t, dir, "init"))
	if m == nil {
		t.Fatal("fractal init printed no instance ID")
	}
	instance := m[1]
	dkgAll(t, dir, instance, 1)
	other := filepath.Join(dir, "epoch2") // another epoch's keyholders
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	dkgAll(t, other, instance, 2)

	scriptFiles(t, dir, "encrypted_mempool.txtar")
	mustFractal(t, dir, "code", "deploy", "allow.lua")
	mustFractal(t, dir, "code", "deploy", "owner.lua")
	mustFractal(t, dir, "tx", "submit", "mint.json", "--key", "alice.key")
	if out := mustFractal(t, dir, "tfhe", "attach", "--key", "kh1/epoch-1/public.key"); !strings.Contains(out, "(3 of 4, dkg)\ntranscript ") {
		t.Fatalf("attach:\n%s", out)
	}
	node := startDaemon(t, dir, "node", "--listen", "127.0.0.1:0", "--block-time", "50ms")
	mustFractal(t, dir, "node", "status", "--wait", "30s")
	info, err := nodefile.Find(filepath.Join(dir, ".fractal"))
	if err != nil || info == nil {
		t.Fatalf("the node's address: %v", err)
	}
	url := info.URL
	fractal := func(args ...string) (string, string, int) {
		t.Helper()
		out, errOut, code, _ := fractalCmd(t, dir, time.Minute, args...)
		return out, errOut, code
	}
	submit := func(file string) (payload, tx string) {
		t.Helper()
		var got struct{ Payload, Tx, Status string }
		out := mustFractal(t, dir, "--json", "tx", "submit", file, "--key", "alice.key", "--encrypt", "--node", url)
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.Status != "queued" {
			t.Fatalf("submit %s: %s", file, out)
		}
		return got.Payload, got.Tx
	}
	payload, tx := submit("transfer.json")

	// Two keyholders of three needed.
	serving := map[int]*daemon{}
	serve := func(i int) {
		serving[i] = startDaemon(t, dir, "--home", fmt.Sprintf("kh%d", i), "keyholder", "serve", "--node", url)
	}
	serve(1)
	serve(2)
	const waiting = "encrypted batch 1 waits for keyholder shares: 2 of 3 in (keyholders 1, 2)\nkeyholders not yet in: 3, 4\n"
	var pending string
	waitFor(t, "the shares of keyholders 1 and 2", func() bool {
		pending, _, _ = fractal("tfhe", "pending", "--node", url)
		return strings.HasPrefix(pending, waiting)
	})
	notOpened := func() {
		t.Helper()
		if out, _, _ := fractal("tfhe", "pending", "--node", url); out != pending {
			t.Fatalf("pending changed:\n%s\nwas:\n%s", out, pending)
		}
		want := "fractal: payload " + payload + " has not been opened yet (in encrypted batch 1, slot 0)\n"
		if _, errOut, code := fractal("tfhe", "outcome", payload, "--node", url); code != 1 || errOut != want {
			t.Fatalf("outcome: exit %d, %q", code, errOut)
		}
	}
	notOpened()
	refused := func(want string, args ...string) {
		t.Helper()
		if _, errOut, code := fractal(args...); code != 1 || errOut != want+"\n" {
			t.Fatalf("fractal %s: exit %d\n%q\nwant %q", strings.Join(args, " "), code, errOut, want)
		}
		notOpened()
	}

	// A wrong share: keyholder 3's shares with one bit of the last proof
	// flipped.
	mustFractal(t, dir, "tfhe", "share", "--share", "kh3/epoch-1/share.key", "--out", "k3.shares", "--node", url)
	bad := mustRead(t, filepath.Join(dir, "k3.shares"))
	bad[len(bad)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, "bad.shares"), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	refused("fractal: submit shares: encrypted batch 1: slot 0: tfhe: share from keyholder 3: invalid DLEQ proof (invalid_argument)",
		"tfhe", "submit-share", "bad.shares", "--node", url)
	// Keyholder 1's shares again.
	mustFractal(t, dir, "tfhe", "share", "--share", "kh1/epoch-1/share.key", "--out", "k1.shares", "--node", url)
	refused("fractal: submit shares: encrypted batch 1: tfhe: share from keyholder 1: shares already submitted (invalid_argument)",
		"tfhe", "submit-share", "k1.shares", "--node", url)
	// Another epoch's key: its keyholder's serve refuses the batch, and
	// shares made with it anyway are refused by the node.
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	_, payloads, _, err := c.Pending(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := tfhe.DecodeKeyShare(mustRead(t, filepath.Join(other, "kh3", "epoch-2", "share.key")))
	if err != nil {
		t.Fatal(err)
	}
	key1, err := tfhe.DecodePublicKey(mustRead(t, filepath.Join(dir, "kh1", "epoch-1", "public.key")))
	if err != nil {
		t.Fatal(err)
	}
	id1, id2 := key1.ID(), sk.PK.ID()
	refused(fmt.Sprintf("fractal: keyholder serve: release: batch 1: sealed to key %x, this keyholder's share is of key %x (another epoch's keyholders must answer)", id1[:8], id2[:8]),
		"--home", "epoch2/kh3", "keyholder", "serve", "--epoch", "2", "--once", "--node", url)
	// Epoch 2's keyholder 3 answers a batch sealed to its own key.
	p2, err := tfhe.Seal(sk.PK, []byte("epoch 2"), payloads[0].Context)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := tfhe.PartDecBatch(t.Context(), sk, []*tfhe.Payload{p2})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "epoch2.shares"), sb.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("fractal: submit shares: encrypted batch 1: tfhe: share from keyholder 3: shares are for another threshold key (invalid_argument)",
		"tfhe", "submit-share", "epoch2.shares", "--node", url)

	// The third keyholder arrives: the batch opens and executes.
	serve(4)
	var outcome string
	waitFor(t, "batch 1 to open", func() bool {
		out, _, code := fractal("tfhe", "outcome", payload, "--node", url)
		outcome = out
		return code == 0
	})
	want := "payload " + payload + " opened in encrypted batch 1 slot 0\ntransaction " + tx + " accepted\n"
	if !strings.HasPrefix(outcome, want) || !strings.Contains(outcome, "spent ") || !strings.Contains(outcome, "/636f696e31\n") ||
		!strings.Contains(outcome, "created ") || !strings.Contains(outcome, "/636f696e32\n") {
		t.Fatalf("outcome:\n%s\nwant %s…", outcome, want)
	}

	// The next batch opens with the serving keyholders alone, in its fixed
	// place: the competing spend of coin1 comes after the transfer.
	payload2, tx2 := submit("again.json")
	waitFor(t, "batch 2 to open", func() bool {
		out, _, code := fractal("tfhe", "outcome", payload2, "--node", url)
		outcome = out
		return code == 0
	})
	want = "payload " + payload2 + " opened in encrypted batch 2 slot 0\ntransaction " + tx2 + " refused\n  refused in lookup: input 1: no live note at /"
	if !strings.HasPrefix(outcome, want) || !strings.Contains(outcome, "/636f696e31\n") {
		t.Fatalf("outcome of the competing spend:\n%s\nwant %s…", outcome, want)
	}
	if _, errOut, code := fractal("tfhe", "submit-share", "k3.shares", "--node", url); code != 1 ||
		errOut != "fractal: submit shares: encrypted batch 1 is already opened (failed_precondition)\n" {
		t.Fatalf("shares for the opened batch: exit %d, %q", code, errOut)
	}

	for _, i := range []int{1, 2, 4} {
		d := serving[i]
		if code := d.stop(t); code != 0 {
			t.Fatalf("keyholder %d's serve: exit %d\n%s", i, code, d.out)
		}
		for _, line := range []string{
			"serve: following the node's event stream\n",
			fmt.Sprintf("serve: batch 2: released the shares of keyholder %d for 1 payloads; ", i),
		} {
			if !strings.Contains(d.out.String(), line) {
				t.Fatalf("keyholder %d's serve said:\n%s\nwant %q", i, d.out, line)
			}
		}
	}
	if !strings.Contains(serving[4].out.String(), "serve: batch 1: released the shares of keyholder 4 for 1 payloads; 3 of 3 in, not yet: keyholders 3\n") {
		t.Fatalf("keyholder 4's serve said:\n%s", serving[4].out)
	}
	t.Logf("keyholder 4's serve said:\n%s", serving[4].out)
	if code := node.stop(t); code != 0 {
		t.Fatalf("node: exit %d\n%s", code, node.out)
	}
	if out := mustFractal(t, dir, "verify"); !strings.HasPrefix(out, "verified ") {
		t.Fatalf("verify:\n%s", out)
	}

	// Every share file under the test's folder is one keyholder's own, in
	// its own home.
	shares := sharesUnder(t, dir)
	for e, base := range []string{"", "epoch2"} {
		for i := 1; i <= 4; i++ {
			p := filepath.Join(base, fmt.Sprintf("kh%d", i), fmt.Sprintf("epoch-%d", e+1), "share.key")
			if sk := shares[p]; sk == nil || sk.Index != i {
				t.Fatalf("%s: %v", p, sk)
			}
			delete(shares, p)
		}
	}
	if len(shares) != 0 {
		t.Fatalf("share files outside their keyholder's home: %v", slices.Sorted(maps.Keys(shares)))
	}
}
