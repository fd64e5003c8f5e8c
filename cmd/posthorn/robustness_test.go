package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"posthorn/protocol/transcript"
)

// The rows of ROBUSTNESS.md ("Hostile and broken input", "Outbound",
// "Concurrency and scale", "restart with 10k deferred messages") against
// the real binary over loopback. The protocol packages replay the same
// behaviours as transcripts against in-process servers; here the question
// is whether `posthorn serve`, wired as it ships, answers the same and
// stores what it should (and nothing else). This file has the helpers and
// the SMTP input rows; robustness_mailbox_test.go the IMAP and POP3 rows,
// robustness_queue_test.go and robustness_outbound_test.go the queue's.
// Every helper is prefixed rb so that the files others write in this
// package do not collide with these.

const (
	rbUser = "demo@example.org"
	rbPass = "secret"
	// rbWait bounds every read: a server that hangs fails the test.
	rbWait = 15 * time.Second
)

// rbConn is a raw client connection that reads one line at a time, each
// read with a deadline.
type rbConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func rbDial(t testing.TB, addr string) *rbConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, rbWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rbConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes s exactly as given (no CRLF added).
func (c *rbConn) send(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(rbWait))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("sending %q: %v", rbShort(s), err)
	}
}

// line reads one line and returns it without its CRLF.
func (c *rbConn) line() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(rbWait))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a line: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
}

// expect reads one line, which must match pattern ("*" matches any run).
func (c *rbConn) expect(pattern string) string {
	c.t.Helper()
	l := c.line()
	if !transcript.Match(pattern, l) {
		c.t.Fatalf("got %q, want %q", rbShort(l), pattern)
	}
	return l
}

// skipTo reads lines until one matches pattern.
func (c *rbConn) skipTo(pattern string) string {
	c.t.Helper()
	for {
		if l := c.line(); transcript.Match(pattern, l) {
			return l
		}
	}
}

// expectClosed asserts that the server closes the connection, having
// sent nothing more.
func (c *rbConn) expectClosed() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(rbWait))
	l, err := c.br.ReadString('\n')
	if err == nil || l != "" {
		c.t.Fatalf("connection still open: read %q, %v", rbShort(l), err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatalf("connection still open after %v", rbWait)
	}
}

// startTLS runs the client handshake; the reader starts afresh, so that
// nothing the server sent in the clear can be read as if under TLS.
func (c *rbConn) startTLS() {
	c.t.Helper()
	if c.br.Buffered() > 0 {
		c.t.Fatalf("server sent %d octets after its go-ahead for TLS", c.br.Buffered())
	}
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.org"})
	tc.SetDeadline(time.Now().Add(rbWait))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.c = tc
	c.br = bufio.NewReader(tc)
}

func rbShort(s string) string {
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("...(%d octets)", len(s))
	}
	return s
}

