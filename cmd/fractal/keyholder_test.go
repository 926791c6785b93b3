package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/dkg/direct"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// keyholderHomes makes n keyholder homes kh1..khn in dir and a peers file
// with a free port each, keyholder i on its own loopback address
// 127.0.1.i; it returns the peers file's name. The port is found with a
// listener that is closed before the keyholder's process binds it, so two
// keyholders on one address could be given the same port (the kernel may
// hand a closed port out again): their own addresses keep them apart.
func keyholderHomes(t *testing.T, dir string, n int) string {
	t.Helper()
	p := &keyholder.Peers{}
	for i := 1; i <= n; i++ {
		var got struct {
			PublicKey string `json:"public_key"`
		}
		out := mustFractal(t, dir, "--home", fmt.Sprintf("kh%d", i), "--json", "keyholder", "init")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.1.%d:0", i))
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // the keyholder's process listens there
		k, err := keys.ParsePublicKey(got.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		p.Keys, p.Addrs = append(p.Keys, k), append(p.Addrs, addr)
	}
	if err := os.WriteFile(filepath.Join(dir, "peers.json"), p.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	return "peers.json"
}

type dkgRun struct {
	stdout, stderr string
	code           int
}

// runKeyholders starts `fractal keyholder dkg` for the homes in who at
// once, each its own process with extra flags, and waits for all.
func runKeyholders(t *testing.T, dir string, n, k int, instance string, timeout time.Duration, who []int, extra ...string) (map[int]dkgRun, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out := map[int]dkgRun{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, i := range who {
		cmd := exec.CommandContext(ctx, "fractal", "--home", fmt.Sprintf("kh%d", i), "--json", "keyholder", "dkg", "--peers", "peers.json",
			"--n", strconv.Itoa(n), "--k", strconv.Itoa(k), "--instance", instance, "--timeout", timeout.String())
		cmd.Args = append(cmd.Args, extra...)
		cmd.Dir = dir
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd.Wait()
			mu.Lock()
			out[i] = dkgRun{so.String(), se.String(), cmd.ProcessState.ExitCode()}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("keyholder processes still ran after 5 minutes: killed")
	}
	return out, time.Since(start)
}

// sharesUnder finds every file under root that reads as a key share, by
// its path relative to root.
func sharesUnder(t *testing.T, root string) map[string]*tfhe.KeyShare {
	t.Helper()
	out := map[string]*tfhe.KeyShare{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err == nil {
			if sk, err := tfhe.DecodeKeyShare(raw); err == nil {
				rel, _ := filepath.Rel(root, path)
				out[rel] = sk
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// scriptFiles writes the files of testdata/scripts/NAME into dir.
func scriptFiles(t *testing.T, dir, name string) {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var instanceLine = regexp.MustCompile(`initialised instance ([0-9a-f]{64})`)

// TestKeyholderDKGProcesses is the DKG among separate keyholder processes
// over loopback, n = 4, k = 3 and n = 16, k = 11: each process runs its own
// party, all reach one key, each home holds exactly its own share, the
// transcript checks, the key is attached to the instance, and k keyholders'
// shares open an encrypted transfer. It logs the DKG's wall time (make
// dkg-timing repeats it).
func TestKeyholderDKGProcesses(t *testing.T) {
	for _, c := range []struct{ n, k int }{{4, 3}, {16, 11}} {
		t.Run(fmt.Sprintf("n=%d,k=%d", c.n, c.k), func(t *testing.T) { keyholderProcesses(t, c.n, c.k) })
	}
}

func keyholderProcesses(t *testing.T, n, k int) {
	dir := t.TempDir()
	m := instanceLine.FindStringSubmatch(mustFractal(t, dir, "init"))
	if m == nil {
		t.Fatal("fractal init printed no instance ID")
	}
	instance := m[1]
	keyholderHomes(t, dir, n)
	var who []int
	for i := 1; i <= n; i++ {
		who = append(who, i)
	}
	runs, took := runKeyholders(t, dir, n, k, instance, time.Minute, who)
	t.Logf("DKG n=%d k=%d across %d keyholder processes over loopback: %v wall time (this machine: 2 cores, shared)", n, k, n, took.Round(time.Millisecond))
	var keyID string
	for i := 1; i <= n; i++ {
		r := runs[i]
		var got struct {
			KeyID     string  `json:"key_id"`
			Origin    string  `json:"origin"`
			Keyholder int     `json:"keyholder"`
			Holders   []int   `json:"holders"`
			Seconds   float64 `json:"seconds"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
			t.Fatalf("keyholder %d: exit %d\nstdout %s\nstderr %s", i, r.code, r.stdout, r.stderr)
		}
		if got.Keyholder != i || len(got.Holders) != n || got.Origin != "dkg" || (keyID != "" && got.KeyID != keyID) {
			t.Fatalf("keyholder %d: %+v", i, got)
		}
		keyID = got.KeyID
		if !strings.Contains(r.stderr, "dkg: round 4 (confirmations): every keyholder answered") {
			t.Fatalf("keyholder %d's progress:\n%s", i, r.stderr)
		}
		shares := sharesUnder(t, filepath.Join(dir, fmt.Sprintf("kh%d", i)))
		if sk := shares["epoch-1/share.key"]; len(shares) != 1 || sk == nil || sk.Index != i {
			t.Fatalf("home of keyholder %d holds %d shares (want exactly its own)", i, len(shares))
		}
	}
	out := mustFractal(t, dir, "tfhe", "check-transcript", "kh1/epoch-1/transcript.bin", "--key", "kh2/epoch-1/public.key")
	if !strings.HasPrefix(out, "key "+keyID+" (dkg), "+strconv.Itoa(k)+" of "+strconv.Itoa(n)+", instance "+instance+" epoch 1\n") {
		t.Fatalf("check-transcript:\n%s", out)
	}
	mustFractal(t, dir, "--home", "other", "init")
	_, errOut, code, _ := fractalCmd(t, dir, time.Minute, "--home", "other", "tfhe", "attach", "--key", "kh3/epoch-1/public.key")
	if want := "fractal: the key was made for instance " + instance[:16] + ", this is "; code != 1 || !strings.HasPrefix(errOut, want) {
		t.Fatalf("attach to another instance: exit %d, %q, want %q…", code, errOut, want)
	}
	_, errOut, code, _ = fractalCmd(t, dir, time.Minute, "--home", "kh1", "keyholder", "serve", "--node", "127.0.0.1:1", "--once")
	if want := "fractal: keyholder serve: node http://127.0.0.1:1: "; code != 1 || !strings.HasPrefix(errOut, want) || !strings.HasSuffix(errOut, "(unavailable)\n") {
		t.Fatalf("serve with no node: exit %d, %q", code, errOut)
	}
	out = mustFractal(t, dir, "tfhe", "attach", "--key", "kh3/epoch-1/public.key")
	if !strings.HasPrefix(out, "attached threshold key "+keyID+" ("+strconv.Itoa(k)+" of "+strconv.Itoa(n)+", dkg)\ntranscript ") {
		t.Fatalf("attach:\n%s", out)
	}
	// An encrypted transfer, opened by k keyholders' shares, each made from
	// its own home.
	scriptFiles(t, dir, "encrypted_mempool.txtar")
	mustFractal(t, dir, "code", "deploy", "allow.lua")
	mustFractal(t, dir, "code", "deploy", "owner.lua")
	mustFractal(t, dir, "tx", "submit", "mint.json", "--key", "alice.key")
	mustFractal(t, dir, "tx", "submit", "transfer.json", "--key", "alice.key", "--encrypt")
	out = mustFractal(t, dir, "tfhe", "pending")
	if !strings.Contains(out, "keyholders not yet in: 1, 2, 3") {
		t.Fatalf("pending:\n%s", out)
	}
	for i := 1; i <= k; i++ {
		out = mustFractal(t, dir, "tfhe", "share", "--share", fmt.Sprintf("kh%d/epoch-1/share.key", i))
	}
	if !strings.Contains(out, "opened encrypted batch 1 with the shares of keyholders") || !strings.Contains(out, "accepted (1 spent, 1 created") {
		t.Fatalf("the k-th share:\n%s", out)
	}
}

// TestKeyholderDKGOneNeverStarts: three keyholders, k = 2, the third never
// starts: the two running wait each round's time, name it with its address
// on stderr, and finish with the key; the third is named as left out.
func TestKeyholderDKGOneNeverStarts(t *testing.T) {
	dir := t.TempDir()
	keyholderHomes(t, dir, 3)
	p, err := keyholder.ReadPeers(filepath.Join(dir, "peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	instance := strings.Repeat("ab", 32)
	// The round timeout is a protocol parameter: the wait for the absent
	// keyholder, so each round it is missing from takes this long. It also
	// bounds how long the two running keyholders wait for each other (the
	// first round's wait covers the other process starting), which 1 s did
	// not always cover on two loaded cores (CI timed rounds out); 5 s does.
	const round = 5 * time.Second
	runs, _ := runKeyholders(t, dir, 3, 2, instance, round, []int{1, 2})
	for i := 1; i <= 2; i++ {
		r := runs[i]
		if r.code != 0 {
			t.Fatalf("keyholder %d: exit %d: %s", i, r.code, r.stderr)
		}
		want := "dkg: round 1 (deals): no deal from keyholder 3 (" + p.Addrs[2] + ") after " + round.String() + "; going on without\n"
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("keyholder %d's progress:\n%s\nwant %q", i, r.stderr, want)
		}
		for _, f := range []string{`"reason": "deal left out: sent no deal"`, `"reason": "holds no share: sent no response"`} {
			if !strings.Contains(r.stdout, f) {
				t.Fatalf("keyholder %d's result:\n%s\nwant %s", i, r.stdout, f)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kh3", "epoch-1")); err == nil {
		t.Fatal("the keyholder that never ran has a key folder")
	}
}

// TestKeyholderDKGEquivocatorProcesses: four keyholders, k = 3; keyholders
// 1, 3 and 4 are `fractal keyholder dkg` processes and keyholder 2 (this
// test, with its home's key) deals twice, one deal to keyholders 1 and 3,
// another to 4, then goes silent. The three processes pass the deals on as
// evidence, leave keyholder 2 out and name it, reach one key and one
// transcript, and anyone's check-transcript names keyholder 2 with the
// same reason; the instance attaches the key.
func TestKeyholderDKGEquivocatorProcesses(t *testing.T) {
	dir := t.TempDir()
	m := instanceLine.FindStringSubmatch(mustFractal(t, dir, "init"))
	if m == nil {
		t.Fatal("fractal init printed no instance ID")
	}
	instance, err := parseHash(m[1])
	if err != nil {
		t.Fatal(err)
	}
	keyholderHomes(t, dir, 4)
	h2, err := keyholder.OpenHome(filepath.Join(dir, "kh2"))
	if err != nil {
		t.Fatal(err)
	}
	c := keyholder.DKGConfig{Instance: instance, Epoch: 1, Attempt: 1, N: 4, K: 3}
	if c.Peers, err = keyholder.ReadPeers(filepath.Join(dir, "peers.json")); err != nil {
		t.Fatal(err)
	}
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	var deals [][]byte
	for range 2 {
		p, err := dkg.NewParty(s, h2.Key)
		if err != nil {
			t.Fatal(err)
		}
		e, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		deals = append(deals, e.Encode())
	}
	posted := make(chan error, 1)
	go func() {
		for to, deal := range map[int][]byte{1: deals[0], 3: deals[0], 4: deals[1]} {
			if err := postUntilTaken("http://"+c.Peers.Addrs[to-1]+direct.Path, deal); err != nil {
				posted <- fmt.Errorf("keyholder %d: %w", to, err)
				return
			}
		}
		posted <- nil
	}()
	runs, _ := runKeyholders(t, dir, 4, 3, m[1], 2*time.Second, []int{1, 3, 4})
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
	const equivocated = "deal left out: sent two different deals (equivocation; both are in the transcript)"
	var keyID, transcript string
	for _, i := range []int{1, 3, 4} {
		r := runs[i]
		var got struct {
			KeyID      string      `json:"key_id"`
			Transcript string      `json:"transcript"`
			Qualified  []int       `json:"qualified"`
			Holders    []int       `json:"holders"`
			Faults     []faultJSON `json:"faults"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
			t.Fatalf("keyholder %d: exit %d\nstdout %s\nstderr %s", i, r.code, r.stdout, r.stderr)
		}
		want := []faultJSON{{2, equivocated}, {2, "holds no share: sent no response"}}
		if !slices.Equal(got.Qualified, []int{1, 3, 4}) || !slices.Equal(got.Holders, []int{1, 3, 4}) || !slices.Equal(got.Faults, want) ||
			(keyID != "" && (got.KeyID != keyID || got.Transcript != transcript)) {
			t.Fatalf("keyholder %d: %+v", i, got)
		}
		keyID, transcript = got.KeyID, got.Transcript
	}
	out := mustFractal(t, dir, "tfhe", "check-transcript", "kh4/epoch-1/transcript.bin")
	for _, line := range []string{"transcript " + transcript + ": dealers 1, 3, 4; holders 1, 3, 4; confirmed by 1, 3, 4\n", "keyholder 2: " + equivocated + "\n"} {
		if !strings.Contains(out, line) {
			t.Fatalf("check-transcript:\n%s\nwant %q", out, line)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kh2", "epoch-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the equivocating keyholder's home has an epoch folder: %v", err)
	}
	if out := mustFractal(t, dir, "tfhe", "attach", "--key", "kh1/epoch-1/public.key"); !strings.HasPrefix(out, "attached threshold key "+keyID+" (3 of 4, dkg)\n") {
		t.Fatalf("attach:\n%s", out)
	}
}

// postUntilTaken posts body to url until a keyholder's endpoint, which may
// not be up yet, takes it (204), for up to 30 s.
func postUntilTaken(url string, body []byte) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, msg)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
