package main

import (
	"bufio"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
	"posthorn/protocol/transcript"
)

// The "Outbound" rows of ROBUSTNESS.md that need a remote server which
// misbehaves on purpose, against the binary's queue: rbFakeMX is a
// scripted SMTP server on 127.0.0.3, the MX of remote.test. What it does
// depends on the recipient's local part:
//
//	tempfail  451 4.3.0 to the first RCPT, 250 afterwards
//	always4xx 451 4.3.0 to every RCPT
//	hangup    the first time, closes the connection after the final dot
//	          without a reply; 250 afterwards
//	reject    550 5.1.1
//	anything else: 250
//
// Every connection is offered STARTTLS, and a STARTTLS breaks the
// handshake (the server answers 220, then sends plain text and closes).
type rbFakeMX struct {
	t  *testing.T
	ln net.Listener

	mu       sync.Mutex
	starttls int
	rcpts    map[string]int // RCPT commands per recipient
	dots     map[string]int // final dots per first recipient
	attempts map[string][]time.Time
	txns     []rbTxn // transactions answered 250 after the final dot
}

type rbTxn struct{ from, rcpt, data string }

func rbNewFakeMX(t *testing.T, addr string) *rbFakeMX {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	f := &rbFakeMX{t: t, ln: ln, rcpts: map[string]int{}, dots: map[string]int{}, attempts: map[string][]time.Time{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.session(c)
		}
	}()
	return f
}

func (f *rbFakeMX) session(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	reply := func(s string) { c.Write([]byte(s + "\r\n")) }
	reply("220 fake.remote.test ESMTP")
	var from string
	var rcpts []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(line[:min(4, len(line))])
		switch {
		case verb == "EHLO":
			reply("250-fake.remote.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS")
		case verb == "HELO" || verb == "NOOP":
			reply("250 OK")
		case line == "STARTTLS":
			f.mu.Lock()
			f.starttls++
			f.mu.Unlock()
			reply("220 2.0.0 go ahead")
			reply("this is not a TLS handshake")
			return
		case verb == "MAIL":
			from, rcpts = strings.TrimPrefix(line, "MAIL FROM:"), nil
			if i := strings.IndexByte(from, ' '); i >= 0 {
				from = from[:i]
			}
			reply("250 2.1.0 OK")
		case verb == "RCPT":
			rcpt := strings.TrimSuffix(strings.TrimPrefix(line, "RCPT TO:<"), ">")
			if i := strings.Index(rcpt, "> "); i >= 0 {
				rcpt = rcpt[:i]
			}
			local, _, _ := strings.Cut(rcpt, "@")
			f.mu.Lock()
			f.rcpts[rcpt]++
			n := f.rcpts[rcpt]
			f.attempts[rcpt] = append(f.attempts[rcpt], time.Now())
			f.mu.Unlock()
			switch {
			case local == "always4xx" || local == "tempfail" && n == 1:
				reply("451 4.3.0 try again later")
			case local == "reject":
				reply("550 5.1.1 no such user here")
			default:
				rcpts = append(rcpts, rcpt)
				reply("250 2.1.5 OK")
			}
		case verb == "DATA":
			if len(rcpts) == 0 {
				reply("554 5.5.1 no valid recipients")
				continue
			}
			reply("354 go ahead")
			var data strings.Builder
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			local, _, _ := strings.Cut(rcpts[0], "@")
			f.mu.Lock()
			f.dots[rcpts[0]]++
			hangup := local == "hangup" && f.dots[rcpts[0]] == 1
			if !hangup {
				for _, r := range rcpts {
					f.txns = append(f.txns, rbTxn{from: from, rcpt: r, data: data.String()})
				}
			}
			f.mu.Unlock()
			if hangup {
				return // RFC 5321 6.1: no reply means not delivered
			}
			reply("250 2.0.0 queued")
		case verb == "RSET":
			from, rcpts = "", nil
			reply("250 2.0.0 OK")
		case verb == "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("500 5.5.1 unknown command")
		}
	}
}

// delivered returns the transactions for rcpt.
func (f *rbFakeMX) delivered(rcpt string) []rbTxn {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rbTxn
	for _, tx := range f.txns {
		if tx.rcpt == rcpt {
			out = append(out, tx)
		}
	}
	return out
}

func (f *rbFakeMX) attemptTimes(rcpt string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts[rcpt]...)
}

