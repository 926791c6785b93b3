package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/node/rpc"
)

// handler routes the node's one port: the API under its service path,
// /healthz, /readyz, /metrics, /events, and root (the explorer) at "/".
func handler(svc *rpc.Service, reg *prometheus.Registry, root http.Handler) http.Handler {
	n := svc.Backend()
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fractal_api_request_duration_seconds", Help: "Time the node took to answer an API call (a stream: its whole life), by method and code.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
	}, []string{"method", "code"})
	reg.MustRegister(lat)
	cfg := n.Config()
	budget := newRequestBudget(cfg.MaxRequestBytesInFlight)
	limits := func(h http.Handler) http.Handler {
		return bounded(h, budget, cfg.MaxRequestBytes, time.Duration(cfg.RequestReadTimeout))
	}
	perClient := newClientStreams(cfg.MaxStreamsPerClient)
	path, api := svc.Handler(connect.WithInterceptors(latency{lat}))
	mux := http.NewServeMux()
	mux.Handle(path, limits(knownMethods(api)))
	for _, m := range []string{"Watch", "CompactBlocks"} {
		mux.Handle(path+m, perClient.limit(limits(streaming(api, time.Duration(cfg.WriteTimeout)))))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /events", perClient.limit(limits(streaming(events(svc), time.Duration(cfg.WriteTimeout)))))
	mux.Handle("/", root)
	return mux
}

// knownMethods answers a call to a method the service does not have with
// unimplemented, in the caller's protocol.
func knownMethods(api http.Handler) http.Handler {
	known := map[string]bool{}
	ms := v1.File_fractal_v1_fractal_proto.Services().ByName("FractalService").Methods()
	for i := range ms.Len() {
		known["/fractal.v1.FractalService/"+string(ms.Get(i).Name())] = true
	}
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if known[r.URL.Path] {
			api.ServeHTTP(w, r)
			return
		}
		refuseCall(ew, w, r, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("no method %s in fractal.v1.FractalService", strings.TrimPrefix(r.URL.Path, "/fractal.v1.FractalService/"))))
	})
}

// bounded holds a call to the node's limits: a body of at most max bytes,
// read within readTimeout (a client that trickles its request is cut off),
// charged to the request budget until the call ends. A request without a
// body (GET /events) is read once its headers are: a read deadline then
// would cut off the stream it answers.
func bounded(h http.Handler, budget *requestBudget, max int64, readTimeout time.Duration) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		charged, release, err := budget.take(w, r, max)
		if err != nil {
			refuseCall(ew, w, r, err)
			return
		}
		defer release()
		rc := http.NewResponseController(w)
		body := &timedBody{ReadCloser: http.MaxBytesReader(w, charged, max)}
		body.timer = time.AfterFunc(readTimeout, func() {
			if !body.done.Load() {
				rc.SetReadDeadline(time.Now())
			}
		})
		defer body.timer.Stop()
		r.Body = body
		h.ServeHTTP(w, r)
	})
}

// streaming gives every write of a stream's response a deadline, so that a
// client that stops reading is cut off and its stream slot freed. (A
// unary answer is one small write; the connection's flow control bounds
// what a client that does not read it holds up.)
func streaming(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&timedWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}, r)
	})
}

// timedBody records when the request body has been read to its end.
type timedBody struct {
	io.ReadCloser
	done  atomic.Bool
	timer *time.Timer
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.done.Store(true)
		b.timer.Stop()
	}
	return n, err
}

// timedWriter gives every write a deadline.
type timedWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

func (w *timedWriter) Flush() {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	w.rc.Flush()
}

func (w *timedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// latency observes each call's duration by method and code.
type latency struct{ h *prometheus.HistogramVec }

func (l latency) observe(procedure string, start time.Time, err error) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	l.h.WithLabelValues(procedure[len("/fractal.v1.FractalService/"):], code).Observe(time.Since(start).Seconds())
}

func (l latency) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		l.observe(req.Spec().Procedure, start, err)
		return resp, err
	}
}

func (l latency) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l latency) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		l.observe(conn.Spec().Procedure, start, err)
		return err
	}
}

// events serves Watch as server-sent events, for a browser (the explorer):
// GET /events?start_height=H&receipts=1&live=1&pattern=P (repeatable); each
// event is one "data:" line holding the WatchResponse's JSON. An error
// after the first event is an "event: error" whose data is {"code",
// "message"}; resume with start_height one past the last block event.
func events(svc *rpc.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := &v1.WatchRequest{Receipts: q.Get("receipts") == "1", LiveOnlyEvents: q.Get("live") == "1", NotePatterns: q["pattern"]}
		if s := q.Get("start_height"); s != "" {
			h, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				http.Error(w, "start_height is not a height", http.StatusBadRequest)
				return
			}
			req.StartHeight = &h
		}
		started := false
		err := svc.WatchEvents(r.Context(), req, func(ev *v1.WatchResponse) error {
			if !started {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			if ev == nil { // subscribed: the headers go now
				return http.NewResponseController(w).Flush()
			}
			b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return err
			}
			return http.NewResponseController(w).Flush()
		})
		if err == nil || (r.Context().Err() != nil && !errors.Is(context.Cause(r.Context()), rpc.ErrStopping)) {
			return // the client went away
		}
		code, msg := connect.CodeOf(err), err.Error()
		var ce *connect.Error
		if errors.As(err, &ce) {
			msg = ce.Message()
		}
		if !started {
			http.Error(w, msg, httpStatus(code))
			return
		}
		data, _ := json.Marshal(map[string]string{"code": code.String(), "message": msg})
		fmt.Fprintf(w, "event: error\ndata: %s\n\n", data)
	})
}

// httpStatus is the HTTP status Connect gives a code.
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeNotFound, connect.CodeUnimplemented:
		return http.StatusNotFound
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
