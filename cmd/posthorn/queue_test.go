package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// posthorn queue list|show|flush|delete, with the server running (through
// the control socket) and stopped (on the spool file directly).
func TestQueueTools(t *testing.T) {
	p := newRelayPair(t, false)
	p.submit(t, []string{"jsmith@b.test", "u1@b.test"}, storyMessage)
	out := waitQueue(t, p.a, "a deferred attempt", 20*time.Second, func(s string) bool {
		return strings.Contains(s, "jsmith@b.test  queued, 1 attempts")
	})
	// As mailq: ID, age, size, sender; then each recipient with its state,
	// attempts, next attempt and the last reply.
	m := regexp.MustCompile(`(?m)^([0-9A-V]{13}) +(\d+s|\d+m\d+s) +(\d+)  alice@a\.test$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("queue list has no line for the message:\n%s", out)
	}
	id := m[1]
	for _, want := range []string{"jsmith@b.test  queued, 1 attempts, next ", "u1@b.test  queued", "(in ", "4.4.1", "-- 1 KiB in 1 messages, 2 recipients."} {
		if !strings.Contains(out, want) {
			t.Errorf("queue list lacks %q:\n%s", want, out)
		}
	}
	show := p.a.mustCLI("", "queue", "show", id)
	if !strings.Contains(show, "Subject: the seed's story") || !strings.Contains(show, id) {
		t.Errorf("queue show:\n%s", show)
	}
	if _, errOut, code := p.a.cli("", "queue", "show", "NOSUCHID00000"); code == 0 || !strings.Contains(errOut, "no message NOSUCHID00000") {
		t.Errorf("queue show of an unknown ID: code %d, %s", code, errOut)
	}

	// flush makes the deferred recipients due at once: the next attempt
	// follows within a moment, long before retry_max.
	p.a.mustCLI("", "queue", "flush")
	waitQueue(t, p.a, "the flushed attempt", 10*time.Second, func(s string) bool {
		return !strings.Contains(s, "1 attempts") && strings.Contains(s, "jsmith@b.test  queued")
	})

	// With the server stopped, the same commands open the spool themselves.
	p.a.stop()
	out = p.a.mustCLI("", "queue", "list")
	if !strings.Contains(out, id) {
		t.Fatalf("queue list with the server stopped:\n%s", out)
	}
	if got := p.a.mustCLI("", "queue", "delete", id); got != "deleted "+id+"\n" {
		t.Fatalf("queue delete: %q", got)
	}
	if out := p.a.mustCLI("", "queue", "list"); !queueEmpty(out) {
		t.Fatalf("queue not empty after delete:\n%s", out)
	}
}

// posthorn sendmail: recipients as arguments or with -t (Bcc removed), LF
// line ends turned into CRLF, a lone "." ending input unless -i, missing
// From, Date and Message-ID added; with and without the server running.
func TestSendmail(t *testing.T) {
	in := newInstance(t)
	in.mustCLI("pw\n", "user", "add", "demo@example.org")
	in.mustCLI("pw\n", "user", "add", "hidden@example.org")

	// Server stopped: delivered at once, directly in the store.
	out := in.mustCLI("Subject: cron job\n\nline one\n.\nnot part of it\n", "sendmail", "-f", "cron@example.org", "demo@example.org")
	if !strings.HasPrefix(out, "queued as ") {
		t.Fatalf("sendmail output %q", out)
	}
	in.start()
	in.mustCLI("To: demo@example.org\nBcc: hidden@example.org\nSubject: with -t\n\n.leading dot\n.\nstill here\n", "sendmail", "-t", "-i", "-f", "script@example.org")
	in.stop()

	demo := in.inbox("demo@example.org", "INBOX")
	hidden := in.inbox("hidden@example.org", "INBOX")
	if len(demo) != 2 || len(hidden) != 1 {
		t.Fatalf("demo has %d, hidden has %d messages; want 2 and 1", len(demo), len(hidden))
	}
	first := string(demo[0])
	for _, want := range []string{
		"Return-Path: <cron@example.org>\r\n",
		"Received: by mx.example.org (Posthorn sendmail) id ",
		"\r\nFrom: <cron@example.org>\r\n", "\r\nDate: ", "\r\nMessage-ID: <",
		"\r\nSubject: cron job\r\n\r\nline one\r\n",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first message lacks %q:\n%q", want, first)
		}
	}
	if strings.Contains(first, "not part of it") {
		t.Errorf("a lone dot did not end the input:\n%q", first)
	}
	second := string(demo[1])
	if !strings.HasSuffix(second, "\r\n\r\n.leading dot\r\n.\r\nstill here\r\n") || strings.Contains(second, "Bcc:") {
		t.Errorf("-t -i message:\n%q", second)
	}
	if string(hidden[0]) != second {
		t.Errorf("Bcc recipient got a different message")
	}
	if _, errOut, code := in.cli("x\n", "sendmail", "-f", "a@example.org"); code != 2 || !strings.Contains(errOut, "no recipients") {
		t.Errorf("sendmail without recipients: code %d, %q", code, errOut)
	}
}
