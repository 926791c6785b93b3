package explorer_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/relay"
	"github.com/fractalvm/fractal/internal/nodetest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// Hostile text the chain holds: a note's key and value, a predicate's
// source and its refusal reason. Each would set window.pwned, or add an
// element, if a page let it run.
const (
	hostileKey    = `<script>window.pwned=1</script>`
	hostileValue  = `<img src=x onerror="window.pwned=2">&amp;`
	hostileReason = `<script>window.pwned=3</script><b>bold</b>`
	openLua       = "-- </pre><script>window.pwned=4</script>\nreturn true\n"
	denyLua       = "error(\"" + `<script>window.pwned=3</script><b>bold</b>` + "\", 0)\n"
)

// chromium finds Debian's chromium, or skips the test when it is absent
// and FRACTAL_REQUIRE_CHROMIUM is unset (CI sets it: there a missing
// browser fails).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FRACTAL_REQUIRE_CHROMIUM") != "" {
		t.Fatal("FRACTAL_REQUIRE_CHROMIUM is set but no chromium is installed (apt-get install chromium)")
	}
	t.Skip("skipping the explorer's browser tests: chromium is not installed (apt-get install chromium; set FRACTAL_REQUIRE_CHROMIUM=1 to make this a failure)")
	return ""
}

// browser drives one headless Chromium tab against a node's explorer.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// newBrowser starts Chromium (first thing in a test, so that a machine
// without it skips at once); set base before opening pages.
func newBrowser(t *testing.T) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, for as long as ctx lives: no
	// deadline on it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// run runs an action with a deadline, failing the test on an error.
func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// open loads a page of the explorer and returns its HTTP status.
func (b *browser) open(path string) int64 {
	b.t.Helper()
	return run(b, chromedp.NavigateResponse(b.base+path)).Status
}

// poll evaluates the script js until done accepts its value, within 20 s.
// An error counts as not yet: while a page is being replaced (a click's
// navigation) the browser answers "target navigated" or "no node with given
// id", which is no failure of the page.
func poll[T any](b *browser, js string, done func(T) bool) T {
	b.t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		var v T
		v, err = chromedp.Run(ctx, chromedp.Evaluate[T](js))
		cancel()
		if err == nil && done(v) {
			return v
		}
	}
	b.t.Fatalf("browser: %s: not so within 20 s (last error: %v)", js, err)
	panic("unreachable")
}

// text is the text of the first element sel (CSS) matches, waiting for it.
// It reads through script rather than by DevTools node IDs, which a page
// that is being replaced (a navigation) or updated (a live page) can
// invalidate between finding a node and reading it.
func (b *browser) text(sel string) string {
	b.t.Helper()
	js := fmt.Sprintf(`(function () { var e = document.querySelector(%q); return e === null ? null : e.textContent; })()`, sel)
	return *poll(b, js, func(v *string) bool { return v != nil })
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	return poll(b, fmt.Sprintf("document.querySelectorAll(%q).length", sel), func(int) bool { return true })
}

// click follows a link (clicked by script, as the mouse would) and returns
// the path of the page it leads to, once that page has the element wait.
func (b *browser) click(sel, wait string) string {
	b.t.Helper()
	before := poll(b, "location.href", func(string) bool { return true })
	poll(b, fmt.Sprintf(`(function () { var e = document.querySelector(%q); if (e === null) return false; e.click(); return true; })()`, sel), func(ok bool) bool { return ok })
	poll(b, fmt.Sprintf(`location.href !== %q && document.readyState === "complete" && document.querySelector(%q) !== null`, before, wait), func(ok bool) bool { return ok })
	return strings.TrimPrefix(poll(b, "location.href", func(string) bool { return true }), b.base)
}

// expect fails when the element sel's text is not want within 10 s (a
// live page may still be adding it).
func (b *browser) expect(sel, want string) {
	b.t.Helper()
	got := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = b.text(sel); got == want {
			return
		}
	}
	b.t.Errorf("%s: %q\nwant %q", sel, got, want)
}

