package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"posthorn/protocol/transcript"
)

// ROBUSTNESS.md rows for IMAP and POP3 against the binary: STARTTLS
// injection in all three protocols, hostile IMAP input, POP3 and IMAP on
// one mailbox, many IDLE sessions, and messages that make the MIME parser
// work. Helpers are in robustness_test.go.

var rbFetchRE = regexp.MustCompile(`^\* [1-9][0-9]* FETCH \(`)

// Messages built to make a MIME parser work hard (ROBUSTNESS.md: "100k
// address headers, 1 MB header, MIME nested 10k deep: bounded CPU and
// memory; accept or 552/554"). Each is accepted within a bounded time and
// peak memory, and IMAP then still answers FETCH BODYSTRUCTURE and
// ENVELOPE for all of them (from the structure parsed once at delivery).
func TestRobustHostileMIME(t *testing.T) {
	imapAddr := freePort(t)
	in := newInstance(t, "-o", "imap_listen="+imapAddr)
	in.extraPorts = []string{imapAddr}
	in.mustCLI(rbPass+"\n", "user", "add", rbUser)
	in.start()

	var lines, oneField, folded, deep strings.Builder
	for i := range 100000 {
		fmt.Fprintf(&lines, "To: user%d@example.org\r\n", i)
	}
	lines.WriteString("Subject: 100k To lines\r\n\r\nbody\r\n")
	oneField.WriteString("To: a0@example.org")
	for i := 1; i < 100000; i++ {
		fmt.Fprintf(&oneField, ",\r\n a%d@example.org", i)
	}
	oneField.WriteString("\r\nSubject: 100k addresses in one field\r\n\r\nbody\r\n")
	folded.WriteString("Subject: 1 MB header\r\nX-Big: start")
	for folded.Len() < 1<<20 {
		folded.WriteString("\r\n\t" + strings.Repeat("z", 70))
	}
	folded.WriteString("\r\n\r\nbody\r\n")
	deep.WriteString("Subject: MIME 10k deep\r\nMIME-Version: 1.0\r\n")
	for range 10000 {
		deep.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n")
	}
	deep.WriteString("\r\nleaf\r\n")
	msgs := []struct{ name, body string }{
		{"100k To lines", lines.String()},
		{"100k addresses in one field", oneField.String()},
		{"1 MB header", folded.String()},
		{"MIME 10k deep", deep.String()},
	}
	for _, m := range msgs {
		rbPeakGrowth(t, in, 64<<10, m.name, func() {
			start := time.Now()
			if r := rbSend(t, in.smtp, rbUser, m.body); !transcript.Match("250 2.0.0 OK queued as *", r) {
				t.Fatalf("%s: %q", m.name, r)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%s: delivery took %v", m.name, d)
			}
		})
	}

	c := rbIMAP(t, imapAddr)
	c.send("s SELECT INBOX\r\n")
	c.skipTo("* 4 EXISTS")
	c.skipTo("s OK [READ-WRITE] *")
	for _, item := range []string{"BODYSTRUCTURE", "ENVELOPE", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"} {
		start := time.Now()
		c.send("f FETCH 1:4 (" + item + ")\r\n")
		fetched := 0
		for {
			l := c.line()
			if strings.HasPrefix(l, "f ") {
				if l != "f OK Completed" {
					t.Fatalf("FETCH %s: %q", item, l)
				}
				break
			}
			if rbFetchRE.MatchString(l) {
				fetched++
			}
		}
		if fetched != 4 {
			t.Errorf("FETCH %s: %d FETCH responses, want 4", item, fetched)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("FETCH %s took %v", item, d)
		}
	}
	c.send("q LOGOUT\r\n")
	c.skipTo("q OK *")
}

// rbAllInstance runs SMTP, POP3 and IMAP listeners (STARTTLS/STLS offered
// with the self-signed certificate) and returns the instance with its
// POP3 and IMAP addresses.
func rbAllInstance(t *testing.T, extra ...string) (in *instance, pop3, imap string) {
	t.Helper()
	pop3, imap = freePort(t), freePort(t)
	in = newInstance(t, append([]string{"-o", "pop3_listen=" + pop3, "-o", "imap_listen=" + imap}, extra...)...)
	in.extraPorts = []string{pop3, imap}
	in.mustCLI(rbPass+"\n", "user", "add", rbUser)
	in.start()
	return in, pop3, imap
}