// smtpReply reads a whole SMTP reply and returns its last line.
func (c *rbConn) smtpReply() string {
	c.t.Helper()
	for {
		l := c.line()
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

// smtpExpect reads a reply whose last line must match pattern.
func (c *rbConn) smtpExpect(pattern string) {
	c.t.Helper()
	if l := c.smtpReply(); !transcript.Match(pattern, l) {
		c.t.Fatalf("got %q, want %q", rbShort(l), pattern)
	}
}

// rbSMTP connects, reads the greeting and says EHLO.
func rbSMTP(t testing.TB, addr string) *rbConn {
	t.Helper()
	c := rbDial(t, addr)
	c.smtpExpect("220 * ESMTP Posthorn")
	c.send("EHLO client.example\r\n")
	c.smtpExpect("250 *")
	return c
}

// rbIMAP connects and logs in as rbUser.
func rbIMAP(t testing.TB, addr string) *rbConn {
	t.Helper()
	c := rbDial(t, addr)
	c.expect("* OK [CAPABILITY *] mx.example.org Posthorn IMAP ready")
	c.send("L LOGIN " + rbUser + " " + rbPass + "\r\n")
	c.expect("L OK [CAPABILITY *] Logged in")
	return c
}

// rbMemory returns the server's resident set and its peak so far, in KiB
// (/proc/PID/status VmRSS and VmHWM).
func rbMemory(t testing.TB, in *instance) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak
}

// rbPeakGrowth runs fn and fails if the server's peak resident set grew
// by more than limitKiB meanwhile: what fn makes the server do must not be
// held in memory whole.
func rbPeakGrowth(t *testing.T, in *instance, limitKiB int64, what string, fn func()) {
	t.Helper()
	_, before := rbMemory(t, in)
	fn()
	rss, after := rbMemory(t, in)
	t.Logf("%s: peak RSS %d -> %d KiB (now %d KiB)", what, before, after, rss)
	if after-before > limitKiB {
		t.Errorf("%s: peak RSS grew by %d KiB, more than %d KiB: the input was buffered", what, after-before, limitKiB)
	}
}

// rbInstance starts an instance with rbUser and the given extra options.
func rbInstance(t *testing.T, extra ...string) *instance {
	t.Helper()
	in := newInstance(t, extra...)
	in.mustCLI(rbPass+"\n", "user", "add", rbUser)
	in.start()
	return in
}

// rbMailTo opens a transaction for rcpt and sends DATA.
func (c *rbConn) rbMailTo(rcpt string) {
	c.t.Helper()
	c.send("MAIL FROM:<sender@remote.example>\r\n")
	c.smtpExpect("250 2.1.0 Sender OK")
	c.send("RCPT TO:<" + rcpt + ">\r\n")
	c.smtpExpect("250 2.1.5 Recipient OK")
	c.send("DATA\r\n")
	c.smtpExpect("354 *")
}

// SMTP smuggling (CVE-2023-51764), ROBUSTNESS.md: "never two messages;
// reject with 5xx (5.5.2) after reading to the real end, or close". Each
// ending is followed by a smuggled transaction and the real CRLF.CRLF: the
// server must read to the real end, refuse with 554 5.5.2 (RFC 5321 2.3.8,
// 4.1.1.4), stay in sync, and store neither message.
func TestRobustSMTPSmuggling(t *testing.T) {
	in := rbInstance(t)
	endings := []struct{ name, ending string }{
		{"LF.LF", "\n.\n"},
		{"LF.CRLF", "\n.\r\n"},
		{"CRLF.LF", "\r\n.\n"},
		{"CR.CR", "\r.\r"},
		{"CRLF.CR", "\r\n.\r"},
		{"LF.", "\n."},
		{"CR.CRLF", "\r.\r\n"},
	}
	for _, e := range endings {
		t.Run(e.name, func(t *testing.T) {
			c := rbSMTP(t, in.smtp)
			c.rbMailTo(rbUser)
			c.send("Subject: first " + e.name + "\r\n\r\nfirst" + e.ending +
				"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<" + rbUser + ">\r\nDATA\r\n" +
				"Subject: smuggled " + e.name + "\r\n\r\nsecond\r\n.\r\n")
			c.smtpExpect("554 5.5.2 Bare CR or LF in message; lines must end in CRLF (RFC 5321 2.3.8)")
			// In sync: the next reply answers the next command, not a
			// smuggled one.
			c.send("NOOP\r\n")
			c.smtpExpect("250 2.0.0 OK")
			c.send("RCPT TO:<" + rbUser + ">\r\n")
			c.smtpExpect("503 5.5.1 Send MAIL first")
			c.send("QUIT\r\n")
			c.smtpExpect("221 2.0.0 mx.example.org Bye")
		})
	}
	// A clean message after all that is the only one stored.
	c := rbSMTP(t, in.smtp)
	c.rbMailTo(rbUser)
	c.send("Subject: clean\r\n\r\nclean\r\n.\r\n")
	c.smtpExpect("250 2.0.0 OK queued as *")
	in.stop()
	msgs := in.inbox(rbUser, "INBOX")
	if len(msgs) != 1 || !strings.HasSuffix(string(msgs[0]), "Subject: clean\r\n\r\nclean\r\n") {
		t.Fatalf("INBOX has %d messages, want only the clean one: %q", len(msgs), msgs)
	}
}

// Command and address limits, ESMTP SIZE, VRFY, unknown recipients and
// recipient counts on port 25 of the binary.
func TestRobustSMTPLimits(t *testing.T) {
	in := rbInstance(t, "-o", "message_size_limit=64K")
	long := func(n int) string { return strings.Repeat("a", n) }

	// RFC 5321 4.5.3.1.4: 512 octets with CRLF pass; 513 are 500 5.5.2,
	// and the session ends (the rest of such a line is never read).
	t.Run("CommandLine", func(t *testing.T) {
		c := rbSMTP(t, in.smtp)
		c.send("NOOP " + long(512-2-5) + "\r\n")
		c.smtpExpect("250 2.0.0 OK")
		c.send("NOOP " + long(513-2-5) + "\r\n")
		c.smtpExpect("500 5.5.2 Line too long")
		c.expectClosed()
	})

	// RFC 5321 4.5.3.1.1 local part 64 octets, 4.5.3.1.3 path 256 octets
	// (with the brackets): one more is 501 5.1.3 for RCPT, 5.1.7 for MAIL.
	t.Run("PathLimits", func(t *testing.T) {
		c := rbSMTP(t, in.smtp)
		domain := long(60) + "." + long(60) + "." + long(60) + "." + long(60) // 243 octets
		steps := []struct{ send, want string }{
			{"MAIL FROM:<" + long(65) + "@remote.example>", "501 5.1.7 Local part too long"},
			{"MAIL FROM:<" + long(64) + "@remote.example>", "250 2.1.0 Sender OK"},
			{"RCPT TO:<" + long(65) + "@example.org>", "501 5.1.3 Local part too long"},
			{"RCPT TO:<" + long(64) + "@" + domain[:190] + ">", "501 5.1.3 Address too long"},    // 257 octets with the brackets
			{"RCPT TO:<" + long(64) + "@example.org>", "550 5.1.1 No such user here"},            // 64: syntax OK, no such user
			{"RCPT TO:<" + long(64) + "@" + domain[:189] + ">", "554 5.7.1 Relay access denied"}, // 256: legal, not ours
			{"RCPT TO:<demo@example.org>", "250 2.1.5 Recipient OK"},
		}
		for _, s := range steps {
			c.send(s.send + "\r\n")
			c.smtpExpect(s.want)
		}
	})

	// RFC 1870 6.1: a declared SIZE over the limit is 552 5.3.4 at MAIL;
	// 6.2 and RFC 5321 4.5.3.1.10: a body over it is read to its end and
	// refused with 552 5.3.4, the session still in sync.
	t.Run("Size", func(t *testing.T) {
		c := rbSMTP(t, in.smtp)
		c.send("MAIL FROM:<a@remote.example> SIZE=65537\r\n")
		c.smtpExpect("552 5.3.4 Message size exceeds fixed maximum message size")
		c.send("MAIL FROM:<a@remote.example> SIZE=65536\r\n")
		c.smtpExpect("250 2.1.0 Sender OK")
		c.send("RCPT TO:<" + rbUser + ">\r\n")
		c.smtpExpect("250 2.1.5 Recipient OK")
		c.send("DATA\r\n")
		c.smtpExpect("354 *")
		line := strings.Repeat("x", 98) + "\r\n"
		c.send("Subject: too big\r\n\r\n" + strings.Repeat(line, 700) + ".\r\n") // 70 KB
		c.smtpExpect("552 5.3.4 Message exceeds fixed maximum message size of 65536 octets")
		c.send("NOOP\r\n")
		c.smtpExpect("250 2.0.0 OK")
	})

	// RFC 5321 3.5.3: VRFY gets 252 for any user, so it tells nothing.
	t.Run("VRFY", func(t *testing.T) {
		c := rbSMTP(t, in.smtp)
		for _, u := range []string{"demo", rbUser, "nobody@example.org"} {
			c.send("VRFY " + u + "\r\n")
			c.smtpExpect("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery")
		}
	})

	// RFC 5321 4.5.3.1.8 and 4.5.3.1.10: 1001 RCPTs, the first 1000
	// (max_recipients) accepted, the 1001st 452 4.5.3; the message goes to
	// the accepted ones (plus-addresses of one account: stored once).
	t.Run("Recipients1001", func(t *testing.T) {
		c := rbSMTP(t, in.smtp)
		var b strings.Builder
		b.WriteString("MAIL FROM:<a@remote.example>\r\n")
		for i := range 1001 {
			fmt.Fprintf(&b, "RCPT TO:<demo+%d@example.org>\r\n", i)
		}
		c.send(b.String()) // PIPELINING (RFC 2920)
		c.smtpExpect("250 2.1.0 Sender OK")
		for i := range 1000 {
			if l := c.smtpReply(); l != "250 2.1.5 Recipient OK" {
				t.Fatalf("RCPT %d: %q", i+1, l)
			}
		}
		c.smtpExpect("452 4.5.3 Too many recipients")
		c.send("DATA\r\n")
		c.smtpExpect("354 *")
		c.send("Subject: to 1000\r\n\r\nhi\r\n.\r\n")
		c.smtpExpect("250 2.0.0 OK queued as *")
	})

	in.stop()
	msgs := in.inbox(rbUser, "INBOX")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "Subject: to 1000\r\n") {
		t.Fatalf("INBOX has %d messages, want the one to 1000 recipients", len(msgs))
	}
}

