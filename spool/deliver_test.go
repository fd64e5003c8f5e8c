package spool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
	"posthorn/protocol/smtp"
	"posthorn/spool/dsn"
)

func TestDeliver(t *testing.T) {
	h := newHarness(t, nil)
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	h.waitEmpty()
	txns := h.mx.transactions()
	if len(txns) != 1 {
		t.Fatalf("%d transactions", len(txns))
	}
	if !strings.Contains(txns[0].from, "<alice@posthorn.test>") || len(txns[0].rcpts) != 1 || txns[0].rcpts[0] != "bob@remote.test" {
		t.Errorf("envelope %+v", txns[0])
	}
	if txns[0].data != string(testMessage("A1")) {
		t.Errorf("data %q", txns[0].data)
	}
	logs := h.waitLogs(1)
	if len(logs) != 1 {
		t.Fatalf("%d log lines: %v", len(logs), logs)
	}
	want := map[string]any{"queue_id": "A1", "rcpt": "bob@remote.test", "status": "sent", "dsn": "2.0.0",
		"relay": "mx.remote.test[127.0.0.1]:" + strconv.Itoa(h.mx.port), "reply": "250 2.0.0 queued", "attempts": 1.0}
	for k, v := range want {
		if logs[0][k] != v {
			t.Errorf("log %s = %v, want %v", k, logs[0][k], v)
		}
	}
	if _, ok := logs[0]["delay"]; !ok {
		t.Error("log line without delay")
	}
	if len(h.bounces()) != 0 {
		t.Error("DSN for a delivered message")
	}
}

func TestLocalAddr(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.LocalAddr = netip.MustParseAddr("127.0.0.2") })
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	h.waitEmpty()
	h.mx.mu.Lock()
	defer h.mx.mu.Unlock()
	if len(h.mx.peers) != 1 || h.mx.peers[0] != "127.0.0.2" {
		t.Errorf("connections from %v\n%s", h.mx.peers, h.logs.String())
	}
}

func TestDeferThenDeliver(t *testing.T) {
	h := newHarness(t, nil)
	h.mx.configure(func(b *fakeBehaviour) {
		b.dataReply = func(n int) string {
			if n == 0 {
				return "451 4.3.0 try again later"
			}
			return "250 2.0.0 queued"
		}
	})
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	h.waitEmpty()
	if n := len(h.mx.transactions()); n != 2 {
		t.Fatalf("%d transactions", n)
	}
	logs := h.waitLogs(2)
	if len(logs) != 2 || logs[0]["status"] != "deferred" || logs[0]["dsn"] != "4.3.0" ||
		logs[0]["reply"] != "451 4.3.0 try again later" || logs[1]["status"] != "sent" || logs[1]["attempts"] != 2.0 {
		t.Errorf("logs %v", logs)
	}
	if len(h.bounces()) != 0 {
		t.Error("DSN sent")
	}
}

func TestBounceOneOfThree(t *testing.T) {
	h := newHarness(t, nil)
	h.mx.configure(func(b *fakeBehaviour) {
		b.rcptReply = func(rcpt string) string {
			if rcpt == "bob@remote.test" {
				return "550 5.1.1 <bob@remote.test>: no such user"
			}
			return "250 2.1.5 OK"
		}
	})
	h.enqueue("A1", "alice@posthorn.test", "carol@remote.test", "bob@remote.test", "dave@remote.test")
	h.start()
	h.waitEmpty()
	txns := h.mx.transactions()
	if len(txns) != 1 || strings.Join(txns[0].rcpts, ",") != "carol@remote.test,dave@remote.test" {
		t.Fatalf("transactions %+v", txns)
	}
	b := h.bounces()
	if len(b) != 1 {
		t.Fatalf("%d DSNs", len(b))
	}
	if b[0].to.String() != "alice@posthorn.test" {
		t.Errorf("DSN to %v", b[0].to)
	}
	r := b[0].msg.Report
	if len(r.Recipients) != 1 {
		t.Fatalf("DSN names %d recipients", len(r.Recipients))
	}
	rc := r.Recipients[0]
	if rc.Final != "bob@remote.test" || rc.Action != dsn.Failed || rc.Status != "5.1.1" ||
		rc.RemoteMTA != "mx.remote.test" || rc.DiagnosticType != "smtp" ||
		rc.Diagnostic != "550 5.1.1 <bob@remote.test>: no such user" || rc.LastAttempt.IsZero() {
		t.Errorf("recipient %+v", rc)
	}
	if r.ReportingMTA != "mx.posthorn.test" || r.Arrival.IsZero() || b[0].msg.Header.Get("Subject") != dsn.SubjectFailed {
		t.Errorf("report %+v", r)
	}
	if b[0].msg.ReturnedType != "text/rfc822-headers" || !strings.Contains(string(b[0].msg.Returned), "Subject: test A1") {
		t.Errorf("returned %s %q", b[0].msg.ReturnedType, b[0].msg.Returned)
	}
}