// Commands sent in the same packet as STARTTLS / STLS are discarded, not
// run inside TLS (RFC 3207 4.2, RFC 2595 3.1 and 4, RFC 9051 6.2.1;
// CVE-2011-0411), and the session state is reset: EHLO again, log in again.
func TestRobustSTARTTLSInjection(t *testing.T) {
	in, pop3, imap := rbAllInstance(t)

	t.Run("SMTP", func(t *testing.T) {
		c := rbSMTP(t, in.smtp)
		c.send("STARTTLS\r\nMAIL FROM:<injected@remote.example>\r\nRCPT TO:<" + rbUser + ">\r\nRSET\r\n")
		c.smtpExpect("220 2.0.0 Ready to start TLS")
		c.startTLS()
		// Neither the injected MAIL nor the EHLO before TLS survived.
		c.send("RCPT TO:<" + rbUser + ">\r\n")
		c.smtpExpect("503 5.5.1 Send EHLO or HELO first")
		c.send("EHLO client.example\r\n")
		c.smtpExpect("250 *")
		c.send("RCPT TO:<" + rbUser + ">\r\n")
		c.smtpExpect("503 5.5.1 Send MAIL first")
		c.send("DATA\r\n")
		c.smtpExpect("503 5.5.1 Send MAIL first")
		c.send("QUIT\r\n")
		c.smtpExpect("221 2.0.0 mx.example.org Bye")
	})

	t.Run("IMAP", func(t *testing.T) {
		c := rbDial(t, imap)
		c.expect("* OK [CAPABILITY *] mx.example.org Posthorn IMAP ready")
		c.send("a STARTTLS\r\nb LOGIN " + rbUser + " " + rbPass + "\r\nc NOOP\r\n")
		c.expect("a OK Begin TLS negotiation now")
		c.startTLS()
		// The first response under TLS answers d: b and c are gone, and
		// the injected LOGIN did not log in.
		c.send("d SELECT INBOX\r\n")
		c.expect("d BAD Command not allowed in the not authenticated state")
		c.send("e STARTTLS\r\n")
		c.expect("e BAD STARTTLS not available")
		c.send("f LOGIN " + rbUser + " " + rbPass + "\r\n")
		c.expect("f OK [CAPABILITY *] Logged in")
	})

	t.Run("POP3", func(t *testing.T) {
		c := rbDial(t, pop3)
		c.expect("+OK mx.example.org Posthorn POP3 server ready*")
		c.send("USER " + rbUser + "\r\n")
		c.expect("+OK Send PASS")
		c.send("STLS\r\nPASS " + rbPass + "\r\nCAPA\r\n")
		c.expect("+OK Begin TLS negotiation")
		c.startTLS()
		// USER before STLS is forgotten; the injected PASS and CAPA were
		// never run.
		c.send("PASS " + rbPass + "\r\n")
		c.expect("-ERR Send USER first")
		c.send("STAT\r\n")
		c.expect("-ERR Not authenticated yet, log in first")
		c.send("QUIT\r\n")
		c.expect("+OK mx.example.org Posthorn POP3 server signing off")
		c.expectClosed()
	})

	in.stop()
	if msgs := in.inbox(rbUser, "INBOX"); len(msgs) != 0 {
		t.Fatalf("INBOX has %d messages", len(msgs))
	}
}

