package netserve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"posthorn/protocol/fakeclock"
)

// lineSession is a toy protocol on the Guard: it answers each line with
// "ok <line>"; the line "slow" makes it read one more line inside the
// command (as SMTP reads DATA). At shutdown it says "bye" and closes.
func lineSession(conn net.Conn, g *Guard) func() {
	return func() {
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			if g.Idle() {
				io.WriteString(conn, "bye\n")
				return
			}
			line, err := r.ReadString('\n')
			if stopping := g.Busy(); err != nil {
				if stopping {
					io.WriteString(conn, "bye\n")
				}
				return
			}
			line = strings.TrimSpace(line)
			if line == "slow" {
				if _, err := r.ReadString('\n'); err != nil {
					return // the grace is over: the deadline ends writes too
				}
			}
			io.WriteString(conn, "ok "+line+"\n")
		}
	}
}

func start(conn net.Conn, remote netip.AddrPort) (*Guard, func()) {
	g := NewGuard(conn)
	return g, lineSession(conn, g)
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	srv    *Server
	addr   string
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func serve(t *testing.T, cfg Config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), log: &syncBuffer{}, done: make(chan error, 1)}
	if wrap != nil {
		ln = wrap(ln)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(ts.log, nil))
	ts.srv = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.done <- ts.srv.Serve(ctx, ln, start) }()
	t.Cleanup(func() {
		cancel()
		ts.wait(t)
	})
	return ts
}

// wait returns once Serve has returned.
func (ts *testServer) wait(t *testing.T) {
	t.Helper()
	select {
	case <-ts.done:
		ts.done <- nil // for a second wait (cleanup)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func expect(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	got, err := r.ReadString('\n')
	if got != want {
		t.Fatalf("got %q (%v), want %q", got, err, want)
	}
}

// roundTrip makes sure the session is running before the test goes on.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	io.WriteString(c, line+"\n")
	expect(t, r, "ok "+line+"\n")
}

func waitSessions(t *testing.T, s *Server, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Sessions() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", s.Sessions(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPerIPCap(t *testing.T) {
	ts := serve(t, Config{Listener: "test", PerIPConnections: 2, Connections: 10, Refusal: []byte("go away\n")}, nil)
	c1, r1 := dial(t, ts.addr)
	roundTrip(t, c1, r1, "one")
	c2, r2 := dial(t, ts.addr)
	roundTrip(t, c2, r2, "two")
	if n := ts.srv.Sessions(); n != 2 {
		t.Fatalf("Sessions() = %d, want 2", n)
	}
	_, r3 := dial(t, ts.addr)
	expect(t, r3, "go away\n")
	if _, err := r3.ReadByte(); err != io.EOF {
		t.Fatalf("refused connection: %v, want EOF", err)
	}
	if l := ts.log.String(); !strings.Contains(l, `msg="connection refused: too many connections" listener=test remote=127.0.0.1:`) {
		t.Errorf("log: %s", l)
	}
	// A slot freed is a slot for the next connection.
	c1.Close()
	waitSessions(t, ts.srv, 1)
	c4, r4 := dial(t, ts.addr)
	roundTrip(t, c4, r4, "four")
}

func TestTotalCap(t *testing.T) {
	ts := serve(t, Config{PerIPConnections: 10, Connections: 1, Refusal: []byte("full\n")}, nil)
	c1, r1 := dial(t, ts.addr)
	roundTrip(t, c1, r1, "one")
	_, r2 := dial(t, ts.addr)
	expect(t, r2, "full\n")
}

// On implicit TLS a refused connection is closed without a write: writing
// would run the handshake in the Accept loop.
func TestRefuseImplicitTLSWithoutWrite(t *testing.T) {
	cfg := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, errors.New("no certificate in this test")
	}}
	ts := serve(t, Config{PerIPConnections: 1, Connections: 10, Refusal: []byte("go away\n")},
		func(ln net.Listener) net.Listener { return tls.NewListener(ln, cfg) })
	// The first session blocks in its handshake (its first read), holding
	// the one slot.
	dial(t, ts.addr)
	waitSessions(t, ts.srv, 1)
	_, r := dial(t, ts.addr)
	if b, err := io.ReadAll(r); len(b) != 0 || err != nil {
		t.Fatalf("refused TLS connection got %q, %v; want nothing, then EOF", b, err)
	}
}

