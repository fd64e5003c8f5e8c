package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"posthorn/protocol/sasl"
	"posthorn/protocol/transcript"
)

// Transcript files (testdata/transcripts/*.txt) hold one behaviour each:
//
//	# comment, usually the RFC section that decides the behaviour
//	@limit Name=value        set a Limits field before the session starts
//	@loopback-is-remote      treat the loopback client as remote (plaintext needs TLS)
//	@allow-plaintext         Config.AllowPlaintextAuth
//	@limiter                 slow repeated authentication failures
//	@no-tls                  no TLS config (STLS not available)
//	@implicit-tls            the listener is TLS from the first byte (port 995)
//	CONN name                switch to connection name, dialling it the first time
//	C: text                  send text + CRLF
//	C| text                  send text exactly, Go escapes allowed (\r \n \x00), no CRLF added
//	S: pattern               read one line; it must match (* matches any run of characters)
//	S| text                  read one line; it must equal text, Go escapes allowed
//	S...: pattern            read lines until one matches
//	TLS                      run the client TLS handshake on the connection
//	CLOSED                   the server must have closed the connection
//	DROP                     close this connection abruptly
//	SESSIONS n               wait (up to 5 s) until the server has n sessions
//	DELETE-CALLS text        the backend's removals so far: "account:uid,uid ..." or "none"
//	LOCKS n                  the number of locked maildrops
//	DELIVER account text     a message arrives in account's maildrop (Go escapes allowed)
//	SLEEP duration
//
// The fake store (helpers_test.go) has alice@example.org (3 messages, UIDs
// 1 3 5), bob (empty), carol (a message with bare LF line ends), and
// accounts whose store calls fail; every password is "secret". Every step
// has a deadline, so a server that hangs fails the test.

type serverOptions struct {
	loopbackIsRemote bool
	allowPlaintext   bool
	limiter          bool
	noTLS            bool
	implicitTLS      bool
}

type testServer struct {
	srv     *Server
	backend *fakeBackend
	addr    string
}

func startTestServer(t testing.TB, limits Limits, opts serverOptions) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig := testTLSConfig(t)
	if opts.implicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	}
	be := newFakeBackend()
	cfg := Config{
		Hostname:           "pop.example.org",
		Backend:            be,
		Auth:               be.credentials(),
		TLS:                tlsConfig,
		AllowPlaintextAuth: opts.allowPlaintext,
		Limits:             limits,
	}
	if opts.noTLS {
		cfg.TLS = nil
	}
	if opts.limiter {
		cfg.Limiter = sasl.NewLimiter(time.Now)
	}
	srv := New(cfg)
	srv.loopbackIsRemote = opts.loopbackIsRemote
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
		if n := srv.locks.Held(); n != 0 {
			t.Errorf("%d maildrops still locked after shutdown", n)
		}
	})
	return &testServer{srv: srv, backend: be, addr: ln.Addr().String()}
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts found")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			runTranscript(t, file)
		})
	}
}

