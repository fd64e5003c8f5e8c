package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// dialGreeted connects and reads the greeting.
func dialGreeted(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220 ") {
		t.Fatalf("greeting %q, %v", line, err)
	}
	return c, br
}

func expectLine(t *testing.T, br *bufio.Reader, prefix string) string {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		t.Fatalf("want %q..., got %q, %v", prefix, line, err)
	}
	return line
}

// ROBUSTNESS: a 10 MB line without LF gets 500 5.5.2 and the connection is
// closed; the server reads only a bounded amount of it.
func TestHugeLineWithoutLF(t *testing.T) {
	ts := startTestServer(t, Limits{}, nil)
	c, br := dialGreeted(t, ts.addr)
	defer c.Close()
	go func() {
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = 'A'
		}
		for sent := 0; sent < 10<<20; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return // the server closed: expected
			}
		}
	}()
	expectLine(t, br, "500 5.5.2 Line too long")
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("connection still open after an over-long line")
	}
}

// ROBUSTNESS: connections over the per-address cap get 421 4.7.0 at once.
func TestPerIPConnectionCap(t *testing.T) {
	ts := startTestServer(t, Limits{PerIPConnections: 3}, nil)
	var conns []net.Conn
	for range 3 {
		c, _ := dialGreeted(t, ts.addr)
		conns = append(conns, c)
	}
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "421 4.7.0 ") {
		t.Fatalf("4th connection got %q, want 421 4.7.0", line)
	}
	c.Close()
	// Closing one frees a place.
	conns[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.Sessions() > 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c2, _ := dialGreeted(t, ts.addr)
	c2.Close()
	for _, c := range conns[1:] {
		c.Close()
	}
}

// Shutdown: an idle session gets 421 4.3.2 at once; a transaction in
// flight finishes and gets its 250.
func TestGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &fakeBackend{}
	srv := New(Config{Hostname: "mx.example.org", Backend: be, Limits: Limits{ShutdownGrace: 5 * time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	addr := ln.Addr().String()

	idle, idleR := dialGreeted(t, addr)
	defer idle.Close()
	busy, busyR := dialGreeted(t, addr)
	defer busy.Close()
	io.WriteString(busy, "EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
	for {
		if l := expectLine(t, busyR, ""); strings.HasPrefix(l, "354") {
			break
		}
	}
	io.WriteString(busy, "Subject: in flight\r\n\r\npart one\r\n")
	time.Sleep(50 * time.Millisecond)
	cancel()
	expectLine(t, idleR, "421 4.3.2 ")
	time.Sleep(100 * time.Millisecond)
	io.WriteString(busy, "part two\r\n.\r\n")
	expectLine(t, busyR, "250 2.0.0 OK queued as ")
	expectLine(t, busyR, "421 4.3.2 ")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if n := len(be.stored()); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("listener still accepting after shutdown")
	}
}

// Many sessions at once each get their own transaction.
func TestConcurrentSessions(t *testing.T) {
	ts := startTestServer(t, Limits{PerIPConnections: 100}, nil)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					errs <- err.Error()
					return
				}
				if strings.HasPrefix(l, "354") {
					break
				}
			}
			io.WriteString(c, "Subject: "+strings.Repeat("x", i)+"\r\n\r\nbody\r\n.\r\nQUIT\r\n")
			l, _ := br.ReadString('\n')
			if !strings.HasPrefix(l, "250 2.0.0 OK queued as ") {
				errs <- "final reply " + l
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := len(ts.backend.stored()); got != n {
		t.Fatalf("stored %d, want %d", got, n)
	}
	ids := map[string]bool{}
	for _, m := range ts.backend.stored() {
		if ids[m.env.ID] {
			t.Fatalf("queue ID %s used twice", m.env.ID)
		}
		ids[m.env.ID] = true
	}
}

func TestQueueIDsAscend(t *testing.T) {
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gen := NewQueueIDGenerator(func() time.Time { return fixed })
	prev := ""
	for range 1000 {
		id := gen()
		if len(id) != 13 || id <= prev {
			t.Fatalf("id %q after %q: want 13 characters, strictly ascending", id, prev)
		}
		prev = id
	}
}

func TestCountReceived(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want int
	}{
		{"Received: a\r\nreceived: b\r\n\tcontinued\r\nRECEIVED:c\r\nSubject: x\r\n\r\nReceived: in body\r\n", 3},
		{"Subject: x\r\n\r\n", 0},
		{"", 0},
		{"Received-SPF: pass\r\n\r\n", 0},
		{"X-Received: a\r\nReceived: b", 1},
	} {
		if got := countReceived([]byte(tc.msg)); got != tc.want {
			t.Errorf("countReceived(%q) = %d, want %d", tc.msg, got, tc.want)
		}
	}
}

