package serve

import (
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// limitListener accepts at most max connections at once, and at most
// perClient from one remote address (decision 170). Over max, the next
// connection waits in the system's backlog until one closes; over
// perClient, it is accepted and closed at once, so that one address
// holding idle or half-open connections cannot take every slot. The
// server's header and idle timeouts close the connections of clients that
// send nothing.
func limitListener(ln net.Listener, max, perClient int, reg prometheus.Registerer) net.Listener {
	open := prometheus.NewGauge(prometheus.GaugeOpts{Name: "fractal_api_connections", Help: "Client connections open."})
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "fractal_api_connections_refused_total",
		Help: "Connections closed at once because their address held max_connections_per_client already."})
	reg.MustRegister(open, refused)
	return &limited{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{}), open: open,
		perClient: perClient, byClient: map[netip.Addr]int{}, refused: refused}
}

type limited struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	close sync.Once
	open  prometheus.Gauge

	perClient int
	mu        sync.Mutex
	byClient  map[netip.Addr]int // open connections per remote address; guarded by mu
	refused   prometheus.Counter
}

func (l *limited) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		client := remoteAddr(c)
		if !l.take(client) {
			<-l.slots
			l.refused.Inc()
			closeNow(c)
			continue // an error here would make the server pause accepting
		}
		l.open.Inc()
		return &limitedConn{Conn: c, release: sync.OnceFunc(func() {
			l.give(client)
			<-l.slots
			l.open.Dec()
		})}, nil
	}
}

// take counts one more connection of client, or reports that it holds
// perClient already.
func (l *limited) take(client netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client] >= l.perClient {
		return false
	}
	l.byClient[client]++
	return true
}

func (l *limited) give(client netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
}

func (l *limited) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// remoteAddr is who c counts against for max_connections_per_client: its
// remote IPv4 address (one mapped into IPv6 as the IPv4 one), or the /64
// prefix of its IPv6 address, since one host is routinely given a whole
// /64 and could otherwise open max_connections_per_client from each of
// its addresses (decision 176); the zero Addr for a connection that is
// not TCP, which all such connections share.
func remoteAddr(c net.Conn) netip.Addr {
	tcp, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	a := tcp.AddrPort().Addr().Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64) // an IPv6 address always has a /64
		return p.Addr()
	}
	return a
}

// closeNow closes c without lingering over unsent data: the client sees the
// connection reset at once.
func closeNow(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	c.Close()
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
