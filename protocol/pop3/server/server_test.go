package server

import (
	"bufio"
	"bytes"
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

	"posthorn/protocol/sasl"
	"posthorn/protocol/transcript"
)

// client is a minimal POP3 client for tests that need more than a transcript.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialClient(t testing.TB, addr string, implicitTLS bool) *client {
	t.Helper()
	var c net.Conn
	var err error
	if implicitTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
	cl.expect("+OK *")
	return cl
}

func (cl *client) line() string {
	cl.t.Helper()
	cl.c.SetDeadline(time.Now().Add(10 * time.Second))
	l, err := cl.br.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (cl *client) send(format string, args ...any) {
	cl.t.Helper()
	cl.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(cl.c, format+"\r\n", args...); err != nil {
		cl.t.Fatal(err)
	}
}

func (cl *client) expect(pattern string) string {
	cl.t.Helper()
	l := cl.line()
	if !transcript.Match(pattern, l) {
		cl.t.Fatalf("want %q, got %q", pattern, l)
	}
	return l
}

// multiline reads a multi-line body and undoes the byte-stuffing (RFC 1939 3).
func (cl *client) multiline() []byte {
	cl.t.Helper()
	var out []byte
	for {
		l := cl.line()
		if l == "." {
			return out
		}
		out = append(out, strings.TrimPrefix(l, ".")...)
		out = append(out, "\r\n"...)
	}
}

func (cl *client) login(user string) {
	cl.t.Helper()
	cl.send("USER %s", user)
	cl.expect("+OK *")
	cl.send("PASS secret")
	cl.expect("+OK Logged in*")
}

func TestSCRAM(t *testing.T) {
	ts := startTestServer(t, Limits{}, serverOptions{loopbackIsRemote: true})
	cl := dialClient(t, ts.addr, false)
	const nonce = "fyko+d2lbbFgONRv9qkxdawL"
	clientFirstBare := "n=alice@example.org,r=" + nonce
	cl.send("AUTH SCRAM-SHA-256 %s", base64.StdEncoding.EncodeToString([]byte("n,,"+clientFirstBare)))
	serverFirst := cl.decodeChallenge()
	var snonce, salt string
	var iter int
	for _, f := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			snonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			fmt.Sscan(f[2:], &iter)
		}
	}
	if !strings.HasPrefix(snonce, nonce) || iter != 4096 {
		t.Fatalf("server-first %q", serverFirst)
	}
	saltRaw, _ := base64.StdEncoding.DecodeString(salt)
	salted, err := pbkdf2.Key(sha256.New, "secret", saltRaw, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := hmacSum(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	finalNoProof := "c=biws,r=" + snonce
	authMessage := clientFirstBare + "," + serverFirst + "," + finalNoProof
	sig := hmacSum(storedKey[:], authMessage)
	proof := make([]byte, len(sig))
	for i := range sig {
		proof[i] = clientKey[i] ^ sig[i]
	}
	cl.send("%s", base64.StdEncoding.EncodeToString([]byte(finalNoProof+",p="+base64.StdEncoding.EncodeToString(proof))))
	// RFC 5034 4: no data with +OK, so the server-final message comes as a
	// challenge and the client answers with an empty line.
	serverFinal := cl.decodeChallenge()
	wantSig := hmacSum(hmacSum(salted, "Server Key"), authMessage)
	if serverFinal != "v="+base64.StdEncoding.EncodeToString(wantSig) {
		t.Fatalf("server-final %q", serverFinal)
	}
	cl.send("")
	cl.expect("+OK Logged in, maildrop has 3 messages (168 octets)")
	cl.send("QUIT")
	cl.expect("+OK *")
}

func (cl *client) decodeChallenge() string {
	cl.t.Helper()
	l := cl.expect("+ *")
	b, err := base64.StdEncoding.DecodeString(l[2:])
	if err != nil {
		cl.t.Fatalf("challenge %q: %v", l, err)
	}
	return string(b)
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, msg)
	return m.Sum(nil)
}

// TestLockSharedByListeners: port 110 and port 995 share one lock table.
func TestLockSharedByListeners(t *testing.T) {
	be := newFakeBackend()
	locks := NewLocks()
	tlsConfig := testTLSConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	addrs := make([]string, 2)
	for i, implicit := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if implicit {
			ln = tls.NewListener(ln, tlsConfig)
		}
		addrs[i] = ln.Addr().String()
		srv := New(Config{Backend: be, Auth: be.credentials(), Locks: locks, TLS: tlsConfig})
		wg.Go(func() { srv.Serve(ctx, ln) })
	}
	defer func() { cancel(); wg.Wait() }()
	a := dialClient(t, addrs[0], false)
	a.login("alice@example.org")
	b := dialClient(t, addrs[1], true)
	b.send("USER alice@example.org")
	b.expect("+OK *")
	b.send("PASS secret")
	b.expect("-ERR [IN-USE] *")
	a.send("QUIT")
	a.expect("+OK *")
	b.login("alice@example.org")
}