// rbFlood writes n octets of filler in the background, as fast as the
// server takes them, until it has written them all or the server closes.
func (c *rbConn) rbFlood(prefix string, n int) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := []byte(strings.Repeat("A", 64<<10))
		c.c.SetWriteDeadline(time.Now().Add(2 * rbWait))
		if _, err := io.WriteString(c.c, prefix); err != nil {
			return
		}
		for sent := 0; sent < n; sent += len(chunk) {
			if _, err := c.c.Write(chunk); err != nil {
				return // the server closed: expected
			}
		}
	}()
	return done
}

// Input that must not be held whole: a 10 MB command line without LF, and
// a message far over message_size_limit. RFC 5321 4.5.3.1.4: 500 5.5.2
// and close; RFC 5321 4.5.3.1.10: 552 5.3.4 and, once reading on to the
// end would cost more than the limit twice over, close. The server's
// peak resident set must not grow by anything near the input's size.
func TestRobustSMTPHugeInput(t *testing.T) {
	in := rbInstance(t, "-o", "message_size_limit=64K")

	t.Run("LineWithoutLF", func(t *testing.T) {
		rbPeakGrowth(t, in, 4<<10, "10 MB line", func() {
			c := rbSMTP(t, in.smtp)
			done := c.rbFlood("NOOP ", 10<<20)
			c.smtpExpect("500 5.5.2 Line too long")
			c.expectClosed()
			<-done
		})
	})

	t.Run("MessageFarOverLimit", func(t *testing.T) {
		rbPeakGrowth(t, in, 4<<10, "20 MB message", func() {
			c := rbSMTP(t, in.smtp)
			c.rbMailTo(rbUser)
			line := strings.Repeat("y", 98) + "\r\n"
			done := make(chan struct{})
			go func() {
				defer close(done)
				block := strings.Repeat(line, 10000) // 1 MB
				for range 20 {
					if _, err := io.WriteString(c.c, block); err != nil {
						return
					}
				}
				io.WriteString(c.c, ".\r\n")
			}()
			c.smtpExpect("552 5.3.4 Message far exceeds the size limit, closing connection")
			c.expectClosed()
			<-done
		})
	})

	in.stop()
	if msgs := in.inbox(rbUser, "INBOX"); len(msgs) != 0 {
		t.Fatalf("INBOX has %d messages, want none", len(msgs))
	}
}

