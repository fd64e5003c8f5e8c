package server

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"posthorn/protocol/fakeclock"
	"posthorn/protocol/netserve"
	"posthorn/protocol/sasl"
)

// dialFrom connects from a chosen loopback source address (Linux routes
// all of 127/8 to lo).
func dialFrom(t *testing.T, addr, src string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func expectExact(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	if got, err := br.ReadString('\n'); got != want+"\r\n" {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func expectEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if l, err := br.ReadString('\n'); err != io.EOF {
		t.Fatalf("want EOF, got %q, %v", l, err)
	}
}

// greetedEHLO reads the greeting and gets through EHLO.
func greetedEHLO(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	expectLine(t, br, "220 mx.example.org ESMTP")
	io.WriteString(c, "EHLO client.example\r\n")
	for {
		if l := expectLine(t, br, "250"); l[3] == ' ' {
			return
		}
	}
}

var alicePlain = base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00secret"))

// TestAuthLockout: after Lockout failures from one address, AUTH from it
// gets 454 4.7.0 before any credentials are read, for a right password
// too; the third refusal of a session ends it with 421. Another address
// authenticates as the same user; after the window the address is served.
func TestAuthLockout(t *testing.T) {
	clock := fakeclock.New(time.Now())
	lim := sasl.NewLimiterWith(sasl.LimiterConfig{Delay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Minute, Lockout: 2}, clock.Now)
	ts := startTestServerWith(t, Limits{}, nil, serverOptions{submission: true, authLimiter: lim})

	c, br := dialFrom(t, ts.addr, "127.0.0.2")
	greetedEHLO(t, c, br)
	io.WriteString(c, "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00wrong"))+"\r\n")
	expectExact(t, br, "535 5.7.8 Authentication credentials invalid")
	// An unknown user: the same reply.
	io.WriteString(c, "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00nobody@example.org\x00wrong"))+"\r\n")
	expectExact(t, br, "535 5.7.8 Authentication credentials invalid")
	if _, locked := lim.Locked(netip.MustParseAddr("127.0.0.2")); !locked {
		t.Fatal("not locked after 2 failures")
	}

	locked := "454 4.7.0 Too many authentication failures from your address, try again later"
	c, br = dialFrom(t, ts.addr, "127.0.0.2")
	greetedEHLO(t, c, br)
	io.WriteString(c, "AUTH PLAIN "+alicePlain+"\r\n")
	expectExact(t, br, locked)
	// Refused before the exchange: no 334 challenge for the password.
	io.WriteString(c, "AUTH LOGIN\r\n")
	expectExact(t, br, locked)
	io.WriteString(c, "AUTH PLAIN "+alicePlain+"\r\n")
	expectExact(t, br, locked)
	expectExact(t, br, "421 4.7.0 mx.example.org Too many authentication failures, closing connection")
	expectEOF(t, br)

	c, br = dialFrom(t, ts.addr, "127.0.0.3")
	greetedEHLO(t, c, br)
	io.WriteString(c, "AUTH PLAIN "+alicePlain+"\r\n")
	expectExact(t, br, "235 2.7.0 Authentication successful")

	clock.Advance(time.Minute)
	c, br = dialFrom(t, ts.addr, "127.0.0.2")
	greetedEHLO(t, c, br)
	io.WriteString(c, "AUTH PLAIN "+alicePlain+"\r\n")
	expectExact(t, br, "235 2.7.0 Authentication successful")
}

// TestConnectionCapAndRate: the per-address cap and the connection rate
// refuse with 421 4.7.0 before anything is read, each with its own text;
// another address is served.
func TestConnectionCapAndRate(t *testing.T) {
	ts := startTestServerWith(t, Limits{PerIPConnections: 1}, nil, serverOptions{connRate: netserve.NewRateLimiter(3, nil)})
	held, hbr := dialFrom(t, ts.addr, "127.0.0.2")
	expectLine(t, hbr, "220 ")
	_, br := dialFrom(t, ts.addr, "127.0.0.2")
	expectExact(t, br, "421 4.7.0 mx.example.org Too many connections, try again later")
	expectEOF(t, br)
	// Sessions end after their client has seen EOF: wait for that before
	// the next connection, which the cap of 1 would refuse.
	noSessions := func() {
		for deadline := time.Now().Add(5 * time.Second); ts.srv.Sessions() != 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the closed session did not end")
			}
		}
	}
	held.Close()
	noSessions()
	for range 2 {
		c, br := dialFrom(t, ts.addr, "127.0.0.2")
		expectLine(t, br, "220 ")
		io.WriteString(c, "QUIT\r\n")
		expectLine(t, br, "221 ")
		expectEOF(t, br)
		noSessions()
	}
	_, br = dialFrom(t, ts.addr, "127.0.0.2")
	expectExact(t, br, "421 4.7.0 mx.example.org Too many connection attempts, try again later")
	expectEOF(t, br)
	_, br = dialFrom(t, ts.addr, "127.0.0.3")
	expectLine(t, br, "220 ")
}