// Outbound against a remote that defers, hangs up, refuses and cannot do
// TLS. ROBUSTNESS.md: "remote 4xx: deferred, exponential backoff";
// "disconnect after the final dot, before the reply: defer and retry (a
// duplicate is acceptable)"; "failure for a MAIL FROM:<> message: no DSN
// (RFC 5321 6.1); our DSNs are sent from <>"; "remote STARTTLS handshake
// fails: opportunistic: retry without TLS"; a DNS timeout: defer.
// (Connection refused, the
// delayed and failed DSNs, one of three rejected and the DNS outcomes are
// in relay_test.go.)
func TestRobustOutboundRemoteFailures(t *testing.T) {
	t.Parallel()
	mxAddr := freePortOn(t, "127.0.0.3")
	f := rbNewFakeMX(t, mxAddr)
	_, port, _ := net.SplitHostPort(mxAddr)
	d := dnstest.New(t)
	d.Set("remote.test", dns.TypeMX, dnstest.MX(10, "mx.remote.test"))
	d.SetAddrs("mx.remote.test", "127.0.0.3")
	d.Drop("dnstimeout.test") // never answered: the resolver times out
	in := newInstance(t, "-o", "dns_resolvers="+d.Addr(), "-o", "outbound_port="+port,
		"-o", "retry_min=500ms", "-o", "retry_max=2s")
	in.mustCLI(rbPass+"\n", "user", "add", "sender@example.org")
	for _, local := range []string{"tempfail", "always4xx", "hangup", "reject"} {
		in.mustCLI("", "alias", "add", local+"@example.org", local+"@remote.test")
	}
	in.mustCLI("", "alias", "add", "dnstimeout@example.org", "x@dnstimeout.test")
	in.start()

	send := func(from, rcpt string) {
		t.Helper()
		if r := rbSendFrom(t, in.smtp, from, rcpt, "Subject: to "+rcpt+"\r\n\r\nbody\r\n"); !transcript.Match("250 2.0.0 OK queued as *", r) {
			t.Fatalf("to %s from <%s>: %q", rcpt, from, r)
		}
	}
	send("sender@example.org", "tempfail@example.org")
	send("sender@example.org", "hangup@example.org")
	send("sender@example.org", "always4xx@example.org")
	send("", "reject@example.org")                   // a bounce would go nowhere: none
	send("sender@example.org", "reject@example.org") // the control: a DSN from <>
	send("sender@example.org", "dnstimeout@example.org")

	rbWaitQueue(t, in, "all but always4xx to leave the queue, always4xx tried 4 times", 30*time.Second, func(out string) bool {
		return strings.Count(out, "@remote.test  queued") == 1 && strings.Contains(out, "always4xx@remote.test  queued, 4 attempts")
	})
	// A DNS timeout defers (4.4.3), it does not bounce.
	rbWaitQueue(t, in, "the DNS timeout to defer", 60*time.Second, func(out string) bool {
		return regexp.MustCompile(`x@dnstimeout\.test  queued, [1-9]\d* attempts,.*\n +\(4\.4\.3 `).MatchString(out)
	})

	// 451 to RCPT: deferred, then delivered once.
	if got := f.delivered("tempfail@remote.test"); len(got) != 1 {
		t.Errorf("tempfail: %d deliveries, want 1", len(got))
	}
	// No reply to the final dot: deferred and sent again (a duplicate, not
	// a loss).
	if got := f.delivered("hangup@remote.test"); len(got) != 1 {
		t.Errorf("hangup: %d deliveries acknowledged, want 1 (after the dropped one)", len(got))
	}
	// Exponential backoff (RFC 5321 4.5.4.1): retry_min 500ms doubling to
	// retry_max 2s, each ±10%.
	times := f.attemptTimes("always4xx@remote.test")
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	t.Logf("always4xx: gaps between attempts %v", gaps)
	for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		if i < len(gaps) && (gaps[i] < want*85/100 || gaps[i] > want*3/2) {
			t.Errorf("gap %d between attempts %v, want about %v", i+1, gaps[i], want)
		}
	}
	// Opportunistic TLS: every connection was offered STARTTLS and every
	// handshake failed; the mail still went, in the clear.
	f.mu.Lock()
	starttls := f.starttls
	f.mu.Unlock()
	if starttls == 0 {
		t.Error("the queue never tried STARTTLS")
	}
	// The reject logs: the <> message bounced without a DSN.
	nullBounce := regexp.MustCompile(`msg=delivery queue_id=\S+ rcpt=reject@remote\.test .*status=bounced .*note="null sender: no DSN \(RFC 5321 6\.1\)"`)
	if !nullBounce.MatchString(in.logs()) {
		t.Errorf("no log of the null-sender bounce without DSN:\n%s", in.logs())
	}
	in.stop()
	msgs := in.inbox("sender@example.org", "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("sender has %d messages, want the one DSN for its own rejected message", len(msgs))
	}
	dsn := parseDSN(t, msgs[0])
	if dsn.header.Get("Return-Path") != "<>" || len(dsn.rcpts) != 1 ||
		dsn.rcpts[0].Get("Final-Recipient") != "rfc822; reject@remote.test" || dsn.rcpts[0].Get("Status") != "5.1.1" {
		t.Errorf("DSN: Return-Path %q, recipients %v", dsn.header.Get("Return-Path"), dsn.rcpts)
	}
}
