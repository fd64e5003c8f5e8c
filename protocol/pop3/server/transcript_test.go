package server

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"posthorn/protocol/netserve"
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
	authLimiter      *sasl.Limiter         // used instead of the default one
	connRate         *netserve.RateLimiter // Config.ConnectionRate
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
	if opts.authLimiter != nil {
		cfg.Limiter = opts.authLimiter
	}
	cfg.ConnectionRate = opts.connRate
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

func runTranscript(t *testing.T, file string) {
	limits := Limits{ErrorDelay: time.Millisecond}
	var opts serverOptions
	var ts *testServer
	r := &transcript.Runner{
		ServerName: "pop.example.org",
		Option: func(line string) bool {
			switch {
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
			default:
				return false
			}
			return true
		},
		Directive: func(s *transcript.Step) bool {
			line := s.Line
			switch {
			case strings.HasPrefix(line, "CONN "):
				s.Use(line[5:])
			case line == "DROP":
				raw := s.Conn("").Raw
				if tc, ok := raw.(*net.TCPConn); ok {
					tc.SetLinger(0) // a reset, as a vanished client
				}
				raw.Close()
			case strings.HasPrefix(line, "SESSIONS "):
				want, _ := strconv.Atoi(line[9:])
				if !waitFor(func() bool { return ts.srv.Sessions() == want }) {
					s.Fatalf("%d sessions, want %d", ts.srv.Sessions(), want)
				}
			case strings.HasPrefix(line, "DELETE-CALLS "):
				if got, want := ts.backend.deleteCalls(), line[13:]; got != want {
					s.Fatalf("removals %q, want %q", got, want)
				}
			case strings.HasPrefix(line, "LOCKS "):
				want, _ := strconv.Atoi(line[6:])
				if got := ts.srv.locks.Held(); got != want {
					s.Fatalf("%d maildrops locked, want %d", got, want)
				}
			case strings.HasPrefix(line, "DELIVER "):
				account, text, _ := strings.Cut(line[8:], " ")
				ts.backend.deliver(account, s.Unquote(text))
			default:
				return false
			}
			return true
		},
	}
	r.Start = func() string {
		r.ImplicitTLS = opts.implicitTLS
		ts = startTestServer(t, limits, opts)
		return ts.addr
	}
	r.Run(t, file)
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
