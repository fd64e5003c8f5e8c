package server

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"posthorn/protocol/netserve"
	"posthorn/protocol/sasl"
	"posthorn/protocol/smtp"
	"posthorn/protocol/transcript"
)

// Transcript files (testdata/transcripts/*.txt) hold one behaviour each:
//
//	# comment, usually the RFC section that decides the behaviour
//	@limit name=value        set a Limits field before the session starts
//	@submission              a submission server (AUTH required; alice@example.org / secret)
//	@loopback-is-remote      treat the loopback client as remote (plaintext AUTH needs TLS)
//	@limiter                 slow repeated authentication failures
//	C: text                  send text + CRLF
//	C| text                  send text exactly, Go escapes allowed (\r \n \x00), no CRLF added
//	S: pattern               read one reply line; it must match (* matches any run of characters)
//	S...: pattern            read reply lines until one matches
//	TLS                      run the client TLS handshake on the connection
//	CLOSED                   the server must have closed the connection
//	SLEEP duration
//	STORED n                 the backend must have received exactly n messages
//	STORED-CONTAINS text     the last stored message must contain text (Go escapes allowed)
//	STORED-NOT-CONTAINS text
//
// Every step has a deadline, so a server that hangs fails the test.

// fakeBackend accepts mail for example.org (users alice, bob, postmaster)
// and records what it would deliver.
type fakeBackend struct {
	mu       sync.Mutex
	messages []fakeMessage
	failNext error
}

type fakeMessage struct {
	env *Envelope
	msg []byte
}

func (b *fakeBackend) Mail(ctx context.Context, s *SessionInfo, from smtp.Path, p smtp.MailParams) error {
	if s.Account != "" && from.String() != s.Account {
		return smtp.R(smtp.CodeBadMailboxName, smtp.EnhDeliveryNotAuth, "Sender address not owned by the authenticated account")
	}
	if from.Local == "lowdisk" {
		return smtp.R(smtp.CodeInsufficient, smtp.EnhSystemFull, "Insufficient system storage")
	}
	return nil
}

func (b *fakeBackend) Rcpt(ctx context.Context, s *SessionInfo, from, to smtp.Path) error {
	if to.Postmaster || s.Account != "" {
		return nil // authenticated clients may relay
	}
	if to.Domain != "example.org" {
		return smtp.R(smtp.CodeFailed, smtp.EnhDeliveryNotAuth, "Relay access denied")
	}
	switch to.Local {
	case "alice", "bob", "postmaster", "diskfull":
		return nil
	}
	return smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadDestMailbox, "No such user here")
}

func (b *fakeBackend) Deliver(ctx context.Context, env *Envelope, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range env.Rcpts {
		if r.Path.Local == "diskfull" {
			return smtp.R(smtp.CodeLocalError, smtp.EnhSystemOther, "Local error in processing, try again later")
		}
	}
	b.messages = append(b.messages, fakeMessage{env: env, msg: append([]byte(nil), msg...)})
	return nil
}

func (b *fakeBackend) stored() []fakeMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]fakeMessage(nil), b.messages...)
}

// testServer runs a Server on a loopback listener for one test.
type testServer struct {
	srv     *Server
	backend *fakeBackend
	addr    string
	cancel  context.CancelFunc
	done    chan error
}

// fakeCredentials knows one user, alice@example.org with password "secret".
type fakeCredentials struct{}

func (fakeCredentials) Verify(ctx context.Context, user, pass string) (string, error) {
	if user == "alice@example.org" && pass == "secret" {
		return user, nil
	}
	return "", sasl.ErrAuthFailed
}

func (fakeCredentials) SCRAM(ctx context.Context, user string) (sasl.SCRAMVerifier, string, error) {
	if user != "alice@example.org" {
		return sasl.SCRAMVerifier{Iterations: 4096}, "", sasl.ErrUnknownUser
	}
	return sasl.NewSCRAMVerifier("secret", []byte("0123456789abcdef"), 4096), user, nil
}

