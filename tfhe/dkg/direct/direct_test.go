package direct

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// network is a session of n keyholders with a listener each on loopback.
type network struct {
	s     *dkg.Session
	keys  []keys.PrivateKey
	addrs []string
	lns   []net.Listener
	logs  []*lines
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(s string) { l.mu.Lock(); l.l = append(l.l, s); l.mu.Unlock() }
func (l *lines) all() string  { l.mu.Lock(); defer l.mu.Unlock(); return strings.Join(l.l, "\n") }

func newNetwork(t *testing.T, n, k int, attempt uint32) *network {
	t.Helper()
	nw := &network{}
	var pubs []keys.PublicKey
	for range n {
		key, err := keys.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nw.keys, nw.lns, nw.logs = append(nw.keys, key), append(nw.lns, ln), append(nw.logs, &lines{})
		nw.addrs = append(nw.addrs, ln.Addr().String())
		pubs = append(pubs, key.Public())
	}
	var err error
	if nw.s, err = dkg.NewSession(dkg.Session{Epoch: 1, Attempt: attempt, K: k, Keys: pubs}); err != nil {
		t.Fatal(err)
	}
	return nw
}

func (nw *network) transport(t *testing.T, i int) *Transport {
	t.Helper()
	tr, err := New(nw.s, i, nw.addrs, nw.lns[i-1], nw.logs[i-1].add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

type result struct {
	o   *dkg.Outcome
	err error
}

// drive runs keyholders who (1-based) each over its own endpoint and
// returns their outcomes.
func (nw *network) drive(t *testing.T, timeout time.Duration, who ...int) map[int]result {
	t.Helper()
	var mu sync.Mutex
	out := map[int]result{}
	var wg sync.WaitGroup
	for _, i := range who {
		tr := nw.transport(t, i)
		p, err := dkg.NewParty(nw.s, nw.keys[i-1])
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := dkg.Drive(t.Context(), p, tr, dkg.DriveOptions{RoundTimeout: timeout, Log: nw.logs[i-1].add,
				Name: func(j int) string { return fmt.Sprintf("keyholder %d (%s)", j, nw.addrs[j-1]) }})
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			tr.Flush(ctx)
			mu.Lock()
			out[i] = result{o, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Four keyholders, each with its own endpoint on loopback, reach one key
// and one transcript; each holds its own share only, and the transcript
// alone gives the same key.
func TestDKGOverLoopback(t *testing.T) {
	nw := newNetwork(t, 4, 3, 1)
	out := nw.drive(t, 20*time.Second, 1, 2, 3, 4)
	var first *dkg.Outcome
	for i := 1; i <= 4; i++ {
		r := out[i]
		if r.err != nil {
			t.Fatalf("keyholder %d: %v\n%s", i, r.err, nw.logs[i-1].all())
		}
		if r.o.Share == nil || r.o.Share.Index != i || len(r.o.Faults) != 0 {
			t.Fatalf("keyholder %d: share %v, faults %v", i, r.o.Share, r.o.Faults)
		}
		if first == nil {
			first = r.o
		} else if r.o.Hash != first.Hash || !reflect.DeepEqual(r.o.Commits, first.Commits) {
			t.Fatalf("keyholder %d reached another transcript", i)
		}
	}
	tr, err := dkg.DecodeTranscript(first.Transcript.Encode())
	if err != nil {
		t.Fatal(err)
	}
	o, err := dkg.Check(tr)
	if err != nil || !reflect.DeepEqual(o.Commits, first.Commits) || !reflect.DeepEqual(o.Holders, []int{1, 2, 3, 4}) {
		t.Fatalf("check: %v", err)
	}
	for i, l := range nw.logs {
		if got := l.all(); strings.Count(got, "every keyholder answered") != 4 {
			t.Fatalf("keyholder %d's log:\n%s", i+1, got)
		}
	}
}

// A keyholder that deals and then goes silent: each later round waits its
// time, names it, and goes on; its deal counts (three approved it), it
// holds no share, and the other three finish with the key.
func TestSilentKeyholderNamed(t *testing.T) {
	nw := newNetwork(t, 4, 3, 1)
	silent := nw.transport(t, 4)
	p4, err := dkg.NewParty(nw.s, nw.keys[3])
	if err != nil {
		t.Fatal(err)
	}
	e, err := p4.Start()
	if err != nil {
		t.Fatal(err)
	}
	silent.Send(e)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		silent.Flush(ctx)
		silent.Close()
	}()
	out := nw.drive(t, time.Second, 1, 2, 3)
	for i := 1; i <= 3; i++ {
		r := out[i]
		if r.err != nil {
			t.Fatalf("keyholder %d: %v", i, r.err)
		}
		if !reflect.DeepEqual(r.o.Qual, []int{1, 2, 3, 4}) || !reflect.DeepEqual(r.o.Holders, []int{1, 2, 3}) {
			t.Fatalf("keyholder %d: qual %v holders %v", i, r.o.Qual, r.o.Holders)
		}
		if want := []dkg.Fault{{Keyholder: 4, Reason: "holds no share: sent no response"}}; !reflect.DeepEqual(r.o.Faults, want) {
			t.Fatalf("keyholder %d: faults %v", i, r.o.Faults)
		}
		log := nw.logs[i-1].all()
		for _, round := range []string{"round 2 (responses): no response", "round 3 (justifications): no justification", "round 4 (confirmations): no confirmation"} {
			if want := round + " from keyholder 4 (" + nw.addrs[3] + ") after 1s; going on without"; !strings.Contains(log, want) {
				t.Fatalf("keyholder %d's log:\n%s\nwant %q", i, log, want)
			}
		}
	}
}

// Only k−1 keyholders running: the rounds wait their time, name the two
// that never answered, and the run fails saying so.
func TestTooFewKeyholdersOnline(t *testing.T) {
	nw := newNetwork(t, 4, 3, 1)
	out := nw.drive(t, 500*time.Millisecond, 1, 2)
	for i := 1; i <= 2; i++ {
		want := "dkg: failed: 0 dealers qualified, need 3; keyholder 1: deal left out: approved by 2 keyholders (itself included), needs 3; " +
			"keyholder 2: deal left out: approved by 2 keyholders (itself included), needs 3; keyholder 3: deal left out: sent no deal; keyholder 4: deal left out: sent no deal"
		if r := out[i]; r.err == nil || r.err.Error() != want {
			t.Fatalf("keyholder %d: %v\nwant %s", i, r.err, want)
		}
		if log := nw.logs[i-1].all(); !strings.Contains(log, "round 1 (deals): no deal from keyholder 3 ("+nw.addrs[2]+"), keyholder 4 ("+nw.addrs[3]+") after 500ms") {
			t.Fatalf("keyholder %d's log:\n%s", i, log)
		}
	}
}

// The endpoint refuses, with the reason, an envelope of another session
// (here another attempt with the same keys), one that does not decode, a
// request that is not a POST or too large; the sender logs the refusal.
func TestEndpointRefusals(t *testing.T) {
	nw := newNetwork(t, 2, 2, 1)
	nw.transport(t, 2)
	other, err := dkg.NewSession(dkg.Session{Epoch: 1, Attempt: 2, K: 2, Keys: nw.s.Keys})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dkg.NewParty(other, nw.keys[0])
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.Start()
	if err != nil {
		t.Fatal(err)
	}
	sender := nw.transport(t, 1)
	sender.s = other
	sender.Send(e)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if owed := sender.Flush(ctx); owed != nil {
		t.Fatalf("still owed: %v", owed)
	}
	if log := nw.logs[0].all(); !strings.Contains(log, "keyholder 2 ("+nw.addrs[1]+") refused our deal: dkg: deal from keyholder 1 refused: envelope from another session") {
		t.Fatalf("sender's log:\n%s", log)
	}
	url := "http://" + nw.addrs[1] + Path
	for _, c := range []struct {
		method, body string
		status       int
		text         string
	}{
		{"POST", "garbage", 400, "dkg: envelope refused: dkg: envelope: unknown envelope version 103"},
		{"GET", "", 405, "method not allowed"},
		{"POST", strings.Repeat("x", dkg.MaxEnvelope+1), 413, "envelope over"},
	} {
		req, _ := http.NewRequest(c.method, url, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 200)
		n, _ := resp.Body.Read(buf)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(buf[:n]), c.text) {
			t.Fatalf("%s %q: %d %q, want %d %q", c.method, c.body[:min(10, len(c.body))], resp.StatusCode, buf[:n], c.status, c.text)
		}
	}
}

// A keyholder that sends keyholders 1 and 3 one deal and keyholder 4
// another (both signed: two parties with its key) and then goes silent:
// over HTTP, keyholders 1 and 4 pass on the deal they hold when the
// responses show two, every keyholder ends with both, and all three reach
// one transcript that leaves keyholder 2's deal out, with the evidence.
func TestTwoDifferentDealsOverHTTP(t *testing.T) {
	nw := newNetwork(t, 4, 3, 1)
	post := func(to int, e *dkg.Envelope) {
		resp, err := http.Post("http://"+nw.addrs[to-1]+Path, "application/octet-stream", strings.NewReader(string(e.Encode())))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("keyholder %d took the deal with %d", to, resp.StatusCode)
		}
	}
	var deals []*dkg.Envelope
	for range 2 {
		p, err := dkg.NewParty(nw.s, nw.keys[1])
		if err != nil {
			t.Fatal(err)
		}
		e, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		deals = append(deals, e)
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // the others' endpoints are up
		post(1, deals[0])
		post(3, deals[0])
		post(4, deals[1])
	}()
	out := nw.drive(t, 2*time.Second, 1, 3, 4)
	var hash [32]byte
	for _, i := range []int{1, 3, 4} {
		r := out[i]
		if r.err != nil {
			t.Fatalf("keyholder %d: %v\n%s", i, r.err, nw.logs[i-1].all())
		}
		want := []dkg.Fault{{Keyholder: 2, Reason: "deal left out: sent two different deals (equivocation; both are in the transcript)"},
			{Keyholder: 2, Reason: "holds no share: sent no response"}}
		if !reflect.DeepEqual(r.o.Faults, want) || !reflect.DeepEqual(r.o.Qual, []int{1, 3, 4}) {
			t.Fatalf("keyholder %d: qual %v faults %v", i, r.o.Qual, r.o.Faults)
		}
		if i != 1 && r.o.Hash != hash {
			t.Fatalf("keyholder %d reached another transcript", i)
		}
		hash = r.o.Hash
	}
}
