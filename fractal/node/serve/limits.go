package serve

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"connectrpc.com/connect"
	"golang.org/x/sync/semaphore"
)

// smallBody is what every call may read without taking from the request
// budget: a transfer or a read is far smaller, so ordinary calls never
// wait on large uploads. Calls in flight are bounded by max_connections
// and max_streams_per_connection.
const smallBody = 64 << 10

// requestBudget bounds the request bytes all calls hold at once beyond
// smallBody each (max_request_bytes_in_flight): a body costs about twice
// its size while it is read and decoded, and without a bound many large
// bodies at once are the node's memory.
type requestBudget struct {
	sem   *semaphore.Weighted
	limit int64
}

func newRequestBudget(limit int64) *requestBudget {
	return &requestBudget{sem: semaphore.NewWeighted(limit), limit: limit}
}

// exhausted is the refusal of a call the budget cannot take now.
func (b *requestBudget) exhausted() *connect.Error {
	return connect.NewError(connect.CodeResourceExhausted,
		fmt.Errorf("the node is reading %d MiB of requests, its limit (max_request_bytes_in_flight); try again", b.limit>>20))
}

// take charges r's body to the budget: a declared length over smallBody up
// front (up to max, the most that will be read), an undeclared one as it is
// read. It returns the body to read and the release of what it charged, or
// the refusal when the budget cannot take the declared length now. A
// refused call's connection is closed after the answer: the rest of its
// body is never read.
func (b *requestBudget) take(w http.ResponseWriter, r *http.Request, max int64) (io.ReadCloser, func(), *connect.Error) {
	switch n := min(r.ContentLength, max); {
	case n >= 0 && n <= smallBody:
		return r.Body, func() {}, nil
	case n > smallBody:
		if !b.sem.TryAcquire(n) {
			w.Header().Set("Connection", "close")
			return nil, nil, b.exhausted()
		}
		return r.Body, func() { b.sem.Release(n) }, nil
	}
	body := &chargedBody{ReadCloser: r.Body, b: b, header: w.Header()}
	return body, body.release, nil
}

// chargedBody charges what is read of an undeclared body beyond smallBody.
type chargedBody struct {
	io.ReadCloser
	b             *requestBudget
	header        http.Header
	read, charged int64
	mu            sync.Mutex
	released      bool
}

func (c *chargedBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read += int64(n)
	if over := c.read - smallBody - c.charged; over > 0 && !c.released {
		if !c.b.sem.TryAcquire(over) {
			c.header.Set("Connection", "close") // on the handler's goroutine, before it answers
			return 0, c.b.exhausted()           // connect passes its own error through
		}
		c.charged += over
	}
	return n, err
}

func (c *chargedBody) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.released {
		c.released = true
		c.b.sem.Release(c.charged)
	}
}

// clientStreams caps the streams one client address holds
// (max_streams_per_client), beside the node's cap over all clients.
type clientStreams struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

func newClientStreams(max int) *clientStreams {
	return &clientStreams{max: max, open: map[string]int{}}
}

// limit refuses a stream from a client that holds max already.
func (s *clientStreams) limit(h http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			client = r.RemoteAddr
		}
		s.mu.Lock()
		full := s.open[client] >= s.max
		if !full {
			s.open[client]++
		}
		s.mu.Unlock()
		if full {
			refuseCall(ew, w, r, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("%s holds %d streams, the node's limit for one client (max_streams_per_client); close one first", client, s.max)))
			return
		}
		defer func() {
			s.mu.Lock()
			if s.open[client]--; s.open[client] == 0 {
				delete(s.open, client)
			}
			s.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// refuseCall answers r with err in the caller's protocol: Connect, gRPC or
// gRPC-web when it speaks one, else plain HTTP with the code's status.
func refuseCall(ew *connect.ErrorWriter, w http.ResponseWriter, r *http.Request, err *connect.Error) {
	if ew.IsSupported(r) {
		ew.Write(w, r, err)
		return
	}
	http.Error(w, err.Message(), httpStatus(err.Code()))
}
