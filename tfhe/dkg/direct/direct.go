// Package direct carries DKG envelopes between keyholder processes over
// plain HTTP, with no node in between: each keyholder serves one endpoint,
// POST Path with an envelope's canonical bytes as the body, and posts its
// own envelopes to every other keyholder's, retrying until each is taken or
// refused. Envelopes prove themselves (dkg.Session.Open), so the endpoint
// needs no authentication of its own; it refuses, with the reason as plain
// text, whatever does not open, so that a keyholder started with another
// session or key list hears why (docs/decisions/131).
package direct

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fractalvm/fractal/tfhe/dkg"
)

// Path is the endpoint's path.
const Path = "/fractal/dkg/v2/envelope"

// Transport is one keyholder's side: the endpoint it serves and a sender
// per other keyholder. It implements dkg.Transport.
type Transport struct {
	s      *dkg.Session
	self   int
	log    func(string)
	in     chan []byte
	slots  chan struct{} // requests being handled, bounded
	srv    *http.Server
	client *http.Client
	ctx    context.Context
	stop   context.CancelFunc
	peers  []*peer
	wg     sync.WaitGroup
}

type peer struct {
	name, url string
	mu        sync.Mutex
	queue     [][]byte
	busy      int // queued or being posted
	wake      chan struct{}
}

// New serves keyholder self's endpoint of session s on ln and sends to the
// other keyholders at addrs (host:port by keyholder number, addrs[self-1]
// being this one's). log gets a line when a peer refuses an envelope or
// cannot be reached (once until it can), and a warning when ln is not on a
// loopback address.
func New(s *dkg.Session, self int, addrs []string, ln net.Listener, log func(string)) (*Transport, error) {
	if len(addrs) != s.N() || self < 1 || self > s.N() {
		return nil, fmt.Errorf("dkg: %d addresses for %d keyholders (this one %d)", len(addrs), s.N(), self)
	}
	if log == nil {
		log = func(string) {}
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		log(fmt.Sprintf("warning: listening on %s, which is not a loopback address: anyone who reaches it can send envelopes (they are checked, but cost work)", ln.Addr()))
	}
	ctx, stop := context.WithCancel(context.Background())
	t := &Transport{
		s: s, self: self, log: log, ctx: ctx, stop: stop,
		in:     make(chan []byte, 16*s.N()),
		slots:  make(chan struct{}, 2*s.N()),
		client: &http.Client{Timeout: 10 * time.Second},
	}
	t.srv = &http.Server{
		Handler:           http.HandlerFunc(t.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	for i, a := range addrs {
		if i+1 == self {
			continue
		}
		p := &peer{name: fmt.Sprintf("keyholder %d (%s)", i+1, a), url: "http://" + a + Path, wake: make(chan struct{}, 1)}
		t.peers = append(t.peers, p)
		t.wg.Add(1)
		go t.sendLoop(p)
	}
	go t.srv.Serve(ln)
	return t, nil
}

// serve takes one envelope: 204 when it opens, 400 with the reason when it
// does not, 503 when too many are being handled or waiting (the sender
// tries again).
func (t *Transport) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		http.Error(w, "not found: the one endpoint is POST "+Path, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST an envelope", http.StatusMethodNotAllowed)
		return
	}
	select {
	case t.slots <- struct{}{}:
		defer func() { <-t.slots }()
	default:
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, dkg.MaxEnvelope))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		http.Error(w, fmt.Sprintf("envelope over %d bytes", dkg.MaxEnvelope), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "reading the envelope: "+err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := t.s.Open(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case t.in <- raw:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}
}

// Send queues e for every other keyholder.
func (t *Transport) Send(e *dkg.Envelope) {
	raw := e.Encode()
	for _, p := range t.peers {
		p.mu.Lock()
		p.queue = append(p.queue, raw)
		p.busy++
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Received delivers the envelopes other keyholders posted.
func (t *Transport) Received() <-chan []byte { return t.in }

// sendLoop posts p's queue in order, each envelope until it is taken (2xx)
// or refused (4xx, logged), retrying after a network error or 5xx with a
// growing pause.
func (t *Transport) sendLoop(p *peer) {
	defer t.wg.Done()
	down := false
	for {
		p.mu.Lock()
		var raw []byte
		if len(p.queue) > 0 {
			raw, p.queue = p.queue[0], p.queue[1:]
		}
		p.mu.Unlock()
		if raw == nil {
			select {
			case <-p.wake:
				continue
			case <-t.ctx.Done():
				return
			}
		}
		for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
			status, text, err := t.post(p.url, raw)
			if err == nil && status/100 == 2 {
				if down {
					t.log(p.name + " is reachable again")
					down = false
				}
				break
			}
			if err == nil && status/100 == 4 {
				t.log(fmt.Sprintf("%s refused our %s: %s", p.name, kindOf(raw), text))
				break
			}
			if !down {
				why := text
				if err != nil {
					why = err.Error()
				}
				t.log(fmt.Sprintf("%s does not take our %s yet (%s); trying again", p.name, kindOf(raw), why))
				down = true
			}
			select {
			case <-time.After(pause):
			case <-t.ctx.Done():
				return
			}
		}
		p.mu.Lock()
		p.busy--
		p.mu.Unlock()
	}
}

func (t *Transport) post(url string, raw []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(t.ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(text)), nil
}

func kindOf(raw []byte) string {
	if e, err := dkg.DecodeEnvelope(raw); err == nil {
		return e.Kind.String()
	}
	return "envelope"
}

// Flush waits until every envelope sent so far has been taken or refused
// by its keyholder, or ctx ends; it returns the keyholders still owed one.
func (t *Transport) Flush(ctx context.Context) []string {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var owed []string
		for _, p := range t.peers {
			p.mu.Lock()
			if p.busy > 0 {
				owed = append(owed, p.name)
			}
			p.mu.Unlock()
		}
		if len(owed) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return owed
		case <-tick.C:
		}
	}
}

// Close stops the endpoint and the senders.
func (t *Transport) Close() error {
	t.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := t.srv.Shutdown(ctx)
	t.wg.Wait()
	return err
}
