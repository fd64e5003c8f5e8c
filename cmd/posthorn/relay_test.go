package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
)

// The seed's story, all on loopback: an in-process DNS server serves MX and A
// records for a.test and b.test; two posthorn instances run, a.test on
// 127.0.0.2 and b.test on 127.0.0.3, with the same SMTP port (outbound_port).

// relayPair is two instances and their DNS.
type relayPair struct {
	dns  *dnstest.Server
	a, b *instance
	subA string // a's submission address
}

// commonPort finds a port free on both 127.0.0.2 and 127.0.0.3.
func commonPort(t *testing.T) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Skipf("cannot listen on 127.0.0.2: %v", err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ln2, err := net.Listen("tcp", "127.0.0.3:"+port)
		ln.Close()
		if err == nil {
			ln2.Close()
			return port
		}
	}
	t.Fatal("no common free port")
	return ""
}

// newRelayPair starts a.test (always) and prepares b.test (started when
// startB is set). Extra options apply to a.
func newRelayPair(t *testing.T, startB bool, extraA ...string) *relayPair {
	t.Helper()
	p := &relayPair{dns: dnstest.New(t)}
	p.dns.Set("a.test", dns.TypeMX, dnstest.MX(10, "mx.a.test"))
	p.dns.SetAddrs("mx.a.test", "127.0.0.2")
	p.dns.Set("b.test", dns.TypeMX, dnstest.MX(10, "mx.b.test"))
	p.dns.SetAddrs("mx.b.test", "127.0.0.3")
	port := commonPort(t)
	subPort := freePortOn(t, "127.0.0.2")
	p.subA = subPort
	common := []string{
		"-o", "dns_resolvers=" + p.dns.Addr(),
		"-o", "outbound_port=" + port,
		"-o", "retry_min=300ms", "-o", "retry_max=1s",
	}
	p.a = newInstanceAt(t, "127.0.0.2:"+port, append(append(common,
		"-o", "hostname=mx.a.test", "-o", "domains=a.test",
		"-o", "submission_listen="+subPort), extraA...)...)
	p.b = newInstanceAt(t, "127.0.0.3:"+port, append(common,
		"-o", "hostname=mx.b.test", "-o", "domains=b.test,f.test")...)
	p.a.mustCLI("alice-pw\n", "user", "add", "alice@a.test")
	for _, u := range []string{"jsmith@b.test", "u1@b.test", "u2@b.test"} {
		p.b.mustCLI("pw\n", "user", "add", u)
	}
	p.a.start()
	if startB {
		p.b.start()
	}
	return p
}

func freePortOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const submitScript = `
import smtplib, sys
host, port, user, password, sender = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rcpts = sys.argv[6].split(",")
msg = open(sys.argv[7], "rb").read()
s = smtplib.SMTP(host, port, local_hostname="laptop.example", timeout=30)
s.ehlo("laptop.example")
s.login(user, password)
refused = s.sendmail(sender, rcpts, msg)
s.quit()
print("sent", refused)
`

// submit sends msg through a's submission port with Python's smtplib,
// logging in as alice@a.test.
func (p *relayPair) submit(t *testing.T, rcpts []string, msg string) {
	t.Helper()
	py := requireTool(t, "python3")
	f := filepath.Join(t.TempDir(), "msg.eml")
	os.WriteFile(f, []byte(msg), 0o600)
	host, port, _ := net.SplitHostPort(p.subA)
	out, err := exec.Command(py, "-c", submitScript, host, port, "alice@a.test", "alice-pw", "alice@a.test", strings.Join(rcpts, ","), f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sent {}") {
		t.Fatalf("smtplib submission: %v\n%s\n%s", err, out, p.a.logs())
	}
}

