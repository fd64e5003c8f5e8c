package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The message every interop client sends: 8-bit text, a line that needs
// dot-stuffing, a long header folded over two lines.
const interopMessage = "From: Sender <sender@remote.example>\r\n" +
	"To: Demo <demo@example.org>\r\n" +
	"Subject: interop test\r\n" +
	"X-Folded: first part\r\n" +
	"\tsecond part\r\n" +
	"Message-ID: <interop-1@remote.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Grüße from an interop client.\r\n" +
	".a line that starts with a dot\r\n" +
	"..two dots\r\n" +
	"last line\r\n"

// traceRE matches what posthorn puts before the client's bytes: the
// Return-Path of final delivery and one Received line (RFC 5321 4.4).
func traceRE(from, rcpt string, tls bool) *regexp.Regexp {
	with := "ESMTP"
	tlsPart := ""
	if tls {
		with = "ESMTPS"
		tlsPart = `\r\n\t\(TLS1\.[23] [A-Z0-9_]+\)`
	}
	return regexp.MustCompile(`^Return-Path: <` + regexp.QuoteMeta(from) + `>\r\n` +
		`Received: from [^ ]+ \(\[127\.0\.0\.1\]\)\r\n` +
		`\tby mx\.example\.org \(Posthorn\) with ` + with + ` id [0-9A-V]{13}` + tlsPart + `\r\n` +
		`\tfor <` + regexp.QuoteMeta(rcpt) + `>;\r\n` +
		`\t[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n`)
}

// checkDelivered asserts that the INBOX holds exactly the client's bytes
// behind our trace header.
func checkDelivered(t *testing.T, raw []byte, from, rcpt string, tls bool) {
	t.Helper()
	re := traceRE(from, rcpt, tls)
	loc := re.FindIndex(raw)
	if loc == nil {
		t.Fatalf("trace header not as expected:\n%q", raw)
	}
	if got := string(raw[loc[1]:]); got != interopMessage {
		t.Fatalf("stored body differs from what the client sent:\n got %q\nwant %q", got, interopMessage)
	}
}

const smtplibScript = `
import smtplib, ssl, sys
host, port, starttls, msgfile = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
msg = open(msgfile, "rb").read()
s = smtplib.SMTP(host, port, local_hostname="client.example", timeout=30)
if starttls:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.example")
refused = s.sendmail("sender@remote.example", ["demo@example.org"], msg)
assert not refused, refused
s.quit()
print("sent")
`

func TestInteropPythonSmtplib(t *testing.T) {
	py := requireTool(t, "python3")
	in := newInstance(t)
	in.mustCLI("secret\n", "user", "add", "demo@example.org")
	in.start()
	msgFile := filepath.Join(t.TempDir(), "msg.eml")
	os.WriteFile(msgFile, []byte(interopMessage), 0o600)
	host, port, _ := strings.Cut(in.smtp, ":")
	for _, starttls := range []string{"0", "1"} {
		out, err := exec.Command(py, "-c", smtplibScript, host, port, starttls, msgFile).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "sent") {
			t.Fatalf("smtplib (starttls=%s): %v\n%s\n%s", starttls, err, out, in.logs())
		}
	}
	in.stop()
	msgs := in.inbox("demo@example.org", "INBOX")
	if len(msgs) != 2 {
		t.Fatalf("INBOX has %d messages, want 2", len(msgs))
	}
	checkDelivered(t, msgs[0], "sender@remote.example", "demo@example.org", false)
	checkDelivered(t, msgs[1], "sender@remote.example", "demo@example.org", true)
}

func TestInteropSwaks(t *testing.T) {
	swaks := requireTool(t, "swaks")
	in := newInstance(t)
	in.mustCLI("secret\n", "user", "add", "demo@example.org")
	in.start()
	// swaks ends the data with "\r\n.\r\n" whether or not the file ends in
	// a line break, so the file leaves out the last CRLF.
	msgFile := filepath.Join(t.TempDir(), "msg.eml")
	os.WriteFile(msgFile, []byte(strings.TrimSuffix(interopMessage, "\r\n")), 0o600)
	for _, tls := range []bool{false, true} {
		args := []string{"--server", in.smtp, "--helo", "client.example",
			"--from", "sender@remote.example", "--to", "demo@example.org",
			"--data", "@" + msgFile, "--timeout", "30"}
		if tls {
			args = append(args, "--tls")
		}
		out, err := exec.Command(swaks, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "250 2.0.0 OK queued as") {
			t.Fatalf("swaks (tls=%v): %v\n%s\n%s", tls, err, out, in.logs())
		}
	}
	in.stop()
	msgs := in.inbox("demo@example.org", "INBOX")
	if len(msgs) != 2 {
		t.Fatalf("INBOX has %d messages, want 2", len(msgs))
	}
	checkDelivered(t, msgs[0], "sender@remote.example", "demo@example.org", false)
	checkDelivered(t, msgs[1], "sender@remote.example", "demo@example.org", true)
}
