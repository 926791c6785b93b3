// Package explorer is the node's web pages, served at "/": the latest
// blocks and transactions, kept live from the event stream; a block with
// its transactions and receipts; a transaction with its receipt; notes by
// pattern with their provenance, and one note with its proof checked;
// exports, imports and the trust file; the encrypted mempool's batches;
// deployed code.
//
// Pages are rendered on the server with html/template, which escapes every
// value the chain holds (note keys and values, Lua source, refusal reasons,
// logs: all written by an attacker) for the place it appears. One small
// embedded script follows /events on the pages that ask for it and adds
// what arrives as text. Every asset is embedded; nothing is fetched from
// anywhere else, and the Content-Security-Policy forbids it (decision 118).
//
// The explorer reads the node only through the fractal.v1 API (API), so
// the same pages can be served by any process that holds a client.
package explorer

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
)

// API is what the explorer reads of a node: the read methods of
// fractal.v1's FractalService. The node's own service (package rpc)
// implements it in-process; a fractalv1connect.FractalServiceClient
// implements it over the network.
type API interface {
	GetStatus(context.Context, *connect.Request[v1.GetStatusRequest]) (*connect.Response[v1.GetStatusResponse], error)
	GetBlock(context.Context, *connect.Request[v1.GetBlockRequest]) (*connect.Response[v1.GetBlockResponse], error)
	ListBlocks(context.Context, *connect.Request[v1.ListBlocksRequest]) (*connect.Response[v1.ListBlocksResponse], error)
	GetTransaction(context.Context, *connect.Request[v1.GetTransactionRequest]) (*connect.Response[v1.GetTransactionResponse], error)
	GetReceipt(context.Context, *connect.Request[v1.GetReceiptRequest]) (*connect.Response[v1.GetReceiptResponse], error)
	ListNotes(context.Context, *connect.Request[v1.ListNotesRequest]) (*connect.Response[v1.ListNotesResponse], error)
	QueryWithProof(context.Context, *connect.Request[v1.QueryWithProofRequest]) (*connect.Response[v1.QueryWithProofResponse], error)
	GetCode(context.Context, *connect.Request[v1.GetCodeRequest]) (*connect.Response[v1.GetCodeResponse], error)
	ListExports(context.Context, *connect.Request[v1.ListExportsRequest]) (*connect.Response[v1.ListExportsResponse], error)
	GetImportStatus(context.Context, *connect.Request[v1.GetImportStatusRequest]) (*connect.Response[v1.GetImportStatusResponse], error)
	ListPeers(context.Context, *connect.Request[v1.ListPeersRequest]) (*connect.Response[v1.ListPeersResponse], error)
	GetThresholdKey(context.Context, *connect.Request[v1.GetThresholdKeyRequest]) (*connect.Response[v1.GetThresholdKeyResponse], error)
	GetPendingEncrypted(context.Context, *connect.Request[v1.GetPendingEncryptedRequest]) (*connect.Response[v1.GetPendingEncryptedResponse], error)
	GetEncryptedOutcome(context.Context, *connect.Request[v1.GetEncryptedOutcomeRequest]) (*connect.Response[v1.GetEncryptedOutcomeResponse], error)
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// securityPolicy lets a page load only the explorer's own script,
// stylesheet and event stream: a value that escaped its escaping still
// could not run or fetch anything.
const securityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Explorer serves the pages.
type Explorer struct {
	api   API
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns the explorer of the node api answers for; log receives the
// failures that are the node's, not the visitor's.
func New(api API, log *slog.Logger) *Explorer {
	e := &Explorer{api: api, log: log, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, name := range names {
		if name == "templates/layout.html" {
			continue
		}
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		e.pages[page] = template.Must(template.Must(layout.Clone()).ParseFS(templateFiles, name))
	}
	static, _ := fs.Sub(staticFiles, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	e.mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no folder listings
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	e.route("GET /{$}", e.home)
	e.route("GET /blocks", e.blocks)
	e.route("GET /block/{height}", e.block)
	e.route("GET /tx/{id}", e.tx)
	e.route("GET /notes", e.notes)
	e.route("GET /note", e.note)
	e.mux.HandleFunc("GET /proof", e.proofFile)
	e.route("GET /exports", e.exports)
	e.route("GET /encrypted", e.encrypted)
	e.route("GET /code/{hash}", e.code)
	e.route("GET /search", e.search)
	e.route("/", func(r *http.Request, _ *v1.GetStatusResponse) (*view, error) {
		return nil, &pageError{http.StatusNotFound, fmt.Sprintf("the explorer has no page %s", r.URL.Path)}
	})
	return e
}

func (e *Explorer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", securityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	e.mux.ServeHTTP(w, r)
}

// view is what a page handler hands the layout: the page's template, its
// title, the events it follows live, and its own data.
type view struct {
	Page  string
	Title string
	// Live is the /events query the page follows; empty: none.
	Live string
	Data any
	// Filled by render.
	Status *v1.GetStatusResponse
	Code   int
}

// pageError is a visitor's request that has no page: its HTTP status and
// why, in words.
type pageError struct {
	code int
	msg  string
}

func (e *pageError) Error() string { return e.msg }

// route serves a page: it reads the node's status (every page's footer),
// runs h, and renders its view, or the error page.
func (e *Explorer) route(pattern string, h func(*http.Request, *v1.GetStatusResponse) (*view, error)) {
	e.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		st, err := e.api.GetStatus(r.Context(), connect.NewRequest(&v1.GetStatusRequest{}))
		var v *view
		if err == nil {
			v, err = h(r, st.Msg)
		}
		var to redirectError
		if errors.As(err, &to) {
			http.Redirect(w, r, string(to), http.StatusSeeOther)
			return
		}
		if err != nil {
			v = e.errorView(r, err)
		}
		if st != nil {
			v.Status = st.Msg
		}
		e.render(w, v)
	})
}

// errorView words an error as a page: a visitor's bad request or a name
// the node does not know keeps the node's message; anything else is the
// node's failure, logged.
func (e *Explorer) errorView(r *http.Request, err error) *view {
	v := &view{Page: "error", Title: "Error", Code: http.StatusInternalServerError, Data: err.Error()}
	var pe *pageError
	var ce *connect.Error
	switch {
	case errors.As(err, &pe):
		v.Code, v.Data = pe.code, pe.msg
	case errors.As(err, &ce) && ce.Code() == connect.CodeNotFound:
		v.Code, v.Data = http.StatusNotFound, ce.Message()
	case errors.As(err, &ce) && ce.Code() == connect.CodeInvalidArgument:
		v.Code, v.Data = http.StatusBadRequest, ce.Message()
	default:
		e.log.Error("explorer page", "path", r.URL.Path, "err", err)
	}
	switch v.Code {
	case http.StatusNotFound:
		v.Title = "Not found"
	case http.StatusBadRequest:
		v.Title = "Bad request"
	}
	return v
}

// render writes a page whole, or a plain error when its template fails
// (nothing half-written).
func (e *Explorer) render(w http.ResponseWriter, v *view) {
	var buf bytes.Buffer
	if err := e.pages[v.Page].ExecuteTemplate(&buf, "layout", v); err != nil {
		e.log.Error("explorer template", "page", v.Page, "err", err)
		http.Error(w, "the explorer could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if v.Code != 0 {
		w.WriteHeader(v.Code)
	}
	w.Write(buf.Bytes())
}
