package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// panicRecorder is a slog handler that remembers ERROR records, so the
// fuzzer can fail on a recovered panic or an internal error.
type panicRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *panicRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *panicRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	h.msgs = append(h.msgs, msg)
	return nil
}
func (h *panicRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicRecorder) WithGroup(string) slog.Handler      { return h }

func (h *panicRecorder) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.msgs
	h.msgs = nil
	return m
}

// FuzzSession logs in, selects INBOX (four messages of every MIME shape),
// then sends the fuzz input as the rest of the session. The server must not
// panic, report an internal error, or stop serving: a fresh session must
// still get an answer to NOOP afterwards. Input is bounded (the decoder's
// limits are what bound memory; this keeps iterations fast).
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"a FETCH 1:* (FLAGS BODYSTRUCTURE ENVELOPE BODY.PEEK[1.MIME] BINARY.PEEK[2] BINARY.SIZE[1])\r\n",
		"a UID FETCH 1:* BODY[HEADER.FIELDS (From \"To\")]<0.10>\r\n",
		"a SEARCH RETURN (MIN MAX COUNT SAVE) OR (FROM x SUBJECT {3}\r\nabc) NOT 1:3,$\r\n",
		"a STORE 1:* +FLAGS (\\Deleted $x)\r\nb EXPUNGE\r\nc NOOP\r\n",
		"a APPEND INBOX (\\Seen) \"01-Jan-2026 00:00:00 +0000\" {5+}\r\nhello\r\n",
		"a MOVE 1 Trash\r\nb COPY 1:* Archive\r\nc UID EXPUNGE 1:*\r\n",
		"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% *) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
		"a IDLE\r\nDONE\r\nb CREATE x/y/\r\nc RENAME x z\r\nd DELETE z/y\r\n",
		"a ENABLE IMAP4rev2 UTF8=ACCEPT\r\nb SEARCH CHARSET UTF-8 BODY \"ü\"\r\n",
		"a SELECT INBOX\r\nb CLOSE\r\nc UNSELECT\r\nd LOGOUT\r\n",
		"a FETCH * BODY[1.2.3.4.5.6.7.8.9.10.HEADER]\r\n",
		"a SEARCH NOT NOT NOT (((((ALL)))))\r\n",
	} {
		f.Add([]byte(seed))
	}
	rec := &panicRecorder{}
	ts := startTestServer(f, testOptions{
		logger: slog.New(rec),
		limits: Limits{PerIPConnections: 10000, PerAccountConnections: 10000, BadCommands: 1000},
	})
	for _, name := range []string{"simple.eml", "alternative.eml", "mixed.eml", "rfc822.eml"} {
		if _, err := ts.acct.Append(context.Background(), "INBOX", readMessage(f, name), nil, testDate); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		if len(input) > 8<<10 {
			return
		}
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		br := bufio.NewReader(c)
		expect := func(prefix string) {
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("waiting for %q: %v", prefix, err)
				}
				if strings.HasPrefix(line, prefix) {
					return
				}
			}
		}
		expect("* OK")
		io.WriteString(c, "f1 LOGIN alice@example.org secret\r\n")
		expect("f1 OK")
		io.WriteString(c, "f2 SELECT INBOX\r\n")
		expect("f2 OK")
		c.Write(input)
		// Half-close: the server reads EOF after the input, finishes what
		// it can and closes. Not closing within the deadline is a hang.
		c.(*net.TCPConn).CloseWrite()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, br); err != nil {
			t.Fatalf("session did not end after input %q: %v", input, err)
		}
		c.Close()

		// The server still serves.
		c2, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(3 * time.Second))
		br = bufio.NewReader(c2)
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
			t.Fatalf("greeting after fuzz input: %q, %v", line, err)
		}
		io.WriteString(c2, "n NOOP\r\n")
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "n OK") {
			t.Fatalf("NOOP after fuzz input: %q, %v", line, err)
		}
		for _, m := range rec.take() {
			if strings.Contains(m, "panic") || strings.Contains(m, "command failed") {
				t.Fatalf("server error on input %q: %s", input, m)
			}
		}
	})
}
