package serve

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// pipeListener hands out one end of a pipe per connection, with the
// remote address given.
type pipeListener struct {
	conns chan net.Conn
}

func (l *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv6loopback} }

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// TestConnectionsPerClientIPv6Prefix: max_connections_per_client counts an
// IPv6 client by its /64, which one host holds whole: connections from
// three addresses of one /64 hold two slots and the third is closed at
// once (before, each address had its own count, so one host evaded the
// cap); a client in another /64 and an IPv4 client (mapped or not) keep
// their own counts.
func TestConnectionsPerClientIPv6Prefix(t *testing.T) {
	pl := &pipeListener{conns: make(chan net.Conn, 16)}
	ln := limitListener(pl, 64, 2, prometheus.NewRegistry())
	send := func(ip string) net.Conn {
		ours, theirs := net.Pipe()
		t.Cleanup(func() { ours.Close(); theirs.Close() })
		pl.conns <- addrConn{Conn: ours, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
		return theirs
	}
	accepted := func(want string) {
		t.Helper()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RemoteAddr().(*net.TCPAddr).IP.String(); got != want {
			t.Fatalf("accepted %s, want %s", got, want)
		}
	}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::2"} {
		send(ip)
		accepted(ip)
	}
	refused := send("2001:db8:1:2::3") // a third address of the /64
	for _, ip := range []string{"2001:db8:1:3::1", "192.0.2.7", "::ffff:192.0.2.7"} {
		send(ip)
	}
	accepted("2001:db8:1:3::1") // the third of the /64 closed on the way
	if _, err := refused.Read(make([]byte, 1)); err == nil {
		t.Fatal("a third connection from one /64 was not closed")
	}
	accepted("192.0.2.7")
	accepted("192.0.2.7") // the mapped form is the IPv4 client's second
}