func TestShutdownWakesIdleSessions(t *testing.T) {
	ts := serve(t, Config{PerIPConnections: 10, Connections: 10, ShutdownGrace: time.Minute}, nil)
	var rs []*bufio.Reader
	for range 3 {
		c, r := dial(t, ts.addr)
		roundTrip(t, c, r, "hello")
		rs = append(rs, r)
	}
	start := time.Now()
	ts.cancel()
	for _, r := range rs {
		expect(t, r, "bye\n")
	}
	ts.wait(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle sessions took %v to close", d)
	}
	if n := ts.srv.Sessions(); n != 0 {
		t.Errorf("Sessions() = %d after Serve returned", n)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("listener still accepting after shutdown")
	}
}

// A session inside a command finishes it within the grace, then sees the
// shutdown.
func TestShutdownGraceForBusySession(t *testing.T) {
	ts := serve(t, Config{PerIPConnections: 10, Connections: 10, ShutdownGrace: time.Minute}, nil)
	c, r := dial(t, ts.addr)
	roundTrip(t, c, r, "hello")
	io.WriteString(c, "slow\n")
	waitBusy(t, ts.srv)
	ts.cancel()
	time.Sleep(50 * time.Millisecond) // the interrupt has had time to land
	io.WriteString(c, "rest\n")
	expect(t, r, "ok slow\n")
	expect(t, r, "bye\n")
	ts.wait(t)
}

// A session inside a command that does not finish within the grace is cut
// off by its deadline, reads and writes alike.
func TestShutdownGraceRunsOut(t *testing.T) {
	const grace = 100 * time.Millisecond
	ts := serve(t, Config{PerIPConnections: 10, Connections: 10, ShutdownGrace: grace}, nil)
	c, r := dial(t, ts.addr)
	io.WriteString(c, "slow\n")
	waitBusy(t, ts.srv)
	start := time.Now()
	ts.cancel()
	if b, err := io.ReadAll(r); len(b) != 0 || err != nil {
		t.Fatalf("got %q, %v; want EOF", b, err)
	}
	if d := time.Since(start); d < grace/2 {
		t.Errorf("busy session cut off after %v, grace %v", d, grace)
	}
	ts.wait(t)
}

