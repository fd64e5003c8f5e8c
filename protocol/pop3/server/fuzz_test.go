package server

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fuzzConn is a connection whose client sends input and then closes; what
// the server writes is kept (up to a bound) for checking.
type fuzzConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

const fuzzMaxOutput = 1 << 20

func (c *fuzzConn) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error) {
	if c.out.Len() < fuzzMaxOutput {
		c.out.Write(p)
	}
	return len(p), nil
}
func (c *fuzzConn) Close() error        { return nil }
func (c *fuzzConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *fuzzConn) SetDeadline(t time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(t time.Time) error { return nil }

// fuzzPrefixes bring a session to a state before the fuzz input.
var fuzzPrefixes = []string{
	"",                           // AUTHORIZATION
	"USER alice@example.org\r\n", // waiting for PASS
	"USER alice@example.org\r\nPASS secret\r\n",                     // TRANSACTION
	"AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\nDELE 2\r\n", // TRANSACTION, one mark
}

// FuzzSession replays a prefix that reaches a state (0-3 commands), then the
// fuzz input, through a whole session over an in-memory connection. The
// session must end (the input ends in EOF) without a panic, release its
// lock and maildrop, answer in CRLF-terminated lines only, and remove
// nothing unless a QUIT came (RFC 1939 6).
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"STAT\r\nLIST\r\nUIDL\r\nRETR 2\r\nTOP 3 1\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n",
		"DELE 1\r\nDELE 3\r\nQUIT\r\n",
		"DELE 1\r\n",
		"CAPA\r\nAUTH\r\nAUTH LOGIN\r\nYWxpY2VAZXhhbXBsZS5vcmc=\r\nc2VjcmV0\r\nLIST 2\r\n",
		"AUTH SCRAM-SHA-256\r\nbixuPWFsaWNlQGV4YW1wbGUub3JnLHI9YWJj\r\n*\r\n",
		"STLS\r\nCAPA\r\n",
		"PASS secret\r\nRETR 1\r\nquit\r\n",
		"LIST 0\r\nLIST 4294967297\r\nTOP 1 99999999999\r\nRETR\r\n\x00\r\n",
		"USER a\nPASS b\nUSER c\r\n",
	} {
		for i := range fuzzPrefixes {
			f.Add(uint8(i), []byte(s))
		}
	}
	tlsConfig := testTLSConfig(f)
	f.Fuzz(func(t *testing.T, prefix uint8, input []byte) {
		be := newFakeBackend()
		srv := New(Config{
			Hostname: "pop.example.org",
			Backend:  be,
			Auth:     be.credentials(),
			TLS:      tlsConfig,
			Limits:   Limits{ErrorDelay: time.Nanosecond},
		})
		p := fuzzPrefixes[int(prefix)%len(fuzzPrefixes)]
		conn := &fuzzConn{in: bytes.NewReader(append([]byte(p), input...))}
		sess := newSession(srv, conn, netip.MustParseAddrPort("127.0.0.1:40000"))
		done := make(chan struct{})
		go func() { sess.run(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		if n := srv.locks.Held(); n != 0 {
			t.Fatalf("%d maildrops still locked", n)
		}
		if be.opens != be.closes {
			t.Fatalf("%d maildrops opened, %d closed", be.opens, be.closes)
		}
		if !bytes.Contains(bytes.ToUpper(input), []byte("QUIT")) && be.deleteCalls() != "none" {
			t.Fatalf("messages removed without QUIT: %s", be.deleteCalls())
		}
		out := conn.out.Bytes()
		if !bytes.HasPrefix(out, []byte("+OK pop.example.org Posthorn POP3 server ready\r\n")) {
			t.Fatalf("no greeting: %q", out)
		}
		if bytes.Contains(input, []byte("STLS")) || bytes.Contains(input, []byte("stls")) || len(out) >= fuzzMaxOutput {
			return // TLS records are not lines; a truncated output ends anywhere
		}
		if !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end with CRLF: %q", out)
		}
		for line := range bytes.SplitSeq(out[:len(out)-2], []byte("\r\n")) {
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("bare CR or LF in output line %q", line)
			}
		}
	})
}