// Unknown recipients (ROBUSTNESS.md: "550 5.1.1 with error delays; too many
// errors → 421"): with the shipped limits (as Postfix's
// smtpd_soft_error_limit 10 and smtpd_hard_error_limit 20) the first ten
// errors are answered at once, the next ones each after a second's delay,
// and the twentieth ends the session with 421 4.7.0.
func TestRobustSMTPUnknownRecipients(t *testing.T) {
	t.Parallel()
	in := rbInstance(t)
	c := rbSMTP(t, in.smtp)
	c.send("MAIL FROM:<probe@remote.example>\r\n")
	c.smtpExpect("250 2.1.0 Sender OK")
	start := time.Now()
	for i := 1; i <= 20; i++ {
		t0 := time.Now()
		c.send(fmt.Sprintf("RCPT TO:<nobody%d@example.org>\r\n", i))
		c.smtpExpect("550 5.1.1 No such user here")
		d := time.Since(t0)
		if i > 10 && i < 20 && d < 900*time.Millisecond {
			t.Errorf("error %d answered after %v; errors past the tenth are delayed a second", i, d)
		}
		if i == 10 && time.Since(start) > 5*time.Second {
			t.Errorf("the first ten errors took %v; they are not delayed", time.Since(start))
		}
	}
	c.smtpExpect("421 4.7.0 mx.example.org Too many errors, closing connection")
	c.expectClosed()
	in.stop()
	if msgs := in.inbox(rbUser, "INBOX"); len(msgs) != 0 {
		t.Fatalf("INBOX has %d messages", len(msgs))
	}
}