// waitBusy waits until the one session of s is in a command.
func waitBusy(t *testing.T, s *Server) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.mu.Lock()
		busy := false
		for g := range s.sessions {
			g.mu.Lock()
			busy = g.busy
			g.mu.Unlock()
		}
		s.mu.Unlock()
		if busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("session not busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flakyListener fails its first Accepts with a temporary error.
type flakyListener struct {
	net.Listener
	failures int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failures > 0 {
		l.failures--
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

func TestAcceptErrorBackOff(t *testing.T) {
	ts := serve(t, Config{Listener: "test", PerIPConnections: 10, Connections: 10},
		func(ln net.Listener) net.Listener { return &flakyListener{Listener: ln, failures: 3} })
	c, r := dial(t, ts.addr)
	roundTrip(t, c, r, "after errors")
	l := ts.log.String()
	if n := strings.Count(l, `msg="accept failed" listener=test`); n != 3 {
		t.Errorf("%d accept failures logged, want 3:\n%s", n, l)
	}
	for _, d := range []string{"retry_in=5ms", "retry_in=10ms", "retry_in=20ms"} {
		if !strings.Contains(l, d) {
			t.Errorf("log lacks %s:\n%s", d, l)
		}
	}
}

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	mu         sync.Mutex
	read, both time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.read = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.both = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func TestGuard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	first := &deadlineConn{Conn: raw}
	g := NewGuard(first)
	far := time.Now().Add(time.Hour)
	if g.Idle() || g.Busy() || g.Stopping() {
		t.Fatal("stopping before the interrupt")
	}
	if got := g.Cap(far); !got.Equal(far) {
		t.Fatalf("Cap before shutdown = %v, want %v", got, far)
	}
	// After STARTTLS the interrupt reaches the new connection.
	second := &deadlineConn{Conn: raw}
	g.SetConn(second)
	g.interrupt(time.Minute) // busy: grace
	second.mu.Lock()
	both := second.both
	second.mu.Unlock()
	if until := time.Until(both); until < 50*time.Second || until > time.Minute {
		t.Errorf("busy deadline in %v, want about a minute", until)
	}
	if !first.both.IsZero() || !first.read.IsZero() {
		t.Error("deadline set on the connection replaced by SetConn")
	}
	if got := g.Cap(far); !got.Equal(time.Unix(0, both.UnixNano())) {
		t.Errorf("Cap after shutdown = %v, want the grace end %v", got, both)
	}
	if near := time.Now(); !g.Cap(near).Equal(near) {
		t.Error("Cap moved a deadline sooner than the grace end")
	}
	if !g.Idle() || !g.Busy() || !g.Stopping() {
		t.Error("not stopping after the interrupt")
	}

	// An idle session is woken at once.
	g2 := NewGuard(second)
	g2.Idle()
	before := time.Now()
	g2.interrupt(time.Minute)
	second.mu.Lock()
	read := second.read
	second.mu.Unlock()
	if read.Before(before) || read.After(time.Now()) {
		t.Errorf("idle read deadline %v, want now", read)
	}
}

type strAddr string

func (a strAddr) Network() string { return "test" }
func (a strAddr) String() string  { return string(a) }

func TestAddrPort(t *testing.T) {
	for _, tc := range []struct {
		in   net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25}, "192.0.2.1:25"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 143}, "192.0.2.1:143"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 110}, "[2001:db8::1]:110"},
		{strAddr("[::ffff:192.0.2.7]:993"), "192.0.2.7:993"},
		{strAddr("not an address"), "invalid AddrPort"},
		{nil, "invalid AddrPort"},
	} {
		if got := AddrPort(tc.in).String(); got != tc.want {
			t.Errorf("AddrPort(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// rwPair reads from r and writes to w.
type rwPair struct {
	io.Reader
	io.Writer
}

func TestTrace(t *testing.T) {
	var out, trace bytes.Buffer
	rw := rwPair{strings.NewReader("HELO x\r\n"), &out}
	if Trace(rw, nil) != io.ReadWriter(rw) {
		t.Error("Trace with a nil writer wrapped the connection")
	}
	tr := Trace(rw, &trace)
	buf := make([]byte, 64)
	n, _ := tr.Read(buf)
	io.WriteString(tr, "250 ok\r\n")
	if got := string(buf[:n]) + out.String(); got != "HELO x\r\n250 ok\r\n" {
		t.Errorf("traffic changed: %q", got)
	}
	if want := "C: \"HELO x\\r\\n\"\nS: \"250 ok\\r\\n\"\n"; trace.String() != want {
		t.Errorf("trace %q, want %q", trace.String(), want)
	}
}

func TestRateLimiter(t *testing.T) {
	clock := fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	r := NewRateLimiter(6, clock.Now)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	// A burst of the whole minute's allowance, then nothing.
	for i := range 6 {
		if !r.Allow(a) {
			t.Fatalf("connection %d of the burst refused", i+1)
		}
	}
	if r.Allow(a) {
		t.Fatal("7th connection within the minute allowed")
	}
	// Another address has its own bucket.
	if !r.Allow(b) {
		t.Fatal("another address refused")
	}
	// One token every 10 s.
	clock.Advance(9 * time.Second)
	if r.Allow(a) {
		t.Fatal("allowed before a token refilled")
	}
	clock.Advance(time.Second)
	if !r.Allow(a) || r.Allow(a) {
		t.Fatal("want exactly one token after 10 s")
	}
	// A quiet hour refills the bucket to its size, no more.
	clock.Advance(time.Hour)
	for i := range 6 {
		if !r.Allow(a) {
			t.Fatalf("after an hour: connection %d refused", i+1)
		}
	}
	if r.Allow(a) {
		t.Fatal("the bucket grew beyond its size")
	}
}

func TestRateLimiterKeys(t *testing.T) {
	r := NewRateLimiter(1, nil)
	if !r.Allow(netip.MustParseAddr("2001:db8:1:2::1")) {
		t.Fatal("first IPv6 connection refused")
	}
	// The same /64 shares the bucket; the next /64 does not.
	if r.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9")) {
		t.Error("same /64 allowed a second connection")
	}
	if !r.Allow(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("next /64 refused")
	}
	// IPv4-mapped IPv6 is the IPv4 address.
	r.Allow(netip.MustParseAddr("192.0.2.1"))
	if r.Allow(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Error("IPv4-mapped address has a bucket of its own")
	}
	// An invalid address is not limited; a nil RateLimiter limits nothing.
	if !r.Allow(netip.Addr{}) || !r.Allow(netip.Addr{}) {
		t.Error("invalid address limited")
	}
	var none *RateLimiter
	if !none.Allow(netip.MustParseAddr("192.0.2.1")) || NewRateLimiter(0, nil) != nil {
		t.Error("no limit limits")
	}
}

func TestRateLimiterBounded(t *testing.T) {
	r := NewRateLimiter(1, nil)
	addr := netip.MustParseAddr("10.0.0.0")
	first := addr
	for range RateLimiterEntries + 100 {
		r.Allow(addr)
		addr = addr.Next()
	}
	if r.order.Len() != RateLimiterEntries || len(r.buckets) != RateLimiterEntries {
		t.Fatalf("%d/%d entries, cap %d", r.order.Len(), len(r.buckets), RateLimiterEntries)
	}
	// The oldest was forgotten (a full bucket again); the newest is kept.
	if !r.Allow(first) {
		t.Error("oldest address still remembered")
	}
	if r.Allow(addr.Prev()) {
		t.Error("newest address forgotten")
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1/32",
		"::ffff:192.0.2.1":     "192.0.2.1/32",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"fe80::1%eth0":         "fe80::/64",
		"::1":                  "::/64",
	} {
		if got, ok := ClientKey(netip.MustParseAddr(in)); !ok || got.String() != want {
			t.Errorf("ClientKey(%s) = %v, %v; want %s", in, got, ok, want)
		}
	}
	if _, ok := ClientKey(netip.Addr{}); ok {
		t.Error("ClientKey of the zero Addr is valid")
	}
}

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

func TestServeRate(t *testing.T) {
	ts := serve(t, Config{
		Listener: "test", PerIPConnections: 1, Connections: 10,
		Rate:    NewRateLimiter(3, nil),
		Refusal: []byte("busy\n"), RateRefusal: []byte("slow down\n"),
	}, nil)
	c1, r1 := dialFrom(t, ts.addr, "127.0.0.2")
	roundTrip(t, c1, r1, "one")
	// Refused by the per-address cap: no token taken.
	_, r := dialFrom(t, ts.addr, "127.0.0.2")
	expect(t, r, "busy\n")
	c1.Close()
	waitSessions(t, ts.srv, 0)
	for _, line := range []string{"two", "three"} {
		c, r := dialFrom(t, ts.addr, "127.0.0.2")
		roundTrip(t, c, r, line)
		c.Close()
		waitSessions(t, ts.srv, 0)
	}
	_, r = dialFrom(t, ts.addr, "127.0.0.2")
	expect(t, r, "slow down\n")
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("refused connection: %v, want EOF", err)
	}
	if l := ts.log.String(); !strings.Contains(l, `msg="connection refused: connection rate exceeded" listener=test remote=127.0.0.2:`) {
		t.Errorf("log: %s", l)
	}
	// Another address is served.
	c, r := dialFrom(t, ts.addr, "127.0.0.3")
	roundTrip(t, c, r, "other")
}