// waitQueue polls `posthorn queue list` on in until cond holds.
func waitQueue(t *testing.T, in *instance, what string, timeout time.Duration, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, _, _ := in.cli("", "queue", "list")
		if cond(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; queue:\n%s\nlog:\n%s", what, out, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func queueEmpty(out string) bool { return strings.Contains(out, "Mail queue is empty") }

const storyMessage = "From: Alice <alice@a.test>\r\nTo: John Smith <jsmith@b.test>\r\nSubject: the seed's story\r\n\r\nHello John.\r\n.dot line\r\n"

func TestRelaySeedStory(t *testing.T) {
	p := newRelayPair(t, true)
	p.submit(t, []string{"jsmith@b.test"}, storyMessage)
	waitQueue(t, p.a, "delivery to b.test", 30*time.Second, queueEmpty)
	p.a.stop()
	p.b.stop()
	msgs := p.b.inbox("jsmith@b.test", "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("jsmith has %d messages, want 1\n%s", len(msgs), p.a.logs())
	}
	raw := string(msgs[0])
	hdr, body, _ := strings.Cut(raw, "\r\n\r\n")
	for _, want := range []string{
		"Return-Path: <alice@a.test>\r\n",
		"Received: from mx.a.test ([127.0.0.2])\r\n\tby mx.b.test (Posthorn) with ESMTPS id ",
		"Received: from laptop.example ([127.0.0.1])\r\n\tby mx.a.test (Posthorn) with ESMTPA id ",
		"\r\nSubject: the seed's story",
		"\r\nDate: ", "\r\nMessage-ID: <",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, raw)
		}
	}
	if strings.Index(raw, "by mx.b.test") > strings.Index(raw, "by mx.a.test") {
		t.Errorf("b's Received line must come first:\n%s", hdr)
	}
	if body != "Hello John.\r\n.dot line\r\n" {
		t.Errorf("body %q", body)
	}
}

// b.test down: the message waits and is retried; b.test up: delivered.
func TestRelayRetryUntilUp(t *testing.T) {
	p := newRelayPair(t, false)
	p.submit(t, []string{"jsmith@b.test"}, storyMessage)
	out := waitQueue(t, p.a, "a deferred attempt", 20*time.Second, func(s string) bool {
		return strings.Contains(s, "jsmith@b.test  queued, 2 attempts")
	})
	if !strings.Contains(out, "4.4.1") && !strings.Contains(out, "refused") {
		t.Errorf("queue does not say why:\n%s", out)
	}
	p.b.start()
	waitQueue(t, p.a, "delivery after b came up", 30*time.Second, queueEmpty)
	p.b.stop()
	if n := len(p.b.inbox("jsmith@b.test", "INBOX")); n != 1 {
		t.Fatalf("jsmith has %d messages, want 1", n)
	}
	p.a.stop()
	if n := len(p.a.inbox("alice@a.test", "INBOX")); n != 0 {
		t.Fatalf("alice got %d DSNs for a message that was delivered", n)
	}
}

// b.test never up: one "delayed" DSN, then one "failed" DSN, both in the
// sender's INBOX, both RFC 3464 multipart/report.
func TestRelayDelayedThenFailed(t *testing.T) {
	// The margins are wide so that a loaded machine still makes its attempts
	// between the warning and the expiry.
	p := newRelayPair(t, false, "-o", "delay_warning=1s", "-o", "max_queue_lifetime=8s")
	p.submit(t, []string{"jsmith@b.test"}, storyMessage)
	waitQueue(t, p.a, "the message to expire", 30*time.Second, queueEmpty)
	p.a.stop()
	msgs := p.a.inbox("alice@a.test", "INBOX")
	if len(msgs) != 2 {
		t.Fatalf("alice has %d messages, want a delayed and a failed DSN\n%s", len(msgs), p.a.logs())
	}
	delayed := parseDSN(t, msgs[0])
	failed := parseDSN(t, msgs[1])
	for _, d := range []*dsn{delayed, failed} {
		if d.perMessage.Get("Reporting-MTA") != "dns; mx.a.test" {
			t.Errorf("Reporting-MTA %q", d.perMessage.Get("Reporting-MTA"))
		}
		if len(d.rcpts) != 1 || d.rcpts[0].Get("Final-Recipient") != "rfc822; jsmith@b.test" {
			t.Fatalf("recipients %v", d.rcpts)
		}
		if !strings.Contains(d.original, "Subject: the seed's story") {
			t.Errorf("DSN lacks the original header")
		}
		if d.header.Get("Return-Path") != "<>" {
			t.Errorf("DSN not from <>: Return-Path %q", d.header.Get("Return-Path"))
		}
	}
	if a := delayed.rcpts[0].Get("Action"); a != "delayed" {
		t.Errorf("first DSN Action %q, want delayed", a)
	}
	if !strings.HasPrefix(delayed.rcpts[0].Get("Status"), "4.") || delayed.rcpts[0].Get("Will-Retry-Until") == "" {
		t.Errorf("delayed DSN fields: %v", delayed.rcpts[0])
	}
	if a := failed.rcpts[0].Get("Action"); a != "failed" {
		t.Errorf("second DSN Action %q, want failed", a)
	}
	if !strings.HasPrefix(failed.rcpts[0].Get("Status"), "5.") {
		t.Errorf("failed DSN Status %q", failed.rcpts[0].Get("Status"))
	}
}

