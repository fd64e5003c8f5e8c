package main

import (
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
	"posthorn/protocol/transcript"
	"posthorn/spool"
)

// ROBUSTNESS.md rows for the queue against the binary: a mail loop between
// two servers, dot-stuffing on relay, a restart with a large deferred
// queue, and the admin commands on a large queue. Helpers are in
// robustness_test.go.

// Two servers forwarding to each other (ROBUSTNESS.md: "101 Received
// headers; two servers forwarding to each other: 554 5.4.6; the loop
// stops"): loop@a.test is an alias for loop@b.test and the other way
// round. Each hop adds a Received line (RFC 5321 4.4); the receiving
// server refuses the message once it has more than 100 (RFC 5321 6.3), the
// server that sent it bounces it, and the sender gets one DSN with 5.4.6.
func TestRobustMailLoop(t *testing.T) {
	p := newRelayPair(t, true)
	p.a.mustCLI("", "alias", "add", "loop@a.test", "loop@b.test")
	p.b.mustCLI("", "alias", "add", "loop@b.test", "loop@a.test")
	if r := rbSendFrom(t, p.a.smtp, "jsmith@b.test", "loop@a.test", "Subject: round and round\r\n\r\nbody\r\n"); !transcript.Match("250 2.0.0 OK queued as *", r) {
		t.Fatal(r)
	}
	// The loop has ended when the DSN is in jsmith's INBOX on b.test;
	// then neither queue holds anything.
	delivered := regexp.MustCompile(`msg=delivered queue_id=[0-9A-V]+ accounts=\[jsmith@b\.test\]`)
	deadline := time.Now().Add(60 * time.Second)
	for !delivered.MatchString(p.b.logs()) {
		if time.Now().After(deadline) {
			t.Fatalf("no DSN delivered to jsmith@b.test\n%s", p.a.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitQueue(t, p.a, "a's queue to empty", 10*time.Second, queueEmpty)
	waitQueue(t, p.b, "b's queue to empty", 10*time.Second, queueEmpty)
	p.a.stop()
	p.b.stop()
	msgs := p.b.inbox("jsmith@b.test", "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("jsmith has %d messages, want one DSN", len(msgs))
	}
	d := parseDSN(t, msgs[0])
	if len(d.rcpts) != 1 || d.rcpts[0].Get("Status") != "5.4.6" || d.rcpts[0].Get("Action") != "failed" ||
		!strings.HasPrefix(d.rcpts[0].Get("Diagnostic-Code"), "smtp; 554 5.4.6 Too many hops (101 Received lines)") {
		t.Fatalf("DSN recipient fields: %v", d.rcpts)
	}
	if got := strings.Count(d.original, "Received: "); got < 100 {
		t.Errorf("the returned header has %d Received lines", got)
	}
}

// rbSendFrom sends one message from a given sender.
func rbSendFrom(t *testing.T, addr, from, rcpt, msg string) string {
	t.Helper()
	c := rbSMTP(t, addr)
	c.send("MAIL FROM:<" + from + ">\r\n")
	c.smtpExpect("250 2.1.0 Sender OK")
	c.send("RCPT TO:<" + rcpt + ">\r\n")
	c.smtpExpect("250 2.1.5 Recipient OK")
	c.send("DATA\r\n")
	c.smtpExpect("354 *")
	c.send(msg + ".\r\n")
	r := c.smtpReply()
	c.send("QUIT\r\n")
	return r
}

// Relaying lines that need care (ROBUSTNESS.md: "relaying lines ".", "..",
// bare CR: correct dot-stuffing; never emit bare CR or LF"). sendmail -i on
// a.test takes a message with such lines for jsmith@b.test; a.test's queue
// sends it (RFC 5321 4.5.2: a leading "." doubled; 2.3.8: CR and LF only
// as CRLF) and b.test, which refuses bare CR or LF with 554 5.5.2, stores
// each line as it was meant.
func TestRobustRelayDotStuffing(t *testing.T) {
	p := newRelayPair(t, true)
	in := "Subject: dots\nTo: jsmith@b.test\n\n.\n..\n...x\n. \nbare\rCR\nCRLF\r\nlast line without end"
	p.a.mustCLI(in, "sendmail", "-i", "-f", "alice@a.test", "jsmith@b.test")
	waitQueue(t, p.a, "delivery to b.test", 30*time.Second, queueEmpty)
	p.a.stop()
	p.b.stop()
	msgs := p.b.inbox("jsmith@b.test", "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("jsmith has %d messages, want 1\n%s", len(msgs), p.a.logs())
	}
	_, body, _ := strings.Cut(string(msgs[0]), "\r\n\r\n")
	if want := ".\r\n..\r\n...x\r\n. \r\nbare\r\nCR\r\nCRLF\r\nlast line without end\r\n"; body != want {
		t.Fatalf("relayed body:\n got %q\nwant %q", body, want)
	}
	if n := len(p.a.inbox("alice@a.test", "INBOX")); n != 0 {
		t.Fatalf("alice got %d DSNs", n)
	}
}

// rbQueueSnapshot reads the spool of a stopped instance: each queued
// message's one recipient by queue ID.
func rbQueueSnapshot(t *testing.T, in *instance) map[string]spool.RcptEntry {
	t.Helper()
	sp, err := spool.Open(filepath.Join(in.dir, "spool.db"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	entries, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]spool.RcptEntry, len(entries))
	for _, e := range entries {
		if len(e.Rcpts) != 1 {
			t.Fatalf("message %s has %d queued recipients", e.ID, len(e.Rcpts))
		}
		out[e.ID] = e.Rcpts[0]
	}
	return out
}

// rbSeedQueue sends n messages over SMTP to an alias that forwards to
// x@down.test, from 16 sessions at once.
func rbSeedQueue(t *testing.T, in *instance, n int) {
	t.Helper()
	const senders = 16
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			c, err := smtp.Dial(in.smtp)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := c.Hello("seed.example"); err != nil {
				errs <- err
				return
			}
			for i := g; i < n; i += senders {
				err := c.Mail("sender@example.org")
				if err == nil {
					err = c.Rcpt("fwd@example.org")
				}
				if err == nil {
					var w io.WriteCloser
					if w, err = c.Data(); err == nil {
						fmt.Fprintf(w, "Subject: deferred %d\r\n\r\nbody\r\n", i)
						err = w.Close()
					}
				}
				if err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
			c.Quit()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// rbWaitQueue polls `posthorn queue list` until cond holds; a failing
// command fails the test at once.
func rbWaitQueue(t *testing.T, in *instance, what string, timeout time.Duration, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, errOut, code := in.cli("", "queue", "list")
		if code != 0 {
			t.Fatalf("queue list: exit %d: %s", code, errOut)
		}
		if cond(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; queue list ends:\n%s", what, out[max(0, len(out)-500):])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rbCountAttempts counts the recipients `queue list` shows with the given
// number of attempts.
func rbCountAttempts(out string, attempts int) int {
	return strings.Count(out, fmt.Sprintf("x@down.test  queued, %d attempts,", attempts))
}

// Restart with a large deferred queue (ROBUSTNESS.md: "restart with 10k
// deferred messages: all kept with their retry times; retries spread
// out"). The MX of down.test refuses connections, so each message is
// deferred after one attempt with its own retry time (retry_min 1h, ±10%
// jitter, RFC 5321 4.5.4.1). A restart keeps every message and every
// retry time exactly. Then, all made due at once (queue flush while
// stopped: as if the server had been down past every retry time), a
// restart does not retry them all at once: the first 100 go at once and
// the rest follow 50 ms apart (spool.spreadOverdue).
// POSTHORN_DEFERRED sets the count (default 10000).
func TestRobustRestartWithDeferredQueue(t *testing.T) {
	n := 10000
	if s := os.Getenv("POSTHORN_DEFERRED"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if n < 200 {
		t.Fatalf("POSTHORN_DEFERRED=%d: at least 200, so that the spread shows", n)
	}
	d := dnstest.New(t)
	d.Set("down.test", dns.TypeMX, dnstest.MX(10, "mx.down.test"))
	d.SetAddrs("mx.down.test", "127.0.0.5")
	_, deadPort, _ := net.SplitHostPort(freePortOn(t, "127.0.0.5"))
	in := newInstance(t, "-o", "dns_resolvers="+d.Addr(), "-o", "outbound_port="+deadPort,
		"-o", "retry_min=1h", "-o", "retry_max=2h")
	in.mustCLI(rbPass+"\n", "user", "add", "sender@example.org")
	in.mustCLI("", "alias", "add", "fwd@example.org", "x@down.test")
	in.start()

	start := time.Now()
	rbSeedQueue(t, in, n)
	seeded := time.Since(start)
	rbWaitQueue(t, in, "every message deferred once", 120*time.Second, func(out string) bool {
		return rbCountAttempts(out, 1) == n
	})
	t.Logf("%d messages submitted in %v, all deferred after %v", n, seeded, time.Since(start))
	in.stop()
	before := rbQueueSnapshot(t, in)
	if len(before) != n {
		t.Fatalf("%d messages queued, want %d", len(before), n)
	}
	for id, r := range before {
		if r.Attempts != 1 || !strings.Contains(r.LastReply, "4.4.1") || r.NextAttempt.Sub(r.LastAttempt) < 50*time.Minute {
			t.Fatalf("%s: %d attempts, last %v, next %v, reply %q", id, r.Attempts, r.LastAttempt, r.NextAttempt, r.LastReply)
		}
	}

	// A restart keeps every message with its retry time.
	in.start()
	out := in.mustCLI("", "queue", "list")
	if want := fmt.Sprintf(" in %d messages, %d recipients.\n", n, n); !strings.HasSuffix(out, want) {
		t.Fatalf("queue list after the restart ends %q, want %q", out[max(0, len(out)-80):], want)
	}
	in.stop()
	after := rbQueueSnapshot(t, in)
	if len(after) != n {
		t.Fatalf("after a restart: %d messages, want %d", len(after), n)
	}
	for id, r := range before {
		a, ok := after[id]
		if !ok || a.Attempts != r.Attempts || !a.NextAttempt.Equal(r.NextAttempt) || !a.LastAttempt.Equal(r.LastAttempt) {
			t.Fatalf("%s changed across the restart: %+v, was %+v", id, a, r)
		}
	}

	// All overdue at the next start: retries spread out.
	if got := in.mustCLI("", "queue", "flush"); got != "every deferred recipient is due now\n" {
		t.Fatalf("queue flush: %q", got)
	}
	restarted := time.Now()
	in.start()
	rbWaitQueue(t, in, "the first burst of retries", 30*time.Second, func(out string) bool {
		return rbCountAttempts(out, 2) >= 100
	})
	in.stop()
	ran := time.Since(restarted)
	spread := rbQueueSnapshot(t, in)
	if len(spread) != n {
		t.Fatalf("after the flushed restart: %d messages, want %d", len(spread), n)
	}
	var retried int
	var waiting []time.Time
	for _, r := range spread {
		switch r.Attempts {
		case 2:
			retried++
		case 1:
			waiting = append(waiting, r.NextAttempt)
		default:
			t.Fatalf("a recipient with %d attempts", r.Attempts)
		}
	}
	slices.SortFunc(waiting, func(a, b time.Time) int { return a.Compare(b) })
	width := waiting[len(waiting)-1].Sub(waiting[0])
	t.Logf("restart after flush: %d retried in %v, %d waiting, their times spread over %v", retried, ran, len(waiting), width)
	// 100 at once, then one per 50 ms: at most that many in the time the
	// server ran (with room for a slow start), and the rest still spread
	// 50 ms apart.
	if limit := 100 + int(ran/(50*time.Millisecond)) + 10; retried < 100 || retried > limit {
		t.Errorf("%d retried in %v; want 100 at once and then one per 50 ms (at most %d)", retried, ran, limit)
	}
	if min := time.Duration(len(waiting)-1) * 45 * time.Millisecond; width < min {
		t.Errorf("%d waiting retries spread over %v; want about 50 ms apart (at least %v)", len(waiting), width, min)
	}
}

// The admin commands work the same whether or not the server runs
// (DESIGN.md), whatever the size of what they carry: with the server
// running, sendmail hands it an 8-bit (Latin-1, not UTF-8) message and one
// over 1 MiB, both stored byte for byte, and `queue show` prints a queued
// 2 MB message whole. (Regression: the control socket carried these as
// JSON strings, which replaced non-UTF-8 octets with U+FFFD, and capped
// requests and answers at 1 MiB, so that `queue list` failed with some
// 7000 messages queued.)
func TestRobustAdminSocketCarriesBytes(t *testing.T) {
	in := rbInstance(t)
	in.mustCLI("", "alias", "add", "fwd@example.org", "x@down.test")
	latin1 := "Subject: caf\xe9\n\nCaf\xe9 cr\xe8me, 8-bit and not UTF-8.\n"
	big := "Subject: big\n\n" + strings.Repeat(strings.Repeat("x", 76)+"\n", 26000) // 2 MB
	for _, m := range []string{latin1, big} {
		in.mustCLI(m, "sendmail", "-i", "-f", "sender@example.org", rbUser)
	}
	out := in.mustCLI(big, "sendmail", "-i", "-f", "sender@example.org", "fwd@example.org")
	id := strings.TrimSpace(strings.TrimPrefix(out, "queued as "))
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	shown := in.mustCLI("", "queue", "show", id)
	_, queued, ok := strings.Cut(shown, " octets) ---\n")
	if !ok || !strings.HasSuffix(queued, crlf(big)) {
		t.Fatalf("queue show %s with the server running: %d octets, not the message", id, len(shown))
	}
	if !strings.HasSuffix(in.mustCLI("", "queue", "list"), "in 1 messages, 1 recipients.\n") {
		t.Fatal("queue list does not show the message")
	}
	in.stop()
	msgs := in.inbox(rbUser, "INBOX")
	if len(msgs) != 2 || !strings.HasSuffix(string(msgs[0]), crlf(latin1)) || !strings.HasSuffix(string(msgs[1]), crlf(big)) {
		t.Fatalf("INBOX: %d messages, not the ones given to sendmail byte for byte", len(msgs))
	}
}