// neverUp points remote.test at a port where nothing listens.
func neverUp(h *harness) {
	h.mx.ln.Close()
}

func TestNeverUpDelayedThenFailed(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.RetryMin, o.RetryMax = 30*time.Millisecond, 60*time.Millisecond
		o.DelayWarning, o.MaxLifetime = 300*time.Millisecond, 900*time.Millisecond
	})
	neverUp(h)
	m := Message{ID: "A1", From: parsePath(t, "alice@posthorn.test"), Mail: smtp.MailParams{Ret: "FULL", EnvID: "E-1"},
		Rcpts: []Rcpt{
			{Path: parsePath(t, "bob@remote.test"), Params: smtp.RcptParams{ORcpt: "rfc822;Bob@Remote.Test"}},
			{Path: parsePath(t, "carol@remote.test")},
			{Path: parsePath(t, "nobody@remote.test"), Params: smtp.RcptParams{Notify: []string{"NEVER"}}},
			{Path: parsePath(t, "fail@remote.test"), Params: smtp.RcptParams{Notify: []string{"FAILURE"}}},
		}}
	if err := h.spool.Enqueue(context.Background(), m, testMessage("A1")); err != nil {
		t.Fatal(err)
	}
	h.start()
	waitFor(t, "two DSNs", func() bool { return len(h.bounces()) >= 2 })
	h.waitEmpty()
	time.Sleep(100 * time.Millisecond)
	b := h.bounces()
	if len(b) != 2 {
		t.Fatalf("%d DSNs", len(b))
	}
	delayed, failed := b[0].msg, b[1].msg
	if delayed.Header.Get("Subject") != dsn.SubjectDelayed || failed.Header.Get("Subject") != dsn.SubjectFailed {
		t.Fatalf("subjects %q, %q", delayed.Header.Get("Subject"), failed.Header.Get("Subject"))
	}
	// The delayed DSN: NOTIFY absent means FAILURE,DELAY; NEVER and
	// FAILURE-only recipients are left out.
	if got := finals(delayed.Report); got != "bob@remote.test,carol@remote.test" {
		t.Errorf("delayed DSN names %s", got)
	}
	for _, rc := range delayed.Report.Recipients {
		if rc.Action != dsn.Delayed || rc.Status != "4.4.1" || rc.WillRetryUntil.IsZero() ||
			rc.DiagnosticType != dsn.DiagnosticLocal || !strings.Contains(rc.Diagnostic, "connection refused by mx.remote.test[127.0.0.1]") ||
			rc.RemoteMTA != "" {
			t.Errorf("delayed recipient %+v", rc)
		}
	}
	if delayed.Report.EnvID != "E-1" || delayed.ReturnedType != "text/rfc822-headers" {
		t.Errorf("delayed DSN EnvID %q, returned %s", delayed.Report.EnvID, delayed.ReturnedType)
	}
	if delayed.Report.Recipients[0].Original != "rfc822;Bob@Remote.Test" {
		t.Errorf("Original-Recipient %q", delayed.Report.Recipients[0].Original)
	}
	// The failed DSN: 5.4.7, RET=FULL returns the message.
	if got := finals(failed.Report); got != "bob@remote.test,carol@remote.test,fail@remote.test" {
		t.Errorf("failed DSN names %s", got)
	}
	for _, rc := range failed.Report.Recipients {
		if rc.Action != dsn.Failed || rc.Status != expiredCode || !strings.Contains(rc.Diagnostic, "connection refused") {
			t.Errorf("failed recipient %+v", rc)
		}
	}
	if failed.ReturnedType != "message/rfc822" || string(failed.Returned) != string(testMessage("A1")) {
		t.Errorf("failed DSN returned %s", failed.ReturnedType)
	}
	if h.mx.connCount() != 0 {
		t.Error("the closed listener accepted")
	}
}

func finals(r dsn.Report) string {
	var s []string
	for _, rc := range r.Recipients {
		s = append(s, rc.Final)
	}
	return strings.Join(s, ",")
}