// clientConn is one connection of a transcript.
type clientConn struct {
	raw net.Conn // the TCP connection
	c   net.Conn // raw, or TLS over it
	br  *bufio.Reader
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	limits := Limits{ErrorDelay: time.Millisecond}
	var opts serverOptions
	for _, line := range lines {
		switch line = strings.TrimRight(line, "\r"); {
		case strings.HasPrefix(line, "@limit "):
			setLimit(t, &limits, strings.TrimPrefix(line, "@limit "))
		case line == "@loopback-is-remote":
			opts.loopbackIsRemote = true
		case line == "@allow-plaintext":
			opts.allowPlaintext = true
		case line == "@limiter":
			opts.limiter = true
		case line == "@no-tls":
			opts.noTLS = true
		case line == "@implicit-tls":
			opts.implicitTLS = true
		case strings.HasPrefix(line, "@"):
			t.Fatalf("unknown option %q", line)
		}
	}
	ts := startTestServer(t, limits, opts)
	conns := map[string]*clientConn{}
	dial := func(where string) *clientConn {
		raw, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatalf("%s: dial: %v", where, err)
		}
		t.Cleanup(func() { raw.Close() })
		cc := &clientConn{raw: raw, c: raw}
		if opts.implicitTLS {
			cc.c = tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "pop.example.org"})
		}
		cc.br = bufio.NewReader(cc.c)
		return cc
	}
	cur := dial(file)
	conns["1"] = cur
	for i, line := range lines {
		where := fmt.Sprintf("%s:%d", file, i+1)
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "@") {
			continue
		}
		cur.c.SetDeadline(time.Now().Add(5 * time.Second))
		switch {
		case strings.HasPrefix(line, "CONN "):
			name := line[5:]
			if conns[name] == nil {
				conns[name] = dial(where)
			}
			cur = conns[name]
		case line == "C:" || strings.HasPrefix(line, "C: "):
			if _, err := io.WriteString(cur.c, strings.TrimPrefix(line[2:], " ")+"\r\n"); err != nil {
				t.Fatalf("%s: write: %v", where, err)
			}
		case strings.HasPrefix(line, "C| "):
			if _, err := io.WriteString(cur.c, unquote(t, where, line[3:])); err != nil {
				t.Fatalf("%s: write: %v", where, err)
			}
		case line == "S:" || strings.HasPrefix(line, "S: "), strings.HasPrefix(line, "S| "):
			if line == "S:" {
				line = "S: "
			}
			got, err := cur.br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: want %q, read error %v (got %q)", where, line[3:], err, got)
			}
			if !strings.HasSuffix(got, "\r\n") {
				t.Fatalf("%s: line %q does not end in CRLF", where, got)
			}
			got = strings.TrimSuffix(got, "\r\n")
			if line[1] == '|' {
				if want := unquote(t, where, line[3:]); got != want {
					t.Fatalf("%s: want %q, got %q", where, want, got)
				}
			} else if !transcript.Match(line[3:], got) {
				t.Fatalf("%s: want %q, got %q", where, line[3:], got)
			}
		case strings.HasPrefix(line, "S...: "):
			pat := line[6:]
			for {
				got, err := cur.br.ReadString('\n')
				if err != nil {
					t.Fatalf("%s: want %q, read error %v", where, pat, err)
				}
				if transcript.Match(pat, strings.TrimRight(got, "\r\n")) {
					break
				}
			}
		case line == "TLS":
			if cur.br.Buffered() > 0 {
				t.Fatalf("%s: unread server data before TLS", where)
			}
			tc := tls.Client(cur.raw, &tls.Config{InsecureSkipVerify: true, ServerName: "pop.example.org"})
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatalf("%s: TLS handshake: %v", where, err)
			}
			cur.c = tc
			cur.br = bufio.NewReader(tc)
		case line == "CLOSED":
			got, err := cur.br.ReadString('\n')
			if err == nil || (!errors.Is(err, io.EOF) && !isReset(err)) {
				t.Fatalf("%s: want connection closed, got %q, %v", where, got, err)
			}
		case line == "DROP":
			if tc, ok := cur.raw.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, as a vanished client
			}
			cur.raw.Close()
		case strings.HasPrefix(line, "SESSIONS "):
			want, _ := strconv.Atoi(line[9:])
			if !waitFor(func() bool { return ts.srv.Sessions() == want }) {
				t.Fatalf("%s: %d sessions, want %d", where, ts.srv.Sessions(), want)
			}
		case strings.HasPrefix(line, "DELETE-CALLS "):
			if got, want := ts.backend.deleteCalls(), line[13:]; got != want {
				t.Fatalf("%s: removals %q, want %q", where, got, want)
			}
		case strings.HasPrefix(line, "LOCKS "):
			want, _ := strconv.Atoi(line[6:])
			if got := ts.srv.locks.Held(); got != want {
				t.Fatalf("%s: %d maildrops locked, want %d", where, got, want)
			}
		case strings.HasPrefix(line, "DELIVER "):
			account, text, _ := strings.Cut(line[8:], " ")
			ts.backend.deliver(account, unquote(t, where, text))
		case strings.HasPrefix(line, "SLEEP "):
			d, err := time.ParseDuration(line[6:])
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			time.Sleep(d)
		default:
			t.Fatalf("%s: unknown transcript line %q", where, line)
		}
	}
}

func unquote(t *testing.T, where, s string) string {
	u, err := strconv.Unquote(`"` + s + `"`)
	if err != nil {
		t.Fatalf("%s: bad escape: %v", where, err)
	}
	return u
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

func setLimit(t *testing.T, l *Limits, kv string) {
	name, value, _ := strings.Cut(kv, "=")
	n, err := strconv.Atoi(value)
	d, derr := time.ParseDuration(value)
	switch name {
	case "SoftErrors":
		l.SoftErrors = n
	case "HardErrors":
		l.HardErrors = n
	case "AuthFailures":
		l.AuthFailures = n
	case "PerIPConnections":
		l.PerIPConnections = n
	case "IdleTimeout":
		l.IdleTimeout, err = d, derr
	default:
		t.Fatalf("unknown limit %q", name)
	}
	if err != nil {
		t.Fatalf("limit %s: %v", kv, err)
	}
}
