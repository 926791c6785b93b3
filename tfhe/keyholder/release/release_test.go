package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/api/fractalv1/fractalv1connect"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/keyholder"
	"github.com/fractalvm/fractal/tfhe/keyholder/keyholdertest"
)

// instanceNode serves the two calls a keyholder makes from an open
// instance, through the generated Connect handler. It stands in for the
// node (fractal node) until that is merged; payloads are the encodings the
// test submitted, by ID. change, when set, alters the answer to
// GetPendingEncrypted (a dishonest node or executor).
type instanceNode struct {
	fractalv1connect.UnimplementedFractalServiceHandler
	in       *fractal.Instance
	mu       sync.Mutex
	payloads map[[32]byte][]byte
	change   func(*v1.GetPendingEncryptedResponse)
	raw      [][]byte // every share batch submitted
}

func (h *instanceNode) GetPendingEncrypted(_ context.Context, req *connect.Request[v1.GetPendingEncryptedRequest]) (*connect.Response[v1.GetPendingEncryptedResponse], error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, err := h.in.PendingEncrypted()
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	out := &v1.GetPendingEncryptedResponse{}
	if st != nil {
		out.Batch = &v1.EncryptedBatch{Number: st.Batch.Number, Needed: uint32(st.Needed), Record: st.Batch.Encode()}
		for _, s := range st.Shares {
			out.Batch.Shares = append(out.Batch.Shares, uint32(s))
		}
		for _, id := range st.Batch.PayloadIDs {
			if req.Msg.IncludePayloads {
				out.Payloads = append(out.Payloads, h.payloads[id])
			}
		}
		if h.change != nil {
			h.change(out)
		}
	}
	return connect.NewResponse(out), nil
}

func (h *instanceNode) SubmitShares(_ context.Context, req *connect.Request[v1.SubmitSharesRequest]) (*connect.Response[v1.SubmitSharesResponse], error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.raw = append(h.raw, req.Msg.Shares)
	st, err := h.in.SubmitShares(req.Msg.Shares)
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, err)
	}
	out := &v1.EncryptedBatch{Number: st.Batch.Number, Needed: uint32(st.Needed)}
	for _, s := range st.Shares {
		out.Shares = append(out.Shares, uint32(s))
	}
	return connect.NewResponse(&v1.SubmitSharesResponse{Batch: out}), nil
}

type setup struct {
	home  string
	in    *fractal.Instance
	node  *instanceNode
	api   *API
	homes []*keyholder.Home
	khs   []*Keyholder
	pk    *tfhe.PublicKey
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	s := &setup{home: filepath.Join(t.TempDir(), "inst")}
	var err error
	if s.in, err = fractal.Init(s.home, fractal.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.in.Close() })
	s.homes, _ = keyholdertest.DKG(t, s.in.ID(), 1, 4, 3)
	for _, h := range s.homes {
		k, err := Open(h, 1)
		if err != nil {
			t.Fatal(err)
		}
		s.khs = append(s.khs, k)
	}
	s.pk = s.khs[0].Share.PK
	if err := s.in.AttachThresholdKey(s.pk); err != nil {
		t.Fatal(err)
	}
	s.node = &instanceNode{in: s.in, payloads: map[[32]byte][]byte{}}
	mux := http.NewServeMux()
	mux.Handle(fractalv1connect.NewFractalServiceHandler(s.node))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if s.api, err = DialAPI(srv.URL); err != nil {
		t.Fatal(err)
	}
	return s
}