// expectRow fails when no row of the table sel has exactly the cells want
// within 10 s.
func (b *browser) expectRow(sel string, want ...string) {
	b.t.Helper()
	js := fmt.Sprintf(`Array.from(document.querySelectorAll(%q + " tbody tr")).map(function (tr) {
		return Array.from(tr.cells).map(function (td) { return td.textContent; }).join("|");
	}).join("\n")`, sel)
	row, rows := strings.Join(want, "|"), ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rows = poll(b, js, func(string) bool { return true })
		if slices.Contains(strings.Split(rows, "\n"), row) {
			return
		}
	}
	b.t.Errorf("%s has no row %q; its rows:\n%s", sel, row, rows)
}

// inert fails when hostile text ran or made elements: no pwned flag, no
// script but the explorer's own, no image, no bold.
func (b *browser) inert() {
	b.t.Helper()
	pwned := run(b, chromedp.Evaluate[string]("typeof window.pwned"))
	scripts, imgs, bolds := b.count("script"), b.count("img"), b.count("b")
	if pwned != "undefined" || scripts != 1 || imgs != 0 || bolds != 0 {
		b.t.Errorf("hostile text took effect: window.pwned is %s, %d scripts, %d images, %d <b>", pwned, scripts, imgs, bolds)
	}
}

// history is a node that has been through 22 minted blocks, a hostile note, an
// accepted transfer, a transfer refused by the sig predicate, an export and
// a transaction refused with a hostile reason.
type history struct {
	*nodetest.Node
	tk                                *nodetest.Token
	open                              notes.Hash
	instance                          string
	transfer, refused, export, denied *v1.SubmitTransactionResponse
	dest                              [32]byte
	spares                            []keys.PrivateKey
	spareNotes                        []nodetest.Note
	hostile                           notes.StateKey
}

