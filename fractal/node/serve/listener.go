package serve

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// limitListener accepts at most max connections at once; the next waits in
// the system's backlog until one closes. The server's header and idle
// timeouts close the connections of clients that send nothing.
func limitListener(ln net.Listener, max int, reg prometheus.Registerer) net.Listener {
	open := prometheus.NewGauge(prometheus.GaugeOpts{Name: "fractal_api_connections", Help: "Client connections open."})
	reg.MustRegister(open)
	return &limited{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{}), open: open}
}

type limited struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	close sync.Once
	open  prometheus.Gauge
}

func (l *limited) Accept() (net.Conn, error) {
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
	l.open.Inc()
	return &limitedConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots; l.open.Dec() })}, nil
}

func (l *limited) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
