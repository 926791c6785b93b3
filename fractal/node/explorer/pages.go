package explorer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
)

// Page sizes: what one page lists.
const (
	homeBlocks = 10 // latest blocks on the home page
	homeTxs    = 20 // latest transactions on the home page, from those blocks
	pageSize   = 20 // blocks, notes and exports per page
)

// txRow is one transaction in a list: its ID, where it is and, once it
// ran, its receipt.
type txRow struct {
	ID      string
	State   v1.TransactionState
	Height  uint64
	Receipt *v1.Receipt
}

// receipt reads where the transaction id is, with its receipt.
func (e *Explorer) receipt(r *http.Request, id string) (txRow, error) {
	rc, err := e.api.GetReceipt(r.Context(), connect.NewRequest(&v1.GetReceiptRequest{TxId: id}))
	if err != nil {
		return txRow{}, err
	}
	return txRow{ID: id, State: rc.Msg.State, Height: rc.Msg.Height, Receipt: rc.Msg.Receipt}, nil
}

// blockTxs returns the rows of a block's transactions, in block order.
func (e *Explorer) blockTxs(r *http.Request, b *v1.Block) ([]txRow, error) {
	out := make([]txRow, 0, len(b.TxIds))
	for _, id := range b.TxIds {
		row, err := e.receipt(r, id)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
}

func (e *Explorer) getBlock(r *http.Request, h uint64) (*v1.Block, error) {
	b, err := e.api.GetBlock(r.Context(), connect.NewRequest(&v1.GetBlockRequest{Height: &h}))
	if err != nil {
		return nil, err
	}
	return b.Msg.Block, nil
}

type homeData struct {
	Blocks []*v1.BlockHeader
	Txs    []txRow
}

// home lists the latest blocks and, newest first, the transactions in
// them, and follows the event stream from the block after the head it
// shows, so that nothing sealed in between is missed.
func (e *Explorer) home(r *http.Request, st *v1.GetStatusResponse) (*view, error) {
	head := st.Head.Height
	list, err := e.api.ListBlocks(r.Context(), connect.NewRequest(&v1.ListBlocksRequest{StartHeight: &head, PageSize: homeBlocks}))
	if err != nil {
		return nil, err
	}
	d := &homeData{Blocks: list.Msg.Blocks}
	for _, hdr := range d.Blocks {
		if hdr.TxCount == 0 || len(d.Txs) == homeTxs {
			continue
		}
		b, err := e.getBlock(r, hdr.Height)
		if err != nil {
			return nil, err
		}
		rows, err := e.blockTxs(r, b)
		if err != nil {
			return nil, err
		}
		for i := len(rows) - 1; i >= 0 && len(d.Txs) < homeTxs; i-- {
			d.Txs = append(d.Txs, rows[i])
		}
	}
	live := fmt.Sprintf("/events?receipts=1&live=1&start_height=%d", head+1)
	return &view{Page: "home", Title: "Latest blocks and transactions", Live: live, Data: d}, nil
}

type blocksData struct {
	Blocks []*v1.BlockHeader
	// Next is the page token of older blocks; empty on the last page.
	Next  string
	First bool
}

func (e *Explorer) blocks(r *http.Request, _ *v1.GetStatusResponse) (*view, error) {
	token := r.URL.Query().Get("page")
	list, err := e.api.ListBlocks(r.Context(), connect.NewRequest(&v1.ListBlocksRequest{PageSize: pageSize, PageToken: token}))
	if err != nil {
		return nil, err
	}
	d := &blocksData{Blocks: list.Msg.Blocks, Next: list.Msg.NextPageToken, First: token == ""}
	return &view{Page: "blocks", Title: "Blocks", Data: d}, nil
}

type blockData struct {
	Header     *v1.BlockHeader
	Txs        []txRow
	Prev, Next string // heights of the neighbouring blocks; empty: none
}

func (e *Explorer) block(r *http.Request, st *v1.GetStatusResponse) (*view, error) {
	text := r.PathValue("height")
	h, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return nil, &pageError{http.StatusBadRequest, fmt.Sprintf("%q is not a block height", text)}
	}
	b, err := e.getBlock(r, h)
	if err != nil {
		return nil, err
	}
	d := &blockData{Header: b.Header}
	if d.Txs, err = e.blockTxs(r, b); err != nil {
		return nil, err
	}
	if h > 0 {
		d.Prev = strconv.FormatUint(h-1, 10)
	}
	if h < st.Head.Height {
		d.Next = strconv.FormatUint(h+1, 10)
	}
	return &view{Page: "block", Title: fmt.Sprintf("Block %d", h), Data: d}, nil
}