func TestNullSenderNeverBounced(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.RetryMin, o.RetryMax = 20*time.Millisecond, 40*time.Millisecond
		o.DelayWarning, o.MaxLifetime = 100*time.Millisecond, 300*time.Millisecond
	})
	h.mx.configure(func(b *fakeBehaviour) {
		b.rcptReply = func(rcpt string) string {
			if rcpt == "bob@remote.test" {
				return "550 5.1.1 no such user"
			}
			return "250 OK"
		}
	})
	h.dns.Set("down.test", dns.TypeMX, dnstest.MX(10, "mx.down.test"))
	h.dns.SetAddrs("mx.down.test", "127.0.0.9") // nothing listens there
	h.enqueue("N1", "", "bob@remote.test", "x@down.test")
	h.start()
	h.waitEmpty()
	time.Sleep(50 * time.Millisecond)
	if n := len(h.bounces()); n != 0 {
		t.Fatalf("%d DSNs for a null-sender message", n)
	}
	var bounced int
	for _, l := range h.waitLogs(2) {
		if l["status"] == "bounced" {
			bounced++
			if !strings.Contains(fmt.Sprint(l["note"]), "null sender") {
				t.Errorf("bounce log without note: %v", l)
			}
		}
	}
	if bounced != 2 {
		t.Errorf("%d bounced log lines", bounced)
	}
}

func TestRouteFailures(t *testing.T) {
	h := newHarness(t, nil)
	h.dns.Set("nullmx.test", dns.TypeMX, dnstest.MX(0, "."))
	h.dns.Set("self.test", dns.TypeMX, dnstest.MX(10, "mx.posthorn.test"))
	h.dns.SetAddrs("mx.posthorn.test", "127.0.0.1")
	h.dns.SetRcode("servfail.test", dns.RcodeServerFailure)
	h.enqueue("R1", "alice@posthorn.test", "a@nullmx.test")
	h.enqueue("R2", "alice@posthorn.test", "b@nx.test")
	h.enqueue("R3", "alice@posthorn.test", "c@self.test")
	h.enqueue("R4", "alice@posthorn.test", "d@servfail.test")
	h.start()
	waitFor(t, "three DSNs", func() bool { return len(h.bounces()) >= 3 })
	waitFor(t, "only R4 left", func() bool {
		l, _ := h.spool.List()
		return len(l) == 1 && l[0].ID == "R4" && l[0].Rcpts[0].Attempts >= 1
	})
	want := map[string]string{"a@nullmx.test": "5.1.10", "b@nx.test": "5.1.2", "c@self.test": "5.4.6"}
	for _, b := range h.bounces() {
		rc := b.msg.Report.Recipients[0]
		if len(b.msg.Report.Recipients) != 1 || want[rc.Final] != rc.Status || rc.Action != dsn.Failed || rc.Diagnostic == "" {
			t.Errorf("DSN recipient %+v", rc)
		}
		delete(want, rc.Final)
	}
	if len(want) != 0 {
		t.Errorf("no DSN for %v", want)
	}
	l, _ := h.spool.List()
	if r := l[0].Rcpts[0]; r.Status != StatusQueued || !strings.HasPrefix(r.LastReply, "4.4.3 ") {
		t.Errorf("SERVFAIL recipient %+v", r)
	}
	if n := h.mx.connCount(); n != 0 {
		t.Errorf("%d connections made", n)
	}
}

func TestConnectionReuse(t *testing.T) {
	h := newHarness(t, nil)
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.enqueue("A2", "carol@posthorn.test", "dave@remote.test", "erin@remote.test")
	h.start()
	h.waitEmpty()
	if n := h.mx.connCount(); n != 1 {
		t.Errorf("%d connections for two messages", n)
	}
	txns := h.mx.transactions()
	if len(txns) != 2 || len(txns[1].rcpts) != 2 {
		t.Errorf("transactions %+v", txns)
	}
}

func TestPerDomainLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PerDomain = 2 })
	h.mx.configure(func(b *fakeBehaviour) {
		b.dataDelay = 20 * time.Millisecond
	})
	for i := range 30 {
		h.enqueue(fmt.Sprintf("M%02d", i), "alice@posthorn.test", "bob@remote.test")
	}
	h.start()
	h.waitEmpty()
	h.mx.mu.Lock()
	defer h.mx.mu.Unlock()
	if h.mx.maxActive != 2 || len(h.mx.txns) != 30 {
		t.Errorf("max %d sessions at once, %d messages", h.mx.maxActive, len(h.mx.txns))
	}
}

func TestOpportunisticTLSFallback(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.TLS = &tls.Config{InsecureSkipVerify: true} })
	h.mx.configure(func(b *fakeBehaviour) {
		b.badTLS = true
	})
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	h.waitEmpty()
	if n := h.mx.connCount(); n != 2 {
		t.Errorf("%d connections, want a TLS attempt and a plaintext one", n)
	}
	if len(h.mx.transactions()) != 1 {
		t.Error("not delivered")
	}
}