// IMAP decoder limits against the binary (ROBUSTNESS.md: "a LOGIN
// {4000000000} before auth: BAD / NO [TOOBIG]; nothing allocated", "100k
// nested parentheses; NUL in a quoted string: BAD; no crash", "APPEND with
// a LITERAL+ literal over the limit: NO [TOOBIG] or BYE; not buffered").
func TestRobustIMAPHostileInput(t *testing.T) {
	imapAddr := freePort(t)
	in := newInstance(t, "-o", "imap_listen="+imapAddr, "-o", "message_size_limit=1M")
	in.extraPorts = []string{imapAddr}
	in.mustCLI(rbPass+"\n", "user", "add", rbUser)
	in.start()
	greet := func(t *testing.T) *rbConn {
		c := rbDial(t, imapAddr)
		c.expect("* OK [CAPABILITY * LITERAL+ * APPENDLIMIT=1048576 *] mx.example.org Posthorn IMAP ready")
		return c
	}

	t.Run("HugeLiteralBeforeAuth", func(t *testing.T) {
		rbPeakGrowth(t, in, 4<<10, "LOGIN {4000000000}", func() {
			c := greet(t)
			// RFC 7888 4 / RFC 9051 7.1: refused before the client sends it:
			// no "+" continuation, and the session goes on.
			c.send("a1 LOGIN {4000000000}\r\n")
			c.expect("a1 NO [TOOBIG] literal too large")
			c.send("a2 NOOP\r\n")
			c.expect("a2 OK Completed")
			// Non-synchronising: already on its way, and more than the server
			// will read to stay in sync: BYE (RFC 7888 4).
			c.send("a3 LOGIN {4000000000+}\r\n")
			c.expect("* BYE [TOOBIG] non-synchronizing literal too large")
			c.expectClosed()
		})
	})

	t.Run("NestingAndNUL", func(t *testing.T) {
		c := greet(t)
		c.send("n1 LOGIN \"de\x00mo\" secret\r\n")
		c.expect("n1 BAD NUL in quoted string")
		c.send("L LOGIN " + rbUser + " " + rbPass + "\r\n")
		c.expect("L OK [CAPABILITY *] Logged in")
		c.send("s SELECT INBOX\r\n")
		c.skipTo("s OK [READ-WRITE] *")
		// 30 000 levels fit in a 64 KiB line: BAD, and the session goes on.
		c.send("n2 SEARCH " + strings.Repeat("(", 30000) + "ALL" + strings.Repeat(")", 30000) + "\r\n")
		c.expect("n2 BAD lists nested too deeply")
		c.send("n3 NOOP\r\n")
		c.expect("n3 OK Completed")
		// 100 000 levels are a line over the 64 KiB limit: BYE, since
		// the rest of the line is never read.
		c.send("n4 SEARCH " + strings.Repeat("(", 100000) + "ALL" + strings.Repeat(")", 100000) + "\r\n")
		c.expect("* BYE line too long")
		c.expectClosed()
		// No crash: the server still serves.
		c = greet(t)
		c.send("n5 NOOP\r\n")
		c.expect("n5 OK Completed")
	})

	t.Run("AppendOverLimit", func(t *testing.T) {
		c := greet(t)
		c.send("L LOGIN " + rbUser + " " + rbPass + "\r\n")
		c.expect("L OK [CAPABILITY *] Logged in")
		// Synchronising: RFC 7889 NO [TOOBIG] before the client sends it.
		c.send("p1 APPEND INBOX {2000000}\r\n")
		c.expect("p1 NO [TOOBIG] literal too large")
		// LITERAL+ (RFC 7888): the message is on its way and more than the
		// server reads to stay in sync (everything over APPENDLIMIT is):
		// BYE [TOOBIG] (RFC 7888 4, choice 2), having read a bounded part.
		rbPeakGrowth(t, in, 8<<10, "APPEND {50000000+}", func() {
			done := c.rbFlood("p2 APPEND INBOX {50000000+}\r\n", 50000000)
			c.expect("* BYE [TOOBIG] non-synchronizing literal too large")
			c.expectClosed()
			<-done
		})
	})

	in.stop()
	if msgs := in.inbox(rbUser, "INBOX"); len(msgs) != 0 {
		t.Fatalf("INBOX has %d messages", len(msgs))
	}
}

// rbPOP3Login logs in over POP3 (USER/PASS: plaintext is allowed from
// loopback) and returns the connection and the reply to PASS.
func rbPOP3Login(t *testing.T, addr string) (*rbConn, string) {
	t.Helper()
	c := rbDial(t, addr)
	c.expect("+OK mx.example.org Posthorn POP3 server ready*")
	c.send("USER " + rbUser + "\r\n")
	c.expect("+OK Send PASS")
	c.send("PASS " + rbPass + "\r\n")
	return c, c.line()
}