// serverOptions are the transcript's @ lines beyond limits.
type serverOptions struct {
	submission       bool
	loopbackIsRemote bool
	limiter          bool
	authLimiter      *sasl.Limiter         // used instead of the default one
	connRate         *netserve.RateLimiter // Config.ConnectionRate
}

func startTestServer(t testing.TB, limits Limits, tlsConfig *tls.Config) *testServer {
	return startTestServerWith(t, limits, tlsConfig, serverOptions{})
}

func startTestServerWith(t testing.TB, limits Limits, tlsConfig *tls.Config, opts serverOptions) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &fakeBackend{}
	cfg := Config{
		Hostname: "mx.example.org",
		Backend:  be,
		TLS:      tlsConfig,
		Limits:   limits,
		Now:      func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) },
	}
	if opts.submission {
		cfg.Listener = "submission"
		cfg.Submission = true
		cfg.Auth = fakeCredentials{}
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
	ts := &testServer{srv: srv, backend: be, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
	})
	return ts
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts found")
	}
	tlsConfig := testTLSConfig(t)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			runTranscript(t, file, tlsConfig)
		})
	}
}

func runTranscript(t *testing.T, file string, tlsConfig *tls.Config) {
	limits := Limits{ErrorDelay: time.Millisecond}
	var opts serverOptions
	var ts *testServer
	r := &transcript.Runner{
		ServerName: "mx.example.org",
		Option: func(line string) bool {
			switch {
			case strings.HasPrefix(line, "@limit "):
				setLimit(t, &limits, strings.TrimPrefix(line, "@limit "))
			case line == "@submission":
				opts.submission = true
			case line == "@loopback-is-remote":
				opts.loopbackIsRemote = true
			case line == "@limiter":
				opts.limiter = true
			default:
				return false
			}
			return true
		},
		Start: func() string {
			ts = startTestServerWith(t, limits, tlsConfig, opts)
			return ts.addr
		},
		Directive: func(s *transcript.Step) bool {
			line := s.Line
			switch {
			case strings.HasPrefix(line, "STORED "):
				want, _ := strconv.Atoi(line[7:])
				if got := len(ts.backend.stored()); got != want {
					s.Fatalf("stored %d messages, want %d", got, want)
				}
			case strings.HasPrefix(line, "STORED-CONTAINS "), strings.HasPrefix(line, "STORED-NOT-CONTAINS "):
				neg := strings.HasPrefix(line, "STORED-NOT")
				_, arg, _ := strings.Cut(line, " ")
				text := s.Unquote(arg)
				msgs := ts.backend.stored()
				if len(msgs) == 0 {
					s.Fatalf("nothing stored")
				}
				last := string(msgs[len(msgs)-1].msg)
				if strings.Contains(last, text) == neg {
					s.Fatalf("stored message contains %q = %v, want %v; message:\n%s", text, !neg, !neg, last)
				}
			default:
				return false
			}
			return true
		},
	}
	r.Run(t, file)
}

func setLimit(t *testing.T, l *Limits, kv string) {
	name, value, _ := strings.Cut(kv, "=")
	n, err := strconv.ParseInt(value, 10, 64)
	d, derr := time.ParseDuration(value)
	switch name {
	case "MessageSize":
		l.MessageSize = n
	case "Recipients":
		l.Recipients = int(n)
	case "TextLine":
		l.TextLine = int(n)
	case "SoftErrors":
		l.SoftErrors = int(n)
	case "HardErrors":
		l.HardErrors = int(n)
	case "CommandTimeout":
		l.CommandTimeout, err = d, derr
	case "DataBlockTimeout":
		l.DataBlockTimeout, err = d, derr
	default:
		t.Fatalf("unknown limit %q", name)
	}
	if err != nil {
		t.Fatalf("limit %s: %v", kv, err)
	}
}
