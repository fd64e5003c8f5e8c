package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"posthorn/mailbox"
	"posthorn/mailbox/message"
	"posthorn/protocol/netserve"
	"posthorn/protocol/sasl"
	"posthorn/protocol/tlsutil"
)

// testUser is the account every test logs in as.
const (
	testUser     = "alice@example.org"
	testPassword = "secret"
)

// testDate is the internal date of seeded messages.
var testDate = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// storeCredentials adapts the real store to sasl.Credentials, as
// cmd/posthorn does.
type storeCredentials struct{ store *mailbox.Store }

func (c storeCredentials) Verify(ctx context.Context, user, password string) (string, error) {
	acc, err := c.store.Authenticate(user, password)
	if errors.Is(err, mailbox.ErrAuthFailed) {
		return "", sasl.ErrAuthFailed
	}
	return acc, err
}

func (c storeCredentials) SCRAM(ctx context.Context, user string) (sasl.SCRAMVerifier, string, error) {
	sec, err := c.store.SCRAMSecret(user)
	if errors.Is(err, mailbox.ErrNoSuchUser) {
		return sasl.SCRAMVerifier{Iterations: sec.Iterations}, "", sasl.ErrUnknownUser
	}
	if err != nil {
		return sasl.SCRAMVerifier{}, "", err
	}
	return sasl.VerifierFromSaltedPassword(sec.SaltedPassword, sec.Salt, sec.Iterations), sec.Account, nil
}

// testServer is a Server over the real store in a temporary directory, on a
// loopback listener.
type testServer struct {
	srv   *Server
	store *mailbox.Store
	acct  *mailbox.Account
	addr  string
}

type testOptions struct {
	limits           Limits
	loopbackIsRemote bool
	limiter          bool
	authLimiter      *sasl.Limiter         // used instead of the default one
	connRate         *netserve.RateLimiter // Config.ConnectionRate
	noTLS            bool
	logger           *slog.Logger
}

func startTestServer(t testing.TB, opts testOptions) *testServer {
	t.Helper()
	st, err := mailbox.Open(filepath.Join(t.TempDir(), "data"), mailbox.Options{
		PBKDF2Iterations: 1000, Parse: message.ParseBlob, NoSync: true,
		Now: func() time.Time { return testDate },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser("bob@example.org", "hunter2"); err != nil {
		t.Fatal(err)
	}
	acct, err := st.Account(testUser)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Hostname: "imap.example.org",
		OpenAccount: func(name string) (Account, error) {
			a, err := st.Account(name)
			if err != nil {
				return nil, err
			}
			return a, nil
		},
		Auth:   storeCredentials{st},
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil)),
		Limits: opts.limits,
		Now:    func() time.Time { return testDate },
	}
	if !opts.noTLS {
		cfg.TLS = testTLSConfig(t)
	}
	if opts.limiter {
		cfg.Limiter = sasl.NewLimiter(time.Now)
	}
	if opts.authLimiter != nil {
		cfg.Limiter = opts.authLimiter
	}
	cfg.ConnectionRate = opts.connRate
	if opts.logger != nil {
		cfg.Logger = opts.logger
	}
	srv := New(cfg)
	srv.loopbackIsRemote = opts.loopbackIsRemote
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.Serve(ctx, ln)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
		st.Close()
	})
	return &testServer{srv: srv, store: st, acct: acct, addr: ln.Addr().String()}
}

func testTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := tlsutil.ServerConfig("imap.example.org")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readMessage reads testdata/messages/name with every line ending made
// CRLF (RFC 5322 2.1), whatever the checkout did to it.
func readMessage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "messages", name))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// testLogWriter sends the server's log to the test's log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// *mailbox.Account is the Account cmd/posthorn passes in.
var _ Account = (*mailbox.Account)(nil)
