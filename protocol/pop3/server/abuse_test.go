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
// all of 127/8 to lo) and returns the client without reading the greeting.
func dialFrom(t testing.TB, addr, src string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (cl *client) expectEOF() {
	cl.t.Helper()
	cl.c.SetDeadline(time.Now().Add(10 * time.Second))
	if l, err := cl.br.ReadString('\n'); err != io.EOF {
		cl.t.Fatalf("want EOF, got %q, %v", l, err)
	}
}

// TestLockout: once an address has failed Lockout times, its logins are
// refused with SYS/TEMP, a right password too, by USER/PASS and by AUTH,
// without the credentials being checked; another address logs in to the
// same account; after the window the address is served again.
func TestLockout(t *testing.T) {
	clock := fakeclock.New(time.Now())
	lim := sasl.NewLimiterWith(sasl.LimiterConfig{Delay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Minute, Lockout: 3}, clock.Now)
	ts := startTestServer(t, Limits{}, serverOptions{authLimiter: lim})

	cl := dialFrom(t, ts.addr, "127.0.0.2")
	cl.expect("+OK *")
	for _, user := range []string{"alice@example.org", "nobody@example.org"} {
		cl.send("USER %s", user)
		cl.expect("+OK Send PASS")
		cl.send("PASS wrong")
		cl.expect("-ERR [AUTH] Authentication failed")
	}
	cl = dialFrom(t, ts.addr, "127.0.0.2")
	cl.expect("+OK *")
	cl.send("USER alice@example.org")
	cl.expect("+OK Send PASS")
	cl.send("PASS wrong")
	cl.expect("-ERR [AUTH] Authentication failed") // the third: checked, then locked
	if _, locked := lim.Locked(netip127(2)); !locked {
		t.Fatal("not locked after 3 failures")
	}

	locked := "-ERR [SYS/TEMP] Too many authentication failures from your address, try again later"
	cl = dialFrom(t, ts.addr, "127.0.0.2")
	cl.expect("+OK *")
	cl.send("USER alice@example.org")
	cl.expect("+OK Send PASS")
	cl.send("PASS secret")
	cl.expect(locked)
	cl.send("AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00secret")))
	cl.expect(locked)
	cl.send("AUTH SCRAM-SHA-256")
	cl.expect(locked) // the third refusal of the session ends it
	cl.expectEOF()

	// Another address is not locked out; its login waits only for
	// alice's two failures (MaxDelay, 1 ms).
	other := dialFrom(t, ts.addr, "127.0.0.3")
	other.expect("+OK *")
	start := time.Now()
	other.login("alice@example.org")
	if d := time.Since(start); d > time.Second {
		t.Errorf("login from another address took %v", d)
	}
	other.send("QUIT")
	other.expect("+OK *")

	// After the window the address starts afresh.
	clock.Advance(time.Minute)
	cl = dialFrom(t, ts.addr, "127.0.0.2")
	cl.expect("+OK *")
	cl.login("alice@example.org")
}

// TestConnectionRate: over the rate, the greeting is -ERR [SYS/TEMP] and
// the connection is closed; another address is served.
func TestConnectionRate(t *testing.T) {
	ts := startTestServer(t, Limits{}, serverOptions{connRate: netserve.NewRateLimiter(2, nil)})
	for range 2 {
		cl := dialFrom(t, ts.addr, "127.0.0.2")
		cl.expect("+OK *")
		cl.send("QUIT")
		cl.expect("+OK *")
	}
	cl := dialFrom(t, ts.addr, "127.0.0.2")
	cl.expect("-ERR [SYS/TEMP] Too many connection attempts, try again later")
	cl.expectEOF()
	dialFrom(t, ts.addr, "127.0.0.3").expect("+OK *")
}

func netip127(last byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, last}) }