func submit(t *testing.T, n *nodetest.Node, tx *phases.Tx) *v1.SubmitTransactionResponse {
	t.Helper()
	r, err := n.Client.API.SubmitTransaction(context.Background(), connect.NewRequest(&v1.SubmitTransactionRequest{
		Tx: &v1.SubmitTransactionRequest_TxBytes{TxBytes: tx.Encode()}, WaitForReceipt: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if r.Msg.State == v1.TransactionState_TRANSACTION_STATE_QUEUED {
		t.Fatalf("transaction %s still queued", r.Msg.TxId)
	}
	return r.Msg
}

// create is a transaction that creates one note under application app
// (its owner predicate too).
func create(t *testing.T, app notes.Hash, key, value string, signer keys.PrivateKey) *phases.Tx {
	return nodetest.Sign(t, &phases.Tx{
		GasLimit:    1_000_000,
		Write:       notes.ConstraintSet{notes.AnyPattern().WithProvenance(nil).WithApplication(app).WithOwner(app)},
		Calculation: []byte(fmt.Sprintf("return {{application=%q, owner=%q, key=%q, value=%q}}", hex.EncodeToString(app[:]), hex.EncodeToString(app[:]), key, value)),
	}, signer)
}

func newHistory(t *testing.T) *history {
	tk := nodetest.NewToken(t)
	id := tk.In.ID()
	c := &history{tk: tk, instance: hex.EncodeToString(id[:]), dest: [32]byte{7, 7, 7}}
	alice, bob, carol := nodetest.Key(t), nodetest.Key(t), nodetest.Key(t)
	seeds := tk.MintTo(t, []keys.PublicKey{alice.Public(), carol.Public()}, 100)
	c.spares = nodetest.Keys(t, 21)
	for _, k := range c.spares { // a block each: more blocks and notes than a page holds
		c.spareNotes = append(c.spareNotes, tk.MintTo(t, []keys.PublicKey{k.Public()}, 10)...)
	}
	var err error
	if c.open, err = tk.In.Deploy([]byte(openLua)); err != nil {
		t.Fatal(err)
	}
	deny, err := tk.In.Deploy([]byte(denyLua))
	if err != nil {
		t.Fatal(err)
	}
	tk.Close(t)
	c.Node = nodetest.Start(t, tk.Home, nodetest.Config())

	c.hostile = notes.StateKey{Application: c.open, Owner: c.open, Key: []byte(hostileKey)}
	if r := submit(t, c.Node, create(t, c.open, hostileKey, hostileValue, alice)); r.Receipt.Status != v1.ReceiptStatus_RECEIPT_STATUS_ACCEPTED {
		t.Fatalf("hostile note: %v", r.Receipt)
	}
	tx, change := tk.Transfer(t, alice, seeds[0], bob.Public(), 30)
	c.transfer = submit(t, c.Node, tx)
	tx, _ = tk.Transfer(t, bob, seeds[1], bob.Public(), 2) // bob spends carol's note
	c.refused = submit(t, c.Node, tx)
	c.export = submit(t, c.Node, nodetest.ExportTx(t, alice, c.dest, change.Key, 1))
	c.denied = submit(t, c.Node, create(t, deny, "k", "v", alice))
	for name, r := range map[string]*v1.SubmitTransactionResponse{"transfer": c.transfer, "export": c.export} {
		if r.Receipt.Status != v1.ReceiptStatus_RECEIPT_STATUS_ACCEPTED {
			t.Fatalf("%s refused: %s", name, r.Receipt.Reason)
		}
	}
	for name, r := range map[string]*v1.SubmitTransactionResponse{"refused": c.refused, "denied": c.denied} {
		if r.State != v1.TransactionState_TRANSACTION_STATE_REFUSED {
			t.Fatalf("%s: %v", name, r.State)
		}
	}
	if !strings.Contains(c.denied.Receipt.Reason, hostileReason) {
		t.Fatalf("denied's reason %q lacks the hostile text", c.denied.Receipt.Reason)
	}
	return c
}

func (c *history) head(t *testing.T) uint64 {
	st, err := c.Client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Head.Height
}

// checkProofFile fetches a proof file from the explorer and checks it as
// "fractal check-proof" does, with the executor key and instance the
// node's status gives.
func (c *history) checkProofFile(t *testing.T, path string) *chain.Statement {
	t.Helper()
	resp, err := http.Get(c.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
	}
	st, err := c.Client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublicKey(st.Executor)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := chain.DecodeQueryProof(raw)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := hex.DecodeString(c.instance)
	proven, err := chain.CheckQueryProof(qp, pub, (*[32]byte)(id))
	if err != nil {
		t.Fatal(err)
	}
	return proven
}

// noteID is the ID of a note created here under app (its owner too).
func noteID(app notes.Hash, key, value string) string {
	id := (&notes.Note{Application: app, Owner: app, Key: []byte(key), Value: []byte(value)}).ID()
	return hex.EncodeToString(id[:])
}

func gas(g *v1.Gas) string {
	return fmt.Sprintf("%d / %d / %d / %d", g.Lookup, g.Calculation, g.Validity, g.Total)
}

// TestExplorer drives a headless Chromium through a node's explorer.
func TestExplorer(t *testing.T) {
	b := newBrowser(t)
	c := newHistory(t)
	b.base = c.URL
	head := c.head(t) // 22 blocks minted, then the hostile note, the transfer and the export
	if head != 25 {
		t.Fatalf("head %d, want 25", head)
	}
	h := strconv.FormatUint

	t.Run("home lists the latest blocks and transactions", func(t *testing.T) {
		b.t = t
		b.open("/")
		b.expect("#head", h(head, 10))
		b.expect("#blocks tbody tr:first-child td:first-child", h(head, 10))
		if n := b.count("#blocks tbody tr"); n != 10 {
			t.Errorf("%d latest blocks, want 10", n)
		}
		b.expect("#txs tbody tr:first-child td:first-child", c.export.TxId)
		b.expect(fmt.Sprintf("#txs tr[data-tx=%q] td:nth-child(2)", c.transfer.TxId), h(c.transfer.Height, 10))
		b.expect(fmt.Sprintf("#txs tr[data-tx=%q] td:nth-child(3)", c.transfer.TxId), "accepted")
	})

	t.Run("a transfer and a refusal submitted through the API appear live", func(t *testing.T) {
		b.t = t
		b.open("/")
		b.expect("#live", "following")
		tx, _ := c.tk.Transfer(t, c.spares[0], c.spareNotes[0], c.spares[1].Public(), 3)
		out, err := c.Client.Submit(context.Background(), tx, false)
		if err != nil {
			t.Fatal(err)
		}
		id := hex.EncodeToString(out.ID[:])
		row := fmt.Sprintf("#txs tr[data-tx=%q]", id)
		b.expect(row+" td:nth-child(2)", h(head+1, 10))
		b.expect(row+" td:nth-child(3)", "accepted")
		b.expect("#blocks tbody tr:first-child td:first-child", h(head+1, 10))
		b.expect("#head", h(head+1, 10))
		// A refusal with hostile text in its reason arrives as text.
		tx = create(t, c.open, "x", "y", c.spares[2])
		tx.Calculation = []byte(`error("` + hostileReason + `", 0)`)
		nodetest.Sign(t, tx, c.spares[2])
		if _, err := c.Client.Submit(context.Background(), tx, false); err != nil {
			t.Fatal(err)
		}
		txid := tx.ID()
		id = hex.EncodeToString(txid[:])
		row = fmt.Sprintf("#txs tr[data-tx=%q]", id)
		b.expect(row+" td:nth-child(3)", "refused")
		b.expect(row+" td:nth-child(4)", "calculation")
		if r := b.text(row + " td:nth-child(5)"); !strings.Contains(r, hostileReason) {
			t.Errorf("live reason %q lacks %q", r, hostileReason)
		}
		b.inert()
		head = c.head(t)
	})

	t.Run("from a block to its transaction, its receipt and a note with its proof", func(t *testing.T) {
		b.t = t
		b.open("/")
		path := b.click(fmt.Sprintf("#blocks a[href='/block/%d']", c.transfer.Height), "#height")
		if want := fmt.Sprintf("/block/%d", c.transfer.Height); path != want {
			t.Fatalf("at %s, want %s", path, want)
		}
		b.expect("#height", h(c.transfer.Height, 10))
		b.expect("#tx-count", "1")
		row := fmt.Sprintf("#txs tr[data-tx=%q]", c.transfer.TxId)
		b.expect(row+" td:nth-child(3)", "accepted")
		b.expect(row+" td:nth-child(7)", gas(c.transfer.Receipt.Gas))
		b.expect("#prev", fmt.Sprintf("← block %d", c.transfer.Height-1))
		b.expect("#next", fmt.Sprintf("block %d →", c.transfer.Height+1))

		if path := b.click(row+" a", "#tx-id"); path != "/tx/"+c.transfer.TxId {
			t.Fatalf("at %s", path)
		}
		b.expect("#state", "committed")
		b.expect("#block", h(c.transfer.Height, 10))
		b.expect("#status", "accepted")
		rc := c.transfer.Receipt
		b.expect("#gas", fmt.Sprintf("lookup %d · calculation %d · validity %d · total %d", rc.Gas.Lookup, rc.Gas.Calculation, rc.Gas.Validity, rc.Gas.Total))
		if b.count("#phase") != 0 || b.count("#reason") != 0 {
			t.Error("an accepted receipt shows a phase or a reason")
		}
		// bob's output: the first output note; it lives on (the change was exported).
		out := rc.Outputs[0]
		b.expect("#outputs div:first-child", out.StateKey)
		if u, err := url.Parse(b.click("#outputs a", "#proof")); err != nil || u.Path != "/note" || u.Query().Get("key") != out.StateKey {
			t.Fatalf("at %v (%v)", u, err)
		}
		b.expect("#proof", fmt.Sprintf("valid: note %s lives at %s in instance %s at height %d", out.Id, out.StateKey, c.instance, head))
		b.expect("#note-id", out.Id)
		b.expect("#provenance", "created here")
		// The page's proof file is what check-proof reads: it proves the same.
		href := run(b, chromedp.Evaluate[string](`document.getElementById("proof-file").getAttribute("href")`))
		st := c.checkProofFile(t, href)
		if st.Note == nil || hex.EncodeToString(st.Note.Key) != out.StateKey[strings.LastIndexByte(out.StateKey, '/')+1:] || st.Height != head {
			t.Errorf("the proof file proves %s", st)
		}
		// The spent input: the proof shows that no note lives there now.
		b.open("/note?key=" + rc.Inputs[0].StateKey)
		b.expect("#proof", fmt.Sprintf("valid: no note at %s in instance %s at height %d", rc.Inputs[0].StateKey, c.instance, head))
		b.expect("#no-note", "No note lives at this state key.")
	})

	t.Run("a refused transaction shows its phase, predicate and reason", func(t *testing.T) {
		b.t = t
		b.open("/tx/" + c.refused.TxId)
		rc := c.refused.Receipt
		b.expect("#state", "refused")
		b.expect("#status", "refused")
		b.expect("#phase", "validity")
		b.expect("#predicate", fmt.Sprintf("input 1, code %s", rc.Predicate.CodeHash))
		b.expect("#reason", rc.Reason)
		if rc.Predicate.CodeHash != hex.EncodeToString(c.tk.Sig[:]) || !strings.Contains(rc.Reason, "has not signed") {
			t.Errorf("the refusal is not sig's: %v", rc)
		}
		// The refusing predicate's code is one click away.
		b.click("#predicate a", "#source")
		b.expect("#source", string(nodetest.Example(t, "sig/sig.lua")))
	})

	t.Run("blocks page by page", func(t *testing.T) {
		b.t = t
		b.open("/blocks")
		if n := b.count("#blocks tbody tr"); n != 20 {
			t.Fatalf("%d blocks on the first page, want 20", n)
		}
		b.expect("#blocks tbody tr:first-child td:first-child", h(head, 10))
		b.expect("#blocks tbody tr:last-child td:first-child", h(head-19, 10))
		if b.count("#newest") != 0 {
			t.Error("the first page links to itself")
		}
		b.click("#older", "#newest")
		b.expect("#blocks tbody tr:first-child td:first-child", h(head-20, 10))
		b.expect("#blocks tbody tr:last-child td:first-child", "0")
		if n := b.count("#blocks tbody tr"); n != int(head-19) || b.count("#older") != 0 {
			t.Errorf("last page: %d blocks, %d older links", n, b.count("#older"))
		}
	})

	t.Run("notes by pattern, page by page, with provenance", func(t *testing.T) {
		b.t = t
		pattern := fmt.Sprintf("*/%x/%x/*", c.tk.App, c.tk.Sig)
		b.open("/notes?pattern=" + pattern)
		if n := b.count("table.notes tr"); n != 21 {
			t.Fatalf("%d rows on the first page, want 20 notes and a heading", n)
		}
		b.click("#more", "#first")
		first := b.count("table.notes tr") - 1
		list, err := c.Client.Notes(context.Background(), pattern)
		if err != nil {
			t.Fatal(err)
		}
		if first != len(list)-20 {
			t.Errorf("%d notes on the second page, want %d", first, len(list)-20)
		}
		b.expect("table.notes tr:nth-child(2) td:nth-child(4)", "created here")
	})

	t.Run("hostile note text and Lua source render inert", func(t *testing.T) {
		b.t = t
		b.open(fmt.Sprintf("/notes?pattern=*/%x/*/*", c.open))
		b.expect("table.notes tr:nth-child(2) td:nth-child(2)", hostileKey)
		b.expect("table.notes tr:nth-child(2) td:nth-child(3)", hostileValue)
		b.inert()
		b.click("table.notes tr:nth-child(2) a", "#note-key")
		b.expect("#note-key", hostileKey)
		b.expect("#note-value", hostileValue)
		b.expect("#proof", fmt.Sprintf("valid: note %s lives at %s in instance %s at height %d", noteID(c.open, hostileKey, hostileValue), c.hostile, c.instance, head))
		b.inert()
		b.open(fmt.Sprintf("/code/%x", c.open))
		b.expect("#source", openLua)
		b.inert()
		b.open("/tx/" + c.denied.TxId)
		b.expect("#reason", c.denied.Receipt.Reason)
		b.inert()
		b.open("/search?q=" + url.QueryEscape(hostileKey))
		b.inert()
	})

	t.Run("exports and imports", func(t *testing.T) {
		b.t = t
		b.open("/exports")
		xs, err := c.Client.Exports(context.Background(), nil)
		if err != nil || len(xs) != 1 {
			t.Fatalf("exports: %v %v", xs, err)
		}
		id := xs[0].Record.ID()
		b.expect("#exports tbody tr td:nth-child(1)", hex.EncodeToString(id[:]))
		b.expect("#exports tbody tr td:nth-child(2)", hex.EncodeToString(c.dest[:]))
		b.expect("#exports tbody tr td:nth-child(3)", c.export.TxId+" #0")
		b.expect("#exports tbody tr td:nth-child(4)", h(c.export.Height, 10))
		b.expect("#peers tbody tr td", "none: this node imports nothing")
		b.open("/exports?export=" + hex.EncodeToString(id[:]))
		b.expect("#import", "not imported here")
	})

	t.Run("the encrypted mempool when it is closed", func(t *testing.T) {
		b.t = t
		b.open("/encrypted")
		b.expect("#mempool-state", "Closed: no threshold key is attached to this instance.")
	})

	t.Run("unknown and malformed names give clear error pages", func(t *testing.T) {
		b.t = t
		zero := strings.Repeat("0", 64)
		for _, tc := range []struct {
			path  string
			code  int64
			title string
			msg   string
		}{
			{"/tx/" + zero, 404, "Not found", "no queued or committed transaction " + zero + ", and none refused recently"},
			{"/tx/zz", 400, "Bad request", `tx_id: "zz" is not 64 hex digits`},
			{"/block/9999", 404, "Not found", fmt.Sprintf("no block at height 9999 (the head is %d)", head)},
			{"/block/x1", 400, "Bad request", `"x1" is not a block height`},
			{"/code/" + zero, 404, "Not found", "no deployed code " + zero},
			{"/search?q=" + zero, 404, "Not found", "no transaction, encrypted payload or code has ID " + zero},
			{"/nowhere", 404, "Not found", "the explorer has no page /nowhere"},
		} {
			if code := b.open(tc.path); code != tc.code {
				t.Errorf("%s: status %d, want %d", tc.path, code, tc.code)
			}
			b.expect("h1", tc.title)
			b.expect("#error", tc.msg)
		}
	})

	t.Run("search finds heights, transactions, notes and code", func(t *testing.T) {
		b.t = t
		for q, want := range map[string]string{
			h(c.transfer.Height, 10):               "/block/" + h(c.transfer.Height, 10),
			c.refused.TxId:                         "/tx/" + c.refused.TxId,
			fmt.Sprintf("%x", c.open):              fmt.Sprintf("/code/%x", c.open),
			c.transfer.Receipt.Outputs[0].StateKey: "/note?key=" + url.QueryEscape(c.transfer.Receipt.Outputs[0].StateKey),
		} {
			b.open("/")
			ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
			_, err := chromedp.RunResponse(ctx, chromedp.SetValue(chromedp.CSS("header input[name=q]"), q), chromedp.Submit(chromedp.CSS("header form")))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimPrefix(run(b, chromedp.Location()), b.base); got != want {
				t.Errorf("search %q led to %s, want %s", q, got, want)
			}
		}
	})
}

// TestExplorerEncrypted follows an encrypted transaction on the encrypted
// mempool's page: its batch waiting for shares, each keyholder's share
// arriving live, the batch opened, and the payload's outcome.
func TestExplorerEncrypted(t *testing.T) {
	b := newBrowser(t)
	tk := nodetest.NewToken(t)
	pk, sks, err := tfhe.TrustedDealerSetup(3, 2) // a dealer: tests only
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.In.AttachThresholdKey(pk); err != nil {
		t.Fatal(err)
	}
	open, err := tk.In.Deploy([]byte(openLua))
	if err != nil {
		t.Fatal(err)
	}
	instance := tk.In.ID()
	tk.Close(t)
	n := nodetest.Start(t, tk.Home, nodetest.Config())
	b.base = n.URL
	ctx := context.Background()

	b.open("/encrypted")
	keyID := pk.ID()
	b.expect("#mempool-state", fmt.Sprintf("Open: payloads are sealed to threshold key %x; 2 of 3 keyholders' shares open a batch.", keyID))
	b.expect("#live", "following")
	tx := create(t, open, "sealed", "note", nodetest.Key(t))
	p, err := fractal.EncryptTx(pk, instance, tx)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := n.Client.SubmitEncrypted(ctx, p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b.expectRow("#batches", "1", "fixed", "1", "0 of 2")
	// The batch then waits for keyholder shares (the API says so at once;
	// the stream says it with the next change).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, _, _, err := n.Client.Pending(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if st != nil && st.State == fractal.BatchWaiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch does not wait for shares: %+v", st)
		}
	}

	b.open("/encrypted")
	b.expect("#batch-number", "1")
	b.expect("#batch-state", "waiting")
	b.expect("#shares", "0 of 2")
	b.expect("#payloads", hex.EncodeToString(pid[:]))
	b.expect("#live", "following")
	for i, want := range [][]string{{"1", "waiting", "1", "1 of 2"}, {"1", "opened", "1", "2 of 2"}} {
		_, payloads, _, err := n.Client.Pending(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := tfhe.PartDecBatch(ctx, sks[2*i], payloads) // keyholders 1 and 3
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Client.SubmitShares(ctx, sb.Encode()); err != nil {
			t.Fatal(err)
		}
		b.expectRow("#batches", want...)
	}

	b.open("/encrypted?payload=" + hex.EncodeToString(pid[:]))
	txid := tx.ID()
	b.expect("#payload-state", "executed")
	b.expect("#payload-tx", hex.EncodeToString(txid[:]))
	b.expect("#status", "accepted")
	b.click("#payload-tx", "#tx-id")
	b.expect("#state", "committed")
}

// TestExplorerImport: a note exported by one node and relayed to another
// shows on the second's pages as an import: the import transaction names
// the export and its source, the note's provenance is the source, the
// source is in the trust file, and the export counts as imported.
func TestExplorerImport(t *testing.T) {
	b := newBrowser(t)
	p := nodetest.StartPair(t, func(a, b *nodetest.Token) { b.Trust(t, a) })
	alice, seed, ida, idb, na, nb := p.Alice, p.Seed, p.IDA, p.IDB, p.NA, p.NB
	ctx := context.Background()
	export := submit(t, na, nodetest.ExportTx(t, alice, idb, seed.Key, 1))
	res, err := relay.New(na.Client, nb.Client, nodetest.Key(t), slog.New(slog.DiscardHandler)).Once(ctx)
	if err != nil || len(res.Imported) != 1 {
		t.Fatalf("relay: %+v %v", res, err)
	}
	exportID := hex.EncodeToString(res.Imported[0][:])
	head, err := nb.Client.Block(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	importTx := hex.EncodeToString(head.TxIDs[0][:])
	hexa := hex.EncodeToString(ida[:])

	b.base = nb.URL
	b.open("/tx/" + importTx)
	b.expect("#import", fmt.Sprintf("export %s of transaction %s from instance %s, proven at its height %d", exportID, export.TxId, hexa, export.Height))
	b.expect("#status", "accepted")
	b.click("#outputs a", "#proof")
	b.expect("#provenance", hexa)
	imported := b.text("#note-id")

	b.open("/exports?export=" + exportID)
	b.expect("#import", "imported as note "+imported)
	b.expect("#peers tbody tr td:first-child", hexa)
	b.click("#peers tbody tr a", "table.notes")
	b.expect("table.notes tr:nth-child(2) td:nth-child(3)", seed.Value)
	b.expect("table.notes tr:nth-child(2) td:nth-child(4)", hexa)
	if n := b.count("table.notes tr"); n != 2 {
		t.Errorf("%d rows of notes from a, want the one imported", n-1)
	}
}