// TestShutdown: an idle session is told and closed; its marks are not
// carried out (RFC 1939 6); the lock is freed and Serve returns.
func TestShutdown(t *testing.T) {
	be := newFakeBackend()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Backend: be, Auth: be.credentials()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	cl := dialClient(t, ln.Addr().String(), false)
	cl.login("alice@example.org")
	cl.send("DELE 1")
	cl.expect("+OK *")
	cancel()
	cl.expect("-ERR [SYS/TEMP] Server shutting down, try again later")
	if _, err := cl.br.ReadString('\n'); err == nil {
		t.Fatal("connection still open")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if got := be.deleteCalls(); got != "none" {
		t.Fatalf("removals %q", got)
	}
	if srv.locks.Held() != 0 {
		t.Fatal("lock not released")
	}
}

// TestPanicInBackend: a panic ends only its session, with -ERR, and the
// lock taken before it is released.
func TestPanicInBackend(t *testing.T) {
	ts := startTestServer(t, Limits{}, serverOptions{})
	cl := dialClient(t, ts.addr, false)
	cl.send("USER panic@example.org")
	cl.expect("+OK *")
	cl.send("PASS secret")
	cl.expect("-ERR [SYS/TEMP] Internal error, closing connection")
	if !waitFor(func() bool { return ts.srv.Sessions() == 0 }) || ts.srv.locks.Held() != 0 {
		t.Fatalf("sessions %d, locks %d", ts.srv.Sessions(), ts.srv.locks.Held())
	}
	dialClient(t, ts.addr, false).login("alice@example.org")
}

// TestLimiter: a second failure from the same address waits before its
// reply (sasl.LimiterBase), and a success waits as long.
func TestLimiter(t *testing.T) {
	ts := startTestServer(t, Limits{}, serverOptions{limiter: true})
	cl := dialClient(t, ts.addr, false)
	fail := func() time.Duration {
		start := time.Now()
		cl.send("USER alice@example.org")
		cl.expect("+OK *")
		cl.send("PASS wrong")
		cl.expect("-ERR [AUTH] Authentication failed")
		return time.Since(start)
	}
	if d := fail(); d >= sasl.LimiterBase {
		t.Fatalf("first failure delayed %v", d)
	}
	if d := fail(); d < sasl.LimiterBase {
		t.Fatalf("second failure delayed only %v", d)
	}
	start := time.Now()
	cl.login("alice@example.org")
	if d := time.Since(start); d < 2*sasl.LimiterBase {
		t.Fatalf("success after two failures delayed only %v", d)
	}
}

// countingWriter counts the server's writes through Config.Trace.
type countingWriter struct {
	mu     sync.Mutex
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("S: ")) {
		w.mu.Lock()
		w.writes++
		w.mu.Unlock()
	}
	return len(p), nil
}

func (w *countingWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// TestFlushPerBatch: replies to a pipelined batch go out in one write, and
// a large message in a few buffer-sized ones, not one per line.
func TestFlushPerBatch(t *testing.T) {
	be := newFakeBackend()
	var big strings.Builder
	big.WriteString("Subject: big\r\n\r\n")
	for i := 0; big.Len() < 1<<20; i++ {
		fmt.Fprintf(&big, ".line %d of a large message, with a leading dot\r\nplain line %d\r\n", i, i)
	}
	be.deliver("bob@example.org", big.String())
	trace := &countingWriter{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Backend: be, Auth: be.credentials(), Trace: trace})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	defer func() { cancel(); <-done }()

	cl := dialClient(t, ln.Addr().String(), false)
	cl.login("alice@example.org")
	before := trace.count()
	cl.send("STAT\r\nLIST\r\nUIDL\r\nNOOP\r\nRETR 1\r\nTOP 2 0")
	cl.expect("+OK 3 168")
	cl.multiline()
	cl.multiline()
	cl.expect("+OK")
	cl.expect("+OK 52 octets")
	cl.multiline()
	cl.multiline()
	if n := trace.count() - before; n != 1 {
		t.Errorf("pipelined batch took %d writes, want 1", n)
	}
	cl.send("QUIT")
	cl.expect("+OK *")

	cl = dialClient(t, ln.Addr().String(), false)
	cl.login("bob@example.org")
	before = trace.count()
	cl.send("RETR 1")
	cl.expect(fmt.Sprintf("+OK %d octets", big.Len()))
	if got := cl.multiline(); string(got) != big.String() {
		t.Fatalf("large message differs after unstuffing (%d octets, want %d)", len(got), big.Len())
	}
	t.Logf("1 MiB RETR: %d writes", trace.count()-before)
	if n, max := trace.count()-before, big.Len()/writeBufferSize+2; n > max {
		t.Errorf("1 MiB message took %d writes, want at most %d", n, max)
	}
}