// multiline reads a POP3 multi-line response body up to its ".".
func (c *rbConn) multiline() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// POP3 and IMAP on one mailbox (ROBUSTNESS.md: "POP3 maildrop lock (second
// session -ERR [IN-USE]); dropped connection deletes nothing; UIDL
// stable"). RFC 1939 4: one POP3 session per maildrop; RFC 2449 8.1.2:
// [IN-USE]; RFC 1939 6: a session that ends without QUIT deletes nothing;
// RFC 1939 7: a UIDL "persists across sessions".
func TestRobustPOP3AndIMAPSameMailbox(t *testing.T) {
	in, pop3, imap := rbAllInstance(t)
	for i := range 3 {
		if r := rbSend(t, in.smtp, rbUser, fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)); !transcript.Match("250 2.0.0 OK queued as *", r) {
			t.Fatal(r)
		}
	}
	p1, r := rbPOP3Login(t, pop3)
	if !transcript.Match("+OK Logged in, maildrop has 3 messages (* octets)", r) {
		t.Fatalf("first POP3 session: %q", r)
	}
	p1.send("UIDL\r\n")
	p1.expect("+OK*")
	uidl := p1.multiline()
	if len(uidl) != 3 {
		t.Fatalf("UIDL: %q", uidl)
	}

	// A second POP3 session is refused while the first holds the lock.
	p2, r := rbPOP3Login(t, pop3)
	if r != "-ERR [IN-USE] Maildrop is locked by another POP3 session" {
		t.Fatalf("second POP3 session: %q", r)
	}
	p2.send("QUIT\r\n")
	p2.expect("+OK *")

	// IMAP is not locked out and sees the same three messages.
	im := rbIMAP(t, imap)
	im.send("s SELECT INBOX\r\n")
	im.skipTo("* 3 EXISTS")
	im.skipTo("s OK [READ-WRITE] *")

	// The first POP3 session marks two deletions, then its connection
	// drops: nothing is deleted, and the lock is released.
	p1.send("DELE 1\r\n")
	p1.expect("+OK Message 1 deleted")
	p1.send("DELE 3\r\n")
	p1.expect("+OK Message 3 deleted")
	p1.c.Close()
	var p3 *rbConn
	deadline := time.Now().Add(rbWait)
	for {
		p3, r = rbPOP3Login(t, pop3)
		if r != "-ERR [IN-USE] Maildrop is locked by another POP3 session" || time.Now().After(deadline) {
			break
		}
		p3.c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if !transcript.Match("+OK Logged in, maildrop has 3 messages (* octets)", r) {
		t.Fatalf("POP3 session after the drop: %q", r)
	}
	p3.send("UIDL\r\n")
	p3.expect("+OK*")
	if got := p3.multiline(); strings.Join(got, "|") != strings.Join(uidl, "|") {
		t.Fatalf("UIDL changed after a dropped session:\n%q\n%q", got, uidl)
	}
	// IMAP saw no expunge.
	im.send("n NOOP\r\n")
	im.expect("n OK Completed")
	p3.send("QUIT\r\n")
	p3.expect("+OK *")

	// UIDL is stable across a restart too; then a QUIT after DELE does
	// delete, and IMAP is told.
	im.c.Close()
	in.stop()
	in.start()
	im = rbIMAP(t, imap)
	im.send("s SELECT INBOX\r\n")
	im.skipTo("* 3 EXISTS")
	im.skipTo("s OK [READ-WRITE] *")
	p4, r := rbPOP3Login(t, pop3)
	if !transcript.Match("+OK Logged in, maildrop has 3 messages (* octets)", r) {
		t.Fatalf("POP3 session after the restart: %q", r)
	}
	p4.send("UIDL\r\n")
	p4.expect("+OK*")
	if got := p4.multiline(); strings.Join(got, "|") != strings.Join(uidl, "|") {
		t.Fatalf("UIDL changed across a restart:\n%q\n%q", got, uidl)
	}
	p4.send("DELE 1\r\n")
	p4.expect("+OK Message 1 deleted")
	p4.send("QUIT\r\n")
	p4.expect("+OK mx.example.org Posthorn POP3 server signing off*")
	im.send("n NOOP\r\n")
	im.expect("* 1 EXPUNGE")
	im.expect("n OK Completed")
	im.c.Close()
	in.stop()
	msgs := in.inbox(rbUser, "INBOX")
	if len(msgs) != 2 || !strings.Contains(string(msgs[0]), "Subject: m1\r\n") || !strings.Contains(string(msgs[1]), "Subject: m2\r\n") {
		t.Fatalf("INBOX after the POP3 deletion: %d messages", len(msgs))
	}
}