func TestNextHostAfterFailures(t *testing.T) {
	h := newHarness(t, nil)
	// mx1 has a dead address and a live one that greets 421 first; mx2
	// is the same server, answering the second connection.
	h.dns.Set("remote.test", dns.TypeMX, dnstest.MX(10, "mx1.remote.test"), dnstest.MX(20, "mx2.remote.test"))
	h.dns.SetAddrs("mx1.remote.test", "127.0.0.9", "127.0.0.1")
	h.dns.SetAddrs("mx2.remote.test", "127.0.0.1")
	h.mx.configure(func(b *fakeBehaviour) {
		b.greeting = func(n int) string {
			if n == 0 {
				return "421 4.3.2 too busy"
			}
			return "220 ok"
		}
	})
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	h.waitEmpty()
	logs := h.waitLogs(1)
	if len(logs) != 1 || logs[0]["relay"] != "mx2.remote.test[127.0.0.1]:"+strconv.Itoa(h.mx.port) {
		t.Errorf("logs %v", logs)
	}
}

func TestAddressLiteral(t *testing.T) {
	h := newHarness(t, nil)
	h.enqueue("A1", "alice@posthorn.test", "bob@[127.0.0.1]")
	h.start()
	h.waitEmpty()
	txns := h.mx.transactions()
	if len(txns) != 1 || txns[0].rcpts[0] != "bob@[127.0.0.1]" {
		t.Errorf("transactions %+v", txns)
	}
	if q := h.dns.Queries(); len(q) != 0 {
		t.Errorf("DNS asked %v", q)
	}
}

func TestLostAfterFinalDot(t *testing.T) {
	h := newHarness(t, nil)
	h.mx.configure(func(b *fakeBehaviour) {
		b.dataReply = func(n int) string {
			if n == 0 {
				return "" // hang up before the reply
			}
			return "250 2.0.0 queued"
		}
	})
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	h.waitEmpty()
	logs := h.waitLogs(2)
	if len(logs) != 2 || logs[0]["status"] != "deferred" || logs[0]["dsn"] != "4.4.2" || logs[1]["status"] != "sent" {
		t.Errorf("logs %v", logs)
	}
	if n := len(h.mx.transactions()); n != 2 {
		t.Errorf("%d transactions; a duplicate is expected, a loss is not", n)
	}
}

func TestRelayedDSN(t *testing.T) {
	for _, offersDSN := range []bool{false, true} {
		t.Run("DSN="+strconv.FormatBool(offersDSN), func(t *testing.T) {
			h := newHarness(t, nil)
			if offersDSN {
				h.mx.configure(func(b *fakeBehaviour) {
					b.ext = []string{"DSN"}
				})
			}
			m := Message{ID: "S1", From: parsePath(t, "alice@posthorn.test"), Mail: smtp.MailParams{EnvID: "E"},
				Rcpts: []Rcpt{{Path: parsePath(t, "bob@remote.test"), Params: smtp.RcptParams{Notify: []string{"SUCCESS"}}}}}
			if err := h.spool.Enqueue(context.Background(), m, testMessage("S1")); err != nil {
				t.Fatal(err)
			}
			h.start()
			h.waitEmpty()
			b := h.bounces()
			if offersDSN {
				if len(b) != 0 {
					t.Error("relayed DSN although the next hop does DSN")
				}
				if from := h.mx.transactions()[0].from; !strings.Contains(from, "ENVID=E") {
					t.Errorf("DSN parameters not passed on: %s", from)
				}
				return
			}
			if len(b) != 1 {
				t.Fatalf("%d DSNs", len(b))
			}
			rc := b[0].msg.Report.Recipients[0]
			if rc.Action != dsn.Relayed || rc.Status != "2.0.0" || rc.RemoteMTA != "mx.remote.test" ||
				b[0].msg.Header.Get("Subject") != dsn.SubjectSuccess {
				t.Errorf("relayed DSN %+v", rc)
			}
		})
	}
}

func TestShutdownFinishesInFlight(t *testing.T) {
	h := newHarness(t, nil)
	h.mx.configure(func(b *fakeBehaviour) {
		b.dataDelay = 300 * time.Millisecond
	})
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	waitFor(t, "the message data", func() bool { return len(h.mx.transactions()) == 1 })
	h.stop()
	l, err := h.spool.List()
	if err != nil || len(l) != 0 {
		t.Errorf("after shutdown the queue holds %+v (%v)", l, err)
	}
}