type txData struct {
	txRow
	Index uint32
	// JSON is the transaction's JSON form, indented; empty when the node no
	// longer has the transaction (a refused one).
	JSON   string
	Import *importClaim
}

func (e *Explorer) tx(r *http.Request, _ *v1.GetStatusResponse) (*view, error) {
	id := r.PathValue("id")
	row, err := e.receipt(r, id)
	if err != nil {
		return nil, err
	}
	d := &txData{txRow: row}
	if row.State != v1.TransactionState_TRANSACTION_STATE_REFUSED {
		t, err := e.api.GetTransaction(r.Context(), connect.NewRequest(&v1.GetTransactionRequest{TxId: id}))
		if err != nil {
			return nil, err
		}
		d.Index = t.Msg.Index
		var buf bytes.Buffer
		if json.Indent(&buf, []byte(t.Msg.Transaction.Json), "", "  ") == nil {
			d.JSON = buf.String()
		}
		if d.Import, err = importOf(t.Msg.Transaction.Encoding); err != nil {
			return nil, err
		}
	}
	return &view{Page: "tx", Title: "Transaction " + id, Data: d}, nil
}

type notesData struct {
	Pattern string
	Notes   []noteRow
	Height  uint64
	Next    string
	First   bool
}

func (e *Explorer) notes(r *http.Request, st *v1.GetStatusResponse) (*view, error) {
	q := r.URL.Query()
	pattern := q.Get("pattern")
	if pattern == "" {
		pattern = "*/*/*/*"
	}
	list, err := e.api.ListNotes(r.Context(), connect.NewRequest(&v1.ListNotesRequest{Pattern: pattern, PageSize: pageSize, PageToken: q.Get("page")}))
	if err != nil {
		return nil, err
	}
	d := &notesData{Pattern: pattern, Height: list.Msg.Height, Next: list.Msg.NextPageToken, First: q.Get("page") == ""}
	for _, n := range list.Msg.Notes {
		d.Notes = append(d.Notes, newNoteRow(n, st.InstanceId))
	}
	return &view{Page: "notes", Title: "Notes matching " + pattern, Data: d}, nil
}

type noteData struct {
	Key      string
	Note     *noteRow // nil: no note lives at Key
	Proof    proofCheck
	Executor string
	Instance string
}

// note shows what lives at one state key, from a proof the page checks
// against the executor's key: the note shown is the one the proof holds.
func (e *Explorer) note(r *http.Request, st *v1.GetStatusResponse) (*view, error) {
	key := r.URL.Query().Get("key")
	if key == "" {
		return nil, &pageError{http.StatusBadRequest, "no state key: /note?key=PROVENANCE/APPLICATION/OWNER/KEY"}
	}
	qp, err := e.api.QueryWithProof(r.Context(), connect.NewRequest(&v1.QueryWithProofRequest{StateKey: key}))
	if err != nil {
		return nil, err
	}
	d := &noteData{Key: key, Executor: st.Executor, Instance: st.InstanceId}
	var n *v1.Note
	d.Proof, n = checkProof(qp.Msg.Proof, st.Executor, st.InstanceId)
	if n != nil {
		row := newNoteRow(n, st.InstanceId)
		d.Note = &row
	}
	return &view{Page: "note", Title: "State key " + key, Data: d}, nil
}