// ROBUSTNESS: a flood from one address over its cap does not stop another
// address from being served.
func TestOtherAddressServedDuringFlood(t *testing.T) {
	ts := startTestServer(t, Limits{PerIPConnections: 5}, nil)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 5 {
		c, _ := dialGreeted(t, ts.addr)
		held = append(held, c)
	}
	for range 20 {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "421 4.7.0 ") {
			t.Fatalf("flood connection got %q", line)
		}
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	expectLine(t, br, "220 ")
	io.WriteString(c, "EHLO other.example\r\nMAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
	for {
		if l := expectLine(t, br, ""); strings.HasPrefix(l, "354") {
			break
		} else if !strings.HasPrefix(l, "250") {
			t.Fatalf("unexpected %q", l)
		}
	}
	io.WriteString(c, "x\r\n.\r\n")
	expectLine(t, br, "250 2.0.0 ")
}

// ROBUSTNESS: huge headers and deep MIME nesting are stored without the
// server parsing them into unbounded structures: 100k address header lines
// (about 1 MB of header) and a MIME tree 10k deep are accepted.
func TestHugeHeadersAndDeepMIME(t *testing.T) {
	ts := startTestServer(t, Limits{}, nil)
	var big strings.Builder
	for i := range 100000 {
		big.WriteString("To: user")
		big.WriteString(strings.Repeat("x", i%7))
		big.WriteString("@example.org\r\n")
	}
	big.WriteString("\r\nbody\r\n")
	var deep strings.Builder
	for i := range 10000 {
		deep.WriteString("Content-Type: multipart/mixed; boundary=b")
		deep.WriteString(strings.Repeat("z", i%3))
		deep.WriteString("\r\n\r\n--b\r\n")
	}
	deep.WriteString("\r\nleaf\r\n")
	for _, msg := range []string{big.String(), deep.String()} {
		c, br := dialGreeted(t, ts.addr)
		io.WriteString(c, "EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
		for {
			if l := expectLine(t, br, ""); strings.HasPrefix(l, "354") {
				break
			}
		}
		io.WriteString(c, msg+".\r\n")
		expectLine(t, br, "250 2.0.0 ")
		c.Close()
	}
	if n := len(ts.backend.stored()); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
}

// Shutdown lets a transaction in flight finish, not just the command: a
// session between RCPT and DATA may still send its message; then 421. A
// session that stalls inside its transaction is cut off at the grace.
func TestShutdownFinishesTransaction(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &fakeBackend{}
	srv := New(Config{Hostname: "mx.example.org", Backend: be, Limits: Limits{ShutdownGrace: 2 * time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	addr := ln.Addr().String()

	open := func() (net.Conn, *bufio.Reader) {
		c, br := dialGreeted(t, addr)
		io.WriteString(c, "EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\n")
		for {
			if l := expectLine(t, br, "250"); strings.HasPrefix(l, "250 2.1.5") {
				return c, br
			}
		}
	}
	mid, midR := open()
	defer mid.Close()
	stall, stallR := open()
	defer stall.Close()
	cancel()
	time.Sleep(100 * time.Millisecond)
	io.WriteString(mid, "DATA\r\n")
	expectLine(t, midR, "354")
	io.WriteString(mid, "Subject: late\r\n\r\nfinished after shutdown began\r\n.\r\n")
	expectLine(t, midR, "250 2.0.0 OK queued as ")
	expectLine(t, midR, "421 4.3.2 ")
	start := time.Now()
	if l, err := stallR.ReadString('\n'); err == nil && !strings.HasPrefix(l, "421 ") {
		t.Fatalf("stalled session got %q", l)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("stalled session held shutdown for %v, grace is 2s", waited)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if n := len(be.stored()); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
}