// fix submits an encrypted payload and seals, fixing it into a batch.
func (s *setup) fix(t *testing.T, body string) {
	t.Helper()
	p, err := tfhe.Seal(s.pk, []byte(body), fractal.EncryptedContext(s.in.ID()))
	if err != nil {
		t.Fatal(err)
	}
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	s.node.payloads[p.ID()] = p.Encode()
	if _, err := s.in.SubmitEncrypted(p.Encode()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.in.Seal(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func (s *setup) seal(t *testing.T) *fractal.Sealed {
	t.Helper()
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	sealed, err := s.in.Seal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func (s *setup) step(t *testing.T, i int) *Step {
	t.Helper()
	st, err := s.khs[i-1].Step(t.Context(), s.api)
	if err != nil {
		t.Fatalf("keyholder %d: %v", i, err)
	}
	return st
}

func logOf(t *testing.T, h *keyholder.Home) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.EpochDir(1), LogFile))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// Keyholders release their shares through the node's API, one process
// each in life; with k−1 in the batch waits and pending names the rest; a
// keyholder that looks again does not give its shares twice; the k-th
// opens the batch. Each keeps a log line for the batch it answered.
func TestReleaseOpensBatch(t *testing.T) {
	s := newSetup(t)
	if st := s.step(t, 1); st.State != Idle {
		t.Fatalf("no batch yet: state %v", st.State)
	}
	s.fix(t, "not a transaction")
	st := s.step(t, 1)
	if st.State != Released || !reflect.DeepEqual(st.Shares, []int{1}) || st.Batch.Number != 1 {
		t.Fatalf("keyholder 1: %+v", st)
	}
	if st := s.step(t, 1); st.State != Already || len(s.node.raw) != 1 {
		t.Fatalf("keyholder 1 again: %+v, %d submissions", st, len(s.node.raw))
	}
	st = s.step(t, 2)
	if got := s.khs[1].Describe(st, nil); got != "batch 1: released the shares of keyholder 2 for 1 payloads; 2 of 3 in, not yet: keyholders 3, 4" {
		t.Fatalf("keyholder 2: %s", got)
	}
	if sealed := s.seal(t); sealed.Encrypted == nil || sealed.Encrypted.State != fractal.BatchWaiting || sealed.Block != nil {
		t.Fatalf("with k−1 shares the seal did not wait: %+v", sealed)
	}
	s.step(t, 4)
	if sealed := s.seal(t); sealed.Encrypted == nil || sealed.Encrypted.State != fractal.BatchOpened {
		t.Fatalf("with k shares the batch did not open: %+v", sealed.Encrypted)
	}
	for i, h := range s.homes {
		got := logOf(t, h)
		if want := i != 2; (strings.Count(got, "\n") == 1 && strings.HasPrefix(got, "batch 1 ")) != want {
			t.Fatalf("keyholder %d's log: %q", i+1, got)
		}
	}
}

// The node and the executor are not trusted: a share batch handed in
// twice, or for a batch that is closed, is refused by the instance; a batch
// sealed to another epoch's key, a record whose signature fails, a record
// of another executor, and a second record under a number already
// answered are refused by the keyholder before any share leaves, and the
// batch stays waiting.
func TestReleaseRefusals(t *testing.T) {
	s := newSetup(t)
	s.fix(t, "one")
	s.step(t, 1)
	first := s.node.raw[0]
	if _, err := s.api.SubmitShares(t.Context(), first); err == nil || !strings.Contains(err.Error(), "tfhe: share from keyholder 1: shares already submitted (failed_precondition)") {
		t.Fatalf("the same shares again: %v", err)
	}
	s.step(t, 2)
	s.step(t, 3)
	s.seal(t) // opens batch 1
	s.fix(t, "two")
	if _, err := s.api.SubmitShares(t.Context(), first); err == nil || !strings.Contains(err.Error(), "encrypted batch 1 is already opened") {
		t.Fatalf("shares for batch 1 while batch 2 waits: %v", err)
	}

	// Another epoch's keyholder.
	other, _ := keyholdertest.DKG(t, s.in.ID(), 2, 4, 3)
	k2, err := Open(other[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Step(t.Context(), s.api); err == nil || !strings.Contains(err.Error(), "release: batch 2: sealed to key ") ||
		!strings.Contains(err.Error(), "(another epoch's keyholders must answer)") {
		t.Fatalf("another epoch: %v", err)
	}

	// A forged record, then another executor's, then the executor's own
	// second record under number 1.
	exec, err := keys.LoadKeyFile(filepath.Join(s.home, "executor.key"))
	if err != nil {
		t.Fatal(err)
	}
	outsider, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(signer keys.PrivateKey, number uint64) func(*v1.GetPendingEncryptedResponse) {
		return func(r *v1.GetPendingEncryptedResponse) {
			b, err := chain.DecodeEncryptedBatch(r.Batch.Record)
			if err != nil {
				t.Fatal(err)
			}
			b.Number, b.Executor = number, signer.Public()
			h := b.Hash()
			sig, err := signer.Sign(rand.Reader, append([]byte("fractal encrypted batch v1\x00"), h[:]...))
			if err != nil {
				t.Fatal(err)
			}
			copy(b.Signature[:], sig)
			r.Batch.Record = b.Encode()
		}
	}
	before := logOf(t, s.homes[0])
	for _, c := range []struct {
		change func(*v1.GetPendingEncryptedResponse)
		want   string
	}{
		{func(r *v1.GetPendingEncryptedResponse) { r.Batch.Record[len(r.Batch.Record)-40] ^= 1 }, "release: batch 2: fractal: encrypted batch 2: executor signature: keys: invalid signature"},
		{resign(outsider, 2), "release: batch 2: signed by executor " + outsider.Public().String() + ", but this keyholder answers executor " + exec.Public().String()},
		{resign(exec, 1), "release: batch 1: the executor signed another batch under number 1 (record "},
		{func(r *v1.GetPendingEncryptedResponse) { r.Payloads[0] = append(r.Payloads[0], 0) }, "release: batch 2: slot 0: the payload is not the one the record names"},
	} {
		s.node.change = c.change
		if _, err := s.khs[0].Step(t.Context(), s.api); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("got %v\nwant %s", err, c.want)
		}
	}
	s.node.change = nil
	st, err := s.in.PendingEncrypted()
	if err != nil || st == nil || st.Batch.Number != 2 || len(st.Shares) != 0 || logOf(t, s.homes[0]) != before {
		t.Fatalf("after the refusals: %+v, %v; log %q", st, err, logOf(t, s.homes[0]))
	}
	if st := s.step(t, 1); st.State != Released || st.Batch.Number != 2 {
		t.Fatalf("the honest batch 2: %+v", st)
	}
}

// Serve follows the batches and says what changed, once per change.
func TestServe(t *testing.T) {
	s := newSetup(t)
	var mu sync.Mutex
	var lines []string
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.khs[3].Serve(ctx, s.api, 20*time.Millisecond, func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() })
	}()
	seen := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			got := strings.Join(lines, "\n")
			mu.Unlock()
			if strings.Contains(got, want) {
				return
			}
		}
		t.Fatalf("serve never said %q; it said:\n%s", want, strings.Join(lines, "\n"))
	}
	seen("no encrypted batch waits for shares")
	s.fix(t, "one")
	seen("batch 1: released the shares of keyholder 4 for 1 payloads; 1 of 3 in, not yet: keyholders 1, 2, 3")
	s.step(t, 2)
	seen("batch 1: this keyholder's shares are in; 2 of 3 in, not yet: keyholders 1, 3")
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(lines); i++ {
		if lines[i] == lines[i-1] {
			t.Fatalf("a line repeated: %q", lines[i])
		}
	}
}

func TestLogRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ content, want string }{
		{"batch 1 zz AAAA\n", `line 1: record hash "zz"`},
		{"batch 01 " + strings.Repeat("00", 32) + " HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=\n", `line 1: batch number "01"`},
		{"batch 1 " + strings.Repeat("00", 32) + " HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=", "the last line is cut short"},
		{"batch 1 " + strings.Repeat("00", 32) + " HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=\nbatch 1 " + strings.Repeat("11", 32) + " HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=\n",
			"line 2: the executor signed another batch under number 1"},
	} {
		if err := os.WriteFile(filepath.Join(dir, LogFile), []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenLog(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q: %v, want %q", c.content, err, c.want)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add("batch 1 " + strings.Repeat("ab", 32) + " HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=")
	f.Fuzz(func(t *testing.T, line string) {
		num, h, exec, err := parseLine(line)
		if err != nil {
			return
		}
		if got := "batch " + strconv.FormatUint(num, 10) + " " + hex.EncodeToString(h[:]) + " " + exec.String(); got != line {
			t.Fatalf("%q parses and prints as %q", line, got)
		}
	})
}