// rbReceived returns n Received lines.
func rbReceived(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Received: from hop%d.example by hop%d.example; Thu, 26 Nov 2026 11:00:00 +0000\r\n", i, i+1)
	}
	return b.String()
}

// rbSend sends one message over a fresh session and returns the reply to
// the final dot.
func rbSend(t *testing.T, addr, rcpt, msg string) string {
	t.Helper()
	c := rbSMTP(t, addr)
	c.rbMailTo(rcpt)
	c.send(msg + ".\r\n")
	r := c.smtpReply()
	c.send("QUIT\r\n")
	return r
}

// RFC 5321 6.3: more than 100 Received lines is a loop, 554 5.4.6; 100
// still pass. (Two servers forwarding to each other: TestRobustMailLoop.)
func TestRobustSMTPReceivedLimit(t *testing.T) {
	in := rbInstance(t)
	if r := rbSend(t, in.smtp, rbUser, rbReceived(101)+"Subject: 101 hops\r\n\r\nbody\r\n"); r != "554 5.4.6 Too many hops (101 Received lines), mail loop suspected" {
		t.Errorf("101 Received lines: %q", r)
	}
	if r := rbSend(t, in.smtp, rbUser, rbReceived(100)+"Subject: 100 hops\r\n\r\nbody\r\n"); !transcript.Match("250 2.0.0 OK queued as *", r) {
		t.Errorf("100 Received lines: %q", r)
	}
	in.stop()
	msgs := in.inbox(rbUser, "INBOX")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "Subject: 100 hops\r\n") {
		t.Fatalf("INBOX has %d messages, want the one with 100 hops", len(msgs))
	}
}

// RFC 5321 4.5.3.2.7: a client that says nothing after the greeting, or
// trickles a command a byte at a time, is cut off at smtp_command_timeout
// with 421 4.4.2; the trickle does not extend the wait.
func TestRobustSMTPIdleTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	in := rbInstance(t, "-o", "smtp_command_timeout=2s")
	cases := []struct {
		name    string
		trickle bool
	}{{"Silent", false}, {"OneByteAtATime", true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := rbDial(t, in.smtp)
			c.smtpExpect("220 mx.example.org *")
			start := time.Now()
			if tc.trickle {
				go func() {
					for _, b := range "NOOP\r\n" {
						time.Sleep(timeout / 4)
						if _, err := c.c.Write([]byte{byte(b)}); err != nil {
							return
						}
					}
				}()
			}
			c.smtpExpect("421 4.4.2 mx.example.org Timeout waiting for command, closing connection")
			if d := time.Since(start); d < timeout-100*time.Millisecond || d > timeout+3*time.Second {
				t.Errorf("421 after %v; smtp_command_timeout is %v", d, timeout)
			}
			c.expectClosed()
		})
	}
}