func TestDeadDomainCache(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RetryMin = time.Hour })
	neverUp(h)
	for i := range 5 {
		h.enqueue(fmt.Sprintf("M%d", i), "alice@posthorn.test", "bob@remote.test")
	}
	h.start()
	waitFor(t, "all deferred", func() bool {
		l, _ := h.spool.List()
		for _, e := range l {
			if e.Rcpts[0].Attempts == 0 {
				return false
			}
		}
		return len(l) == 5
	})
	// One connection attempt was made, then the domain was known dead;
	// another message for it is deferred without dialing again.
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(h.mx.port))
	if err != nil {
		t.Skip("port taken meanwhile")
	}
	defer ln.Close()
	h.enqueue("M9", "alice@posthorn.test", "bob@remote.test")
	waitFor(t, "M9 deferred", func() bool {
		e, _, _ := h.spool.Show("M9")
		return len(e.Rcpts) == 1 && e.Rcpts[0].Attempts == 1
	})
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			close(accepted)
		}
	}()
	select {
	case <-accepted:
		t.Error("a dead domain was dialed again within RetryMin")
	case <-time.After(100 * time.Millisecond):
	}
	e, _, _ := h.spool.Show("M9")
	if !strings.Contains(e.Rcpts[0].LastReply, "connection refused") {
		t.Errorf("M9 reply %q", e.Rcpts[0].LastReply)
	}
}

func TestDSNHandOffRetried(t *testing.T) {
	var calls atomic.Int32
	var h *harness
	h = newHarness(t, func(o *Options) {
		good := o.Bounce
		o.Bounce = func(ctx context.Context, to smtp.Path, msg []byte) error {
			if calls.Add(1) == 1 {
				return errors.New("disk full")
			}
			return good(ctx, to, msg)
		}
	})
	h.mx.configure(func(b *fakeBehaviour) { b.rcptReply = func(string) string { return "550 5.1.1 unknown" } })
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	h.waitEmpty()
	if n := calls.Load(); n != 2 {
		t.Errorf("Bounce called %d times", n)
	}
	if b := h.bounces(); len(b) != 1 || b[0].msg.Report.Recipients[0].Final != "bob@remote.test" {
		t.Errorf("DSNs %+v", b)
	}
}

// TestPendingDSNSurvivesRestart: a DSN recorded but not handed off (a crash
// between the two) goes out at the next start.
func TestPendingDSNSurvivesRestart(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Bounce = func(context.Context, smtp.Path, []byte) error { return errors.New("not now") }
	})
	h.mx.configure(func(b *fakeBehaviour) { b.rcptReply = func(string) string { return "550 5.1.1 unknown" } })
	h.enqueue("A1", "alice@posthorn.test", "bob@remote.test")
	h.start()
	waitFor(t, "the bounce recorded", func() bool {
		e, _, _ := h.spool.Show("A1")
		return len(e.Rcpts) == 1 && e.Rcpts[0].Status == StatusBounced
	})
	h.stop()
	h.spool.Close()

	got := make(chan *dsn.Message, 2)
	s, err := Open(h.path, Options{Hostname: "mx.posthorn.test", NoSync: true, Resolver: h.spool.opts.Resolver,
		Bounce: func(_ context.Context, to smtp.Path, msg []byte) error {
			m, err := dsn.Parse(msg)
			if err != nil {
				t.Error(err)
			}
			got <- m
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	select {
	case m := <-got:
		if rc := m.Report.Recipients[0]; rc.Final != "bob@remote.test" || rc.Status != "5.1.1" {
			t.Errorf("DSN recipient %+v", rc)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no DSN after restart")
	}
	waitFor(t, "queue empty", func() bool { l, _ := s.List(); return len(l) == 0 })
	cancel()
	<-done
	if len(got) != 0 {
		t.Error("DSN sent twice")
	}
}

func TestInternationalizedDomain(t *testing.T) {
	h := newHarness(t, nil)
	h.mx.configure(func(b *fakeBehaviour) { b.ext = []string{"SMTPUTF8"} })
	h.dns.Set("xn--bcher-kva.test", dns.TypeMX, dnstest.MX(10, "mx.remote.test"))
	m := Message{ID: "U1", From: parsePath(t, "alice@posthorn.test"), Mail: smtp.MailParams{SMTPUTF8: true},
		Rcpts: []Rcpt{{Path: parsePath(t, "bob@bücher.test")}}}
	if err := h.spool.Enqueue(context.Background(), m, testMessage("U1")); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.waitEmpty()
	if txns := h.mx.transactions(); len(txns) != 1 || txns[0].rcpts[0] != "bob@bücher.test" {
		t.Errorf("transactions %+v", txns)
	}
}