// 5xx for one of three recipients: one DSN naming only that recipient; the
// other two delivered.
func TestRelayOneOfThreeRejected(t *testing.T) {
	p := newRelayPair(t, true)
	p.submit(t, []string{"u1@b.test", "nobody@b.test", "u2@b.test"}, storyMessage)
	waitQueue(t, p.a, "the attempt", 30*time.Second, queueEmpty)
	p.a.stop()
	p.b.stop()
	for _, u := range []string{"u1@b.test", "u2@b.test"} {
		if n := len(p.b.inbox(u, "INBOX")); n != 1 {
			t.Errorf("%s has %d messages, want 1", u, n)
		}
	}
	msgs := p.a.inbox("alice@a.test", "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d DSNs, want 1", len(msgs))
	}
	d := parseDSN(t, msgs[0])
	if len(d.rcpts) != 1 || d.rcpts[0].Get("Final-Recipient") != "rfc822; nobody@b.test" {
		t.Fatalf("DSN recipients: %v", d.rcpts)
	}
	r := d.rcpts[0]
	if r.Get("Action") != "failed" || r.Get("Status") != "5.1.1" ||
		!strings.HasPrefix(r.Get("Diagnostic-Code"), "smtp; 550 5.1.1") || !strings.Contains(r.Get("Remote-MTA"), "mx.b.test") {
		t.Errorf("DSN recipient fields: %v", r)
	}
}

// DNS outcomes, each with its expected result (RFC 5321 5.1, RFC 7505).
func TestRelayDNSOutcomes(t *testing.T) {
	p := newRelayPair(t, true)
	p.dns.Set("nullmx.test", dns.TypeMX, dnstest.MX(0, "."))
	p.dns.SetRcode("servfail.test", dns.RcodeServerFailure)
	p.dns.Set("f.test", dns.TypeMX) // no MX: implicit MX, the A record
	p.dns.SetAddrs("f.test", "127.0.0.3")
	p.dns.Set("loop.test", dns.TypeMX, dnstest.MX(10, "mx.a.test"))
	p.b.mustCLI("", "alias", "add", "info@f.test", "jsmith@b.test")

	p.submit(t, []string{"x@nullmx.test", "x@nxdomain.test", "x@servfail.test", "info@f.test", "x@loop.test"}, storyMessage)
	out := waitQueue(t, p.a, "only the SERVFAIL recipient to remain", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "x@servfail.test  queued") && !strings.Contains(s, "nullmx") &&
			!strings.Contains(s, "nxdomain") && !strings.Contains(s, "info@f.test") && !strings.Contains(s, "loop.test")
	})
	if !strings.Contains(out, "4.4.3") {
		t.Errorf("SERVFAIL deferral does not say 4.4.3:\n%s", out)
	}
	p.a.stop()
	p.b.stop()
	if n := len(p.b.inbox("jsmith@b.test", "INBOX")); n != 1 {
		t.Errorf("implicit MX: jsmith has %d messages, want 1", n)
	}
	msgs := p.a.inbox("alice@a.test", "INBOX")
	status := map[string]string{}
	for _, m := range msgs {
		for _, r := range parseDSN(t, m).rcpts {
			status[r.Get("Final-Recipient")] = r.Get("Action") + " " + r.Get("Status")
		}
	}
	want := map[string]string{
		"rfc822; x@nullmx.test":   "failed 5.1.10",
		"rfc822; x@nxdomain.test": "failed 5.1.2",
		"rfc822; x@loop.test":     "failed 5.4.6",
	}
	for rcpt, w := range want {
		if status[rcpt] != w {
			t.Errorf("%s: DSN says %q, want %q (all: %v)", rcpt, status[rcpt], w, status)
		}
	}
	if _, ok := status["rfc822; x@servfail.test"]; ok {
		t.Errorf("SERVFAIL bounced; it must be deferred")
	}
}