// 100 IMAP sessions in IDLE (RFC 2177) on one INBOX, one delivery over
// SMTP: every session is told "* 1 EXISTS" within a second of the 250.
func TestRobustIdleSessions(t *testing.T) {
	const n = 100
	imapAddr := freePort(t)
	in := newInstance(t, "-o", "imap_listen="+imapAddr,
		"-o", fmt.Sprintf("max_connections_per_ip=%d", n+10), "-o", fmt.Sprintf("max_connections_per_account=%d", n+10))
	in.extraPorts = []string{imapAddr}
	in.mustCLI(rbPass+"\n", "user", "add", rbUser)
	in.start()
	sessions := make([]*rbConn, n)
	for i := range sessions {
		c := rbIMAP(t, imapAddr)
		c.send("s SELECT INBOX\r\ni IDLE\r\n")
		c.skipTo("* 0 EXISTS")
		c.skipTo("s OK [READ-WRITE] *")
		c.expect("+ idling")
		sessions[i] = c
	}
	c := rbSMTP(t, in.smtp)
	c.rbMailTo(rbUser)
	c.send("Subject: to the idlers\r\n\r\nhello\r\n.\r\n")
	c.smtpExpect("250 2.0.0 OK queued as *")
	acked := time.Now()
	type result struct {
		line string
		err  error
		at   time.Time
	}
	results := make(chan result, n)
	for _, s := range sessions {
		go func() {
			s.c.SetReadDeadline(acked.Add(rbWait))
			l, err := s.br.ReadString('\n')
			results <- result{l, err, time.Now()}
		}()
	}
	var slowest time.Duration
	for range n {
		r := <-results
		if r.err != nil || r.line != "* 1 EXISTS\r\n" {
			t.Errorf("IDLE session read %q, %v; want * 1 EXISTS", r.line, r.err)
			continue
		}
		slowest = max(slowest, r.at.Sub(acked))
	}
	t.Logf("%d IDLE sessions told within %v of the 250", n, slowest)
	if slowest > time.Second {
		t.Errorf("the last IDLE session was told %v after the 250; want within a second", slowest)
	}
	for _, s := range sessions {
		s.send("DONE\r\n")
		s.skipTo("i OK Completed")
	}
}

// A 10 MB line without LF to POP3 and to IMAP (ROBUSTNESS.md: "10 MB line
// without LF: bounded memory; close"): POP3 refuses it (RFC 2449 4: 255
// octets) and IMAP says BYE (its 64 KiB line limit), both having read a
// bounded part of it, and the server goes on serving.
func TestRobustMailboxHugeLines(t *testing.T) {
	in, pop3, imap := rbAllInstance(t)
	rbPeakGrowth(t, in, 4<<10, "10 MB POP3 line", func() {
		c := rbDial(t, pop3)
		c.expect("+OK mx.example.org Posthorn POP3 server ready*")
		done := c.rbFlood("USER ", 10<<20)
		c.expect("-ERR Command line too long, closing connection")
		c.expectClosed()
		<-done
	})
	rbPeakGrowth(t, in, 4<<10, "10 MB IMAP line", func() {
		c := rbDial(t, imap)
		c.expect("* OK [CAPABILITY *] mx.example.org Posthorn IMAP ready")
		done := c.rbFlood("a LOGIN ", 10<<20)
		c.expect("* BYE line too long")
		c.expectClosed()
		<-done
	})
	if _, r := rbPOP3Login(t, pop3); r != "+OK Logged in, maildrop has 0 messages (0 octets)" {
		t.Fatalf("POP3 after the long line: %q", r)
	}
	rbIMAP(t, imap)
}
