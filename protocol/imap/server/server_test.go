package server

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// client is a minimal IMAP client for tests that transcripts cannot express.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, c: c, br: bufio.NewReader(c)}
	if line := cl.line(); !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting %q", line)
	}
	return cl
}

func (cl *client) line() string {
	cl.t.Helper()
	l, err := cl.br.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns the untagged lines and the tagged one.
func (cl *client) cmd(tag, text string) ([]string, string) {
	cl.t.Helper()
	fmt.Fprintf(cl.c, "%s %s\r\n", tag, text)
	var untagged []string
	for {
		l := cl.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, l
		}
		untagged = append(untagged, l)
	}
}

func (cl *client) login() {
	cl.t.Helper()
	if _, r := cl.cmd("l", "LOGIN "+testUser+" "+testPassword); !strings.HasPrefix(r, "l OK") {
		cl.t.Fatalf("login: %q", r)
	}
}

func (cl *client) selectInbox() {
	cl.t.Helper()
	if _, r := cl.cmd("s", "SELECT INBOX"); !strings.HasPrefix(r, "s OK") {
		cl.t.Fatalf("select: %q", r)
	}
}

// Shutdown: idle sessions, IDLE included, get BYE (RFC 9051 7.1.5) and
// Serve returns.
func TestShutdownSaysBye(t *testing.T) {
	st := startTestServer(t, testOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(st.srv.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	idle := dial(t, ln.Addr().String())
	idle.login()
	fmt.Fprintf(idle.c, "i IDLE\r\n")
	if l := idle.line(); l != "+ idling" {
		t.Fatalf("IDLE: %q", l)
	}
	plain := dial(t, ln.Addr().String())
	cancel()
	for _, cl := range []*client{idle, plain} {
		if l := cl.line(); l != "* BYE Server shutting down" {
			t.Errorf("got %q, want BYE", l)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// Limits.PerAccountConnections: NO [LIMIT] for one session too many.
func TestPerAccountCap(t *testing.T) {
	ts := startTestServer(t, testOptions{limits: Limits{PerAccountConnections: 1}})
	a := dial(t, ts.addr)
	a.login()
	b := dial(t, ts.addr)
	if _, r := b.cmd("l", "LOGIN "+testUser+" "+testPassword); r != "l NO [LIMIT] Too many connections for this account" {
		t.Fatalf("second login: %q", r)
	}
	a.cmd("z", "LOGOUT")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, r := b.cmd("l", "LOGIN "+testUser+" "+testPassword)
		if strings.HasPrefix(r, "l OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("login after the first logged out: %q", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ROBUSTNESS: over the per-address cap a connection gets BYE; others are
// unaffected.
func TestPerIPCap(t *testing.T) {
	ts := startTestServer(t, testOptions{limits: Limits{PerIPConnections: 2}})
	dial(t, ts.addr)
	dial(t, ts.addr)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if string(b) != "* BYE Too many connections, try again later\r\n" {
		t.Fatalf("got %q", b)
	}
}

// ROBUSTNESS: 100 IDLE sessions, one delivery: all see EXISTS within a second.
func TestIdleManySessions(t *testing.T) {
	const n = 100
	ts := startTestServer(t, testOptions{limits: Limits{PerIPConnections: n + 10, PerAccountConnections: n + 10}})
	clients := make([]*client, n)
	for i := range clients {
		cl := dial(t, ts.addr)
		cl.login()
		cl.selectInbox()
		fmt.Fprintf(cl.c, "i IDLE\r\n")
		if l := cl.line(); l != "+ idling" {
			t.Fatalf("IDLE: %q", l)
		}
		clients[i] = cl
	}
	start := time.Now()
	if err := ts.store.Deliver(context.Background(), []string{testUser}, readMessage(t, "simple.eml"), testDate); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for _, cl := range clients {
		wg.Go(func() {
			cl.c.SetReadDeadline(time.Now().Add(time.Second))
			l, err := cl.br.ReadString('\n')
			if err != nil || l != "* 1 EXISTS\r\n" {
				errs <- fmt.Sprintf("%q %v", l, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	t.Logf("100 sessions notified in %v", time.Since(start))
}

// A session whose change feed overflowed (mailbox.FeedBuffer) rebuilds its
// view from the store and still reports every change once.
func TestFeedOverflowResync(t *testing.T) {
	ts := startTestServer(t, testOptions{})
	cl := dial(t, ts.addr)
	cl.login()
	if _, err := ts.acct.Append(context.Background(), "INBOX", readMessage(t, "simple.eml"), nil, testDate); err != nil {
		t.Fatal(err)
	}
	cl.selectInbox()
	ctx := context.Background()
	raw := readMessage(t, "simple.eml")
	for i := 0; i < 1100; i++ {
		if _, err := ts.acct.Append(ctx, "INBOX", raw, nil, testDate); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.acct.StoreFlags(ctx, "INBOX", []uint32{1}, '+', []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.acct.Expunge(ctx, "INBOX", []uint32{2}); err != nil {
		t.Fatal(err)
	}
	untagged, r := cl.cmd("n", "NOOP")
	if r != "n OK Completed" {
		t.Fatalf("NOOP: %q", r)
	}
	want := []string{"* 1101 EXISTS", "* 1101 RECENT", "* 2 EXPUNGE", `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))`}
	if strings.Join(untagged, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", untagged, want)
	}
	untagged, _ = cl.cmd("f", "FETCH 1100 UID")
	if len(untagged) != 1 || untagged[0] != "* 1100 FETCH (UID 1101)" {
		t.Fatalf("FETCH: %q", untagged)
	}
}

// AUTHENTICATE SCRAM-SHA-256 (RFC 7677, RFC 5802): the server-final message
// comes as a challenge, answered with an empty response.
func TestAuthenticateSCRAM(t *testing.T) {
	ts := startTestServer(t, testOptions{})
	cl := dial(t, ts.addr)
	clientNonce := "rOprNGfwEbeRWgbNEkqO"
	first := "n,,n=" + testUser + ",r=" + clientNonce
	fmt.Fprintf(cl.c, "a AUTHENTICATE SCRAM-SHA-256 %s\r\n", base64.StdEncoding.EncodeToString([]byte(first)))
	l := cl.line()
	if !strings.HasPrefix(l, "+ ") {
		t.Fatalf("server-first: %q", l)
	}
	sf, _ := base64.StdEncoding.DecodeString(l[2:])
	attrs := map[string]string{}
	for _, kv := range strings.Split(string(sf), ",") {
		attrs[kv[:1]] = kv[2:]
	}
	salt, _ := base64.StdEncoding.DecodeString(attrs["s"])
	var iter int
	fmt.Sscan(attrs["i"], &iter)
	salted, err := pbkdf2.Key(sha256.New, testPassword, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	final := "c=biws,r=" + attrs["r"]
	authMsg := first[3:] + "," + string(sf) + "," + final
	sig := mac(storedKey[:], authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	final += ",p=" + base64.StdEncoding.EncodeToString(proof)
	fmt.Fprintf(cl.c, "%s\r\n", base64.StdEncoding.EncodeToString([]byte(final)))
	l = cl.line()
	if !strings.HasPrefix(l, "+ ") {
		t.Fatalf("server-final: %q", l)
	}
	v, _ := base64.StdEncoding.DecodeString(l[2:])
	serverSig := mac(mac(salted, "Server Key"), authMsg)
	if string(v) != "v="+base64.StdEncoding.EncodeToString(serverSig) {
		t.Fatalf("server signature %q", v)
	}
	fmt.Fprintf(cl.c, "\r\n")
	if l := cl.line(); !strings.HasPrefix(l, "a OK [CAPABILITY ") {
		t.Fatalf("completion: %q", l)
	}
}

// Implicit TLS (RFC 8314 3.2, port 993): the handshake comes first, in the
// session goroutine; STARTTLS is then not offered and LOGIN is allowed.
func TestImplicitTLS(t *testing.T) {
	ts := startTestServer(t, testOptions{loopbackIsRemote: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(ts.srv.cfg)
	srv.loopbackIsRemote = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, tls.NewListener(ln, ts.srv.cfg.TLS)); close(done) }()
	defer func() { cancel(); <-done }()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cl := &client{t: t, c: c, br: bufio.NewReader(c)}
	greeting := cl.line()
	if !strings.HasPrefix(greeting, "* OK [CAPABILITY ") || strings.Contains(greeting, "STARTTLS") || strings.Contains(greeting, "LOGINDISABLED") {
		t.Fatalf("greeting %q", greeting)
	}
	cl.login()
}

// ROBUSTNESS: a line longer than Limits.Line without LF: BYE and close,
// having read a bounded amount.
func TestLongLine(t *testing.T) {
	ts := startTestServer(t, testOptions{})
	cl := dial(t, ts.addr)
	go cl.c.Write([]byte("a LOGIN " + strings.Repeat("x", 200<<10)))
	if l := cl.line(); l != "* BYE line too long" {
		t.Fatalf("got %q", l)
	}
	if _, err := cl.br.ReadString('\n'); err == nil {
		t.Fatal("connection still open")
	}
}