// No open relay: port 25 refuses remote recipients from anyone, submission
// refuses everything before AUTH; nothing is queued.
func TestOpenRelayMatrix(t *testing.T) {
	p := newRelayPair(t, false)
	type step struct{ send, want string }
	try := func(addr string, steps []step) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		readReply := func() string {
			var last string
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("%s: %v", addr, err)
				}
				last = l
				if len(l) < 4 || l[3] != '-' {
					return strings.TrimSpace(last)
				}
			}
		}
		readReply()
		for _, s := range steps {
			fmt.Fprintf(c, "%s\r\n", s.send)
			if got := readReply(); !strings.HasPrefix(got, s.want) {
				t.Errorf("%s: %q: got %q, want %q", addr, s.send, got, s.want)
			}
		}
	}
	mx := []step{{"EHLO relay.example", "250"}, {"MAIL FROM:<spam@remote.example>", "250 2.1.0"}}
	for _, rcpt := range []string{"<b@remote.example>", "<@a.test:b@remote.example>", "<b@b.test>", "<alice@[127.0.0.2]>"} {
		mx = append(mx, step{"RCPT TO:" + rcpt, "554 5.7.1"})
	}
	mx = append(mx, step{"RCPT TO:<b%remote.example@a.test>", "550 5.1.1"}, step{`RCPT TO:<"b@remote.example"@a.test>`, "550 5.1.1"})
	try(p.a.smtp, mx)
	try(p.subA, []step{
		{"EHLO relay.example", "250"},
		{"MAIL FROM:<alice@a.test>", "530 5.7.0"},
		{"RCPT TO:<b@remote.example>", "530 5.7.0"},
		{"DATA", "530 5.7.0"},
	})
	if out, _, _ := p.a.cli("", "queue", "list"); !queueEmpty(out) {
		t.Fatalf("something was queued:\n%s", out)
	}
}

// dsn is a parsed RFC 3464 delivery status notification.
type dsn struct {
	header     mail.Header
	perMessage textproto.MIMEHeader
	rcpts      []textproto.MIMEHeader
	original   string
}

// parseDSN checks that raw is a multipart/report (RFC 6522) with a
// message/delivery-status part (RFC 3464) and returns its fields.
func parseDSN(t *testing.T, raw []byte) *dsn {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN is not a message: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type %q", m.Header.Get("Content-Type"))
	}
	d := &dsn{header: m.Header}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN parts: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		types = append(types, ct)
		body, _ := io.ReadAll(part)
		switch ct {
		case "message/delivery-status":
			tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
			if d.perMessage, err = tr.ReadMIMEHeader(); err != nil && err != io.EOF {
				t.Fatalf("per-message fields: %v", err)
			}
			for {
				h, err := tr.ReadMIMEHeader()
				if len(h) > 0 {
					d.rcpts = append(d.rcpts, h)
				}
				if err != nil {
					break
				}
			}
		case "text/rfc822-headers", "message/rfc822":
			d.original = string(body)
		}
	}
	if len(types) != 3 || types[0] != "text/plain" || types[1] != "message/delivery-status" {
		t.Fatalf("DSN parts %v, want text/plain, message/delivery-status, original", types)
	}
	return d
}

// An alias that forwards to another domain, and a DSN that goes back to a
// remote sender: jsmith@b.test writes to fwd@a.test, a.test forwards to
// nobody@b.test, b.test refuses it, and a.test's DSN (from <>) travels back
// to jsmith's INBOX on b.test.
func TestRelayForwardAndRemoteBounce(t *testing.T) {
	p := newRelayPair(t, true)
	p.a.mustCLI("", "alias", "add", "fwd@a.test", "nobody@b.test")
	if err := sendOne(p.a.smtp, "jsmith@b.test", []string{"fwd@a.test"}, "Subject: forward me\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	waitQueue(t, p.a, "the forward and its DSN", 30*time.Second, queueEmpty)
	p.a.stop()
	p.b.stop()
	msgs := p.b.inbox("jsmith@b.test", "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("jsmith has %d messages, want the DSN\n%s", len(msgs), p.a.logs())
	}
	d := parseDSN(t, msgs[0])
	if d.header.Get("Return-Path") != "<>" || len(d.rcpts) != 1 {
		t.Fatalf("DSN: Return-Path %q, %d recipients", d.header.Get("Return-Path"), len(d.rcpts))
	}
	r := d.rcpts[0]
	if r.Get("Final-Recipient") != "rfc822; nobody@b.test" || strings.ReplaceAll(r.Get("Original-Recipient"), " ", "") != "rfc822;fwd@a.test" || r.Get("Status") != "5.1.1" {
		t.Errorf("DSN recipient fields: %v", r)
	}
	if !strings.Contains(d.original, "Subject: forward me") {
		t.Errorf("DSN lacks the original header")
	}
}