// proofFile serves a state key's proof file, for "fractal check-proof".
func (e *Explorer) proofFile(w http.ResponseWriter, r *http.Request) {
	qp, err := e.api.QueryWithProof(r.Context(), connect.NewRequest(&v1.QueryWithProofRequest{StateKey: r.URL.Query().Get("key")}))
	if err != nil {
		v := e.errorView(r, err)
		http.Error(w, v.Data.(string), v.Code)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="proof.bin"`)
	w.Write(qp.Msg.Proof)
}

type exportsData struct {
	To      string
	Exports []exportRow
	Next    string
	First   bool
	Peers   []*v1.Peer
	// The import lookup: the export ID asked about and the answer.
	Lookup string
	Import *v1.GetImportStatusResponse
}

type exportRow struct {
	*v1.Export
	Note noteRow
}

func (e *Explorer) exports(r *http.Request, st *v1.GetStatusResponse) (*view, error) {
	q := r.URL.Query()
	d := &exportsData{To: q.Get("to"), First: q.Get("page") == "", Lookup: q.Get("export")}
	list, err := e.api.ListExports(r.Context(), connect.NewRequest(&v1.ListExportsRequest{To: d.To, PageSize: pageSize, PageToken: q.Get("page")}))
	if err != nil {
		return nil, err
	}
	d.Next = list.Msg.NextPageToken
	for _, x := range list.Msg.Exports {
		d.Exports = append(d.Exports, exportRow{Export: x, Note: newNoteRow(x.Note, st.InstanceId)})
	}
	peers, err := e.api.ListPeers(r.Context(), connect.NewRequest(&v1.ListPeersRequest{PageSize: 100}))
	if err != nil {
		return nil, err
	}
	d.Peers = peers.Msg.Peers
	if d.Lookup != "" {
		imp, err := e.api.GetImportStatus(r.Context(), connect.NewRequest(&v1.GetImportStatusRequest{ExportId: d.Lookup}))
		if err != nil {
			return nil, err
		}
		d.Import = imp.Msg
	}
	return &view{Page: "exports", Title: "Exports and imports", Data: d}, nil
}

type encryptedData struct {
	Key     *v1.GetThresholdKeyResponse // nil: no threshold key, the mempool is closed
	Pending *v1.GetPendingEncryptedResponse
	// The payload lookup: the payload ID asked about and the answer.
	Lookup  string
	Outcome *v1.GetEncryptedOutcomeResponse
}

func (e *Explorer) encrypted(r *http.Request, st *v1.GetStatusResponse) (*view, error) {
	d := &encryptedData{Lookup: r.URL.Query().Get("payload")}
	if st.EncryptedMempool {
		k, err := e.api.GetThresholdKey(r.Context(), connect.NewRequest(&v1.GetThresholdKeyRequest{}))
		if err != nil {
			return nil, err
		}
		d.Key = k.Msg
		p, err := e.api.GetPendingEncrypted(r.Context(), connect.NewRequest(&v1.GetPendingEncryptedRequest{}))
		if err != nil {
			return nil, err
		}
		d.Pending = p.Msg
	}
	if d.Lookup != "" {
		o, err := e.api.GetEncryptedOutcome(r.Context(), connect.NewRequest(&v1.GetEncryptedOutcomeRequest{PayloadId: d.Lookup}))
		if err != nil {
			return nil, err
		}
		d.Outcome = o.Msg
	}
	return &view{Page: "encrypted", Title: "Encrypted mempool", Live: "/events?live=1", Data: d}, nil
}

type codeData struct {
	Hash   string
	Source string
}

func (e *Explorer) code(r *http.Request, _ *v1.GetStatusResponse) (*view, error) {
	h := r.PathValue("hash")
	c, err := e.api.GetCode(r.Context(), connect.NewRequest(&v1.GetCodeRequest{CodeHash: h}))
	if err != nil {
		return nil, err
	}
	return &view{Page: "code", Title: "Code " + h, Data: &codeData{Hash: h, Source: string(c.Msg.Code)}}, nil
}

// search sends a query to its page: a height to its block, a pattern to
// the notes it matches, a state key to its note, and an ID to the
// transaction, encrypted payload or code it names.
func (e *Explorer) search(r *http.Request, _ *v1.GetStatusResponse) (*view, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if _, err := strconv.ParseUint(q, 10, 64); err == nil && len(q) < 64 {
		return redirect("/block/" + q)
	}
	if strings.Contains(q, "/") {
		if strings.Contains(q, "*") {
			return redirect("/notes?pattern=" + url.QueryEscape(q))
		}
		return redirect("/note?key=" + url.QueryEscape(q))
	}
	ctx := r.Context()
	if _, err := e.api.GetReceipt(ctx, connect.NewRequest(&v1.GetReceiptRequest{TxId: q})); err == nil {
		return redirect("/tx/" + q)
	} else if connect.CodeOf(err) == connect.CodeInvalidArgument {
		return nil, &pageError{http.StatusBadRequest, fmt.Sprintf("%q is not a block height, a state key, a pattern or an ID (64 hex digits)", q)}
	}
	if _, err := e.api.GetEncryptedOutcome(ctx, connect.NewRequest(&v1.GetEncryptedOutcomeRequest{PayloadId: q})); err == nil {
		return redirect("/encrypted?payload=" + q)
	}
	if _, err := e.api.GetCode(ctx, connect.NewRequest(&v1.GetCodeRequest{CodeHash: q})); err == nil {
		return redirect("/code/" + q)
	}
	return nil, &pageError{http.StatusNotFound, fmt.Sprintf("no transaction, encrypted payload or code has ID %s", q)}
}

// redirectError sends the visitor on to another page.
type redirectError string

func (e redirectError) Error() string { return "see " + string(e) }

func redirect(to string) (*view, error) { return nil, redirectError(to) }
