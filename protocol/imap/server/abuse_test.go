package server

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"posthorn/protocol/fakeclock"
	"posthorn/protocol/netserve"
	"posthorn/protocol/sasl"
)

// connectFrom connects from a chosen loopback source address (Linux routes
// all of 127/8 to lo) without reading the greeting.
func connectFrom(t testing.TB, addr, src string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func dialFrom(t testing.TB, addr, src string) *client {
	t.Helper()
	cl := connectFrom(t, addr, src)
	if line := cl.line(); !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting %q", line)
	}
	return cl
}

func (cl *client) expectEOF() {
	cl.t.Helper()
	if l, err := cl.br.ReadString('\n'); err != io.EOF {
		cl.t.Fatalf("want EOF, got %q, %v", l, err)
	}
}

// TestAuthLockout: after Lockout failures from one address, LOGIN and
// AUTHENTICATE from it get NO [UNAVAILABLE] unchecked, a right password
// too; the third refusal of a session ends it with BYE. Unknown user and
// wrong password get the same reply. Another address logs in to the same
// account; after the window the address is served again.
func TestAuthLockout(t *testing.T) {
	clock := fakeclock.New(time.Now())
	lim := sasl.NewLimiterWith(sasl.LimiterConfig{Delay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Minute, Lockout: 2}, clock.Now)
	ts := startTestServer(t, testOptions{authLimiter: lim})

	cl := dialFrom(t, ts.addr, "127.0.0.2")
	if _, r := cl.cmd("a", "LOGIN "+testUser+" wrong"); r != "a NO [AUTHENTICATIONFAILED] Authentication failed" {
		t.Fatalf("wrong password: %q", r)
	}
	if _, r := cl.cmd("b", "LOGIN nobody@example.org wrong"); r != "b NO [AUTHENTICATIONFAILED] Authentication failed" {
		t.Fatalf("unknown user: %q", r)
	}
	if _, locked := lim.Locked(netip.MustParseAddr("127.0.0.2")); !locked {
		t.Fatal("not locked after 2 failures")
	}

	const locked = "NO [UNAVAILABLE] Too many authentication failures from your address, try again later"
	cl = dialFrom(t, ts.addr, "127.0.0.2")
	if _, r := cl.cmd("c", "LOGIN "+testUser+" "+testPassword); r != "c "+locked {
		t.Fatalf("LOGIN while locked out: %q", r)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPassword))
	if _, r := cl.cmd("d", "AUTHENTICATE PLAIN "+ir); r != "d "+locked {
		t.Fatalf("AUTHENTICATE while locked out: %q", r)
	}
	untagged, r := cl.cmd("e", "AUTHENTICATE SCRAM-SHA-256")
	if r != "e "+locked || len(untagged) != 0 {
		t.Fatalf("third refusal: %q %q", untagged, r)
	}
	if l := cl.line(); l != "* BYE Too many authentication failures" {
		t.Fatalf("after the third refusal: %q", l)
	}
	cl.expectEOF()

	other := dialFrom(t, ts.addr, "127.0.0.3")
	other.login()
	other.selectInbox()

	clock.Advance(time.Minute)
	dialFrom(t, ts.addr, "127.0.0.2").login()
}

// TestConnectionRate: over the rate, the greeting is BYE and the
// connection is closed; another address is served.
func TestConnectionRate(t *testing.T) {
	ts := startTestServer(t, testOptions{connRate: netserve.NewRateLimiter(2, nil)})
	for range 2 {
		dialFrom(t, ts.addr, "127.0.0.2").cmd("z", "LOGOUT")
	}
	cl := connectFrom(t, ts.addr, "127.0.0.2")
	if l := cl.line(); l != "* BYE Too many connection attempts, try again later" {
		t.Fatalf("over the rate: %q", l)
	}
	cl.expectEOF()
	dialFrom(t, ts.addr, "127.0.0.3")
}
