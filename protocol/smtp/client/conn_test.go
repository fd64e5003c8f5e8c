package client

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

const ehloTLS = `S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250-SIZE 1000
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
`

// RFC 3207 4.2: after the handshake the client forgets what it knew and
// says EHLO again; the second EHLO's extensions are the ones that count.
func TestStartTLS(t *testing.T) {
	addr := serveScripts(t, ehloTLS+`TLS
C: EHLO client.test
S: 250-mx.test Hello again
S: 250-PIPELINING
S: 250 8BITMIME
C: QUIT
S: 221 Bye
`)
	c, err := Dial(context.Background(), "tcp", addr, testConfig(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS() == nil || !c.TLS().HandshakeComplete {
		t.Error("no TLS state")
	}
	ext := c.Extensions()
	if len(ext) != 2 || ext["PIPELINING"] != "" || ext["8BITMIME"] != "" {
		t.Errorf("extensions %v", ext)
	}
	if _, ok := ext["STARTTLS"]; ok {
		t.Error("STARTTLS kept from before the handshake")
	}
	if got := c.RemoteHello(); got != "mx.test" {
		t.Errorf("RemoteHello %q", got)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

// ROBUSTNESS (Outbound): a failed handshake is a *TLSError; the caller
// dials again with NoTLS and the mail goes out in plaintext.
func TestStartTLSFailureThenPlaintext(t *testing.T) {
	addr := serveScripts(t, ehloTLS+"TLS-BREAK\n", `S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250-SIZE 1000
S: 250 STARTTLS
C: MAIL FROM:<alice@client.test> SIZE=4
S: 250 OK
C: RCPT TO:<bob@mx.test>
S: 250 OK
C: DATA
S: 354 Go ahead
C: hi
C: .
S: 250 OK
C: QUIT
S: 221 Bye
`)
	ctx := context.Background()
	_, err := Dial(ctx, "tcp", addr, testConfig(), DialOptions{})
	var te *TLSError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *TLSError", err)
	}
	c, err := Dial(ctx, "tcp", addr, testConfig(), DialOptions{NoTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS() != nil {
		t.Error("TLS state on a plaintext connection")
	}
	res, err := c.Send(ctx, envelope("alice@client.test", "bob@mx.test"), []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, []string{"delivered 250 "})
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

// The certificate check is the caller's choice: with verification on, the
// self-signed certificate fails the handshake, which is a *TLSError too.
func TestStartTLSVerification(t *testing.T) {
	addr := serveScripts(t, ehloTLS+"TLS-FAILS\n")
	cfg := testConfig()
	cfg.TLS.InsecureSkipVerify = false
	cfg.TLS.ServerName = "mx.test"
	_, err := Dial(context.Background(), "tcp", addr, cfg, DialOptions{})
	var te *TLSError
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &te) || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *TLSError for an unknown authority", err)
	}
}

// RFC 3207 4: after a refused STARTTLS the session goes on in plaintext.
func TestStartTLSRefused(t *testing.T) {
	addr := serveScripts(t, `S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 STARTTLS
C: STARTTLS
S: 454 4.7.0 TLS not available due to temporary reason
C: QUIT
S: 221 Bye
`)
	c, err := Dial(context.Background(), "tcp", addr, testConfig(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS() != nil {
		t.Error("TLS state")
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

// RFC 3207 4.2: anything the server sends after its 220 and before the
// handshake would be read as if it came over TLS (response injection).
func TestStartTLSInjection(t *testing.T) {
	addr := serveScripts(t, `S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 STARTTLS
C: STARTTLS
S: 220 Go ahead
S: 250-mx.test
S: 250 PIPELINING
EOF
`)
	_, err := Dial(context.Background(), "tcp", addr, testConfig(), DialOptions{})
	var te *TLSError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *TLSError", err)
	}
}

// Without a TLS config (or with NoTLS) STARTTLS is never sent.
func TestNoTLSConfig(t *testing.T) {
	addr := serveScripts(t, `S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 STARTTLS
C: QUIT
S: 221 Bye
`)
	cfg := testConfig()
	cfg.TLS = nil
	c, err := Dial(context.Background(), "tcp", addr, cfg, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

func TestDialErrors(t *testing.T) {
	tests := []struct {
		name   string
		script string
		check  func(error) bool
	}{
		// RFC 5321 3.1: a 554 greeting still waits for QUIT.
		{"greeting 554", "S: 554 5.3.2 No service here\nC: QUIT\nS: 221 Bye\nEOF\n", permanentReply("greeting", 554)},
		{"greeting 421", "S: 421 4.3.2 Busy\nEOF\n", temporaryReply("greeting", 421)},
		{"greeting garbage", "S: hello there\nEOF\n", isProtocolError},
		{"greeting 1yz", "S: 120 wait\nEOF\n", isProtocolError},
		{"greeting mixed codes", "S: 220-mx.test\nS: 250 odd\nEOF\n", isProtocolError},
		{"greeting line too long", "S: 220 " + strings.Repeat("x", MaxReplyLine) + "\nEOF\n", isProtocolError},
		{"greeting too many lines", strings.Repeat("S: 220-x\n", MaxReplyLines) + "S: 220 x\nEOF\n", isProtocolError},
		{"EHLO 421", "S: 220 mx.test\nC: EHLO client.test\nS: 421 4.7.0 Go away\nEOF\n", temporaryReply("EHLO", 421)},
		{"EHLO 4yz no HELO", "S: 220 mx.test\nC: EHLO client.test\nS: 451 Later\nEOF\n", temporaryReply("EHLO", 451)},
		{"HELO refused", "S: 220 mx.test\nC: EHLO client.test\nS: 502 No\nC: HELO client.test\nS: 550 No either\nEOF\n", permanentReply("HELO", 550)},
		{"closed before greeting", "CLOSE\n", func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveScripts(t, tt.script)
			c, err := Dial(context.Background(), "tcp", addr, testConfig(), DialOptions{})
			if c != nil || !tt.check(err) {
				t.Errorf("Dial = %v, %v", c, err)
			}
		})
	}
}

func permanentReply(cmd string, code int) func(error) bool {
	return func(err error) bool {
		var re *ReplyError
		return errors.As(err, &re) && re.Command == cmd && re.Reply.Code == code && !re.Temporary()
	}
}

func temporaryReply(cmd string, code int) func(error) bool {
	return func(err error) bool {
		var re *ReplyError
		return errors.As(err, &re) && re.Command == cmd && re.Reply.Code == code && re.Temporary()
	}
}

func isProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

// RFC 5321 4.5.3.2.1: the wait for the greeting is bounded.
func TestGreetingTimeout(t *testing.T) {
	addr := serveScripts(t, "HANG\n")
	cfg := testConfig()
	cfg.Timeouts.Greeting = 100 * time.Millisecond
	start := time.Now()
	_, err := Dial(context.Background(), "tcp", addr, cfg, DialOptions{})
	if !isTimeoutErr(err) {
		t.Errorf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// A command timeout (here for EHLO) fails the setup the same way.
func TestCommandTimeout(t *testing.T) {
	addr := serveScripts(t, "S: 220 mx.test\nC: EHLO client.test\nHANG\n")
	cfg := testConfig()
	cfg.Timeouts.Command = 100 * time.Millisecond
	_, err := Dial(context.Background(), "tcp", addr, cfg, DialOptions{})
	if !isTimeoutErr(err) {
		t.Errorf("err = %v, want a timeout", err)
	}
}

// RFC 5321 4.5.3.2.3: each RCPT reply has its own timer; a server that
// stops answering mid-transaction defers what has no answer.
func TestRcptTimeout(t *testing.T) {
	addr := serveScripts(t, `S: 220 mx.test
C: EHLO client.test
S: 250 mx.test
C: MAIL FROM:<alice@client.test>
S: 250 OK
C: RCPT TO:<nobody@mx.test>
S: 550 5.1.1 No
C: RCPT TO:<bob@mx.test>
HANG
`)
	cfg := testConfig()
	cfg.Timeouts.Rcpt = 100 * time.Millisecond
	c, err := Dial(context.Background(), "tcp", addr, cfg, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Send(context.Background(), envelope("alice@client.test", "nobody@mx.test", "bob@mx.test", "carol@mx.test"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, []string{"permanent 550 5.1.1", "temporary 451 4.4.2 local", "temporary 451 4.4.2 local"})
}

func TestDialCancel(t *testing.T) {
	addr := serveScripts(t, "HANG\n")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, "tcp", addr, testConfig(), DialOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

// RFC 5321 4.1.4: without a name the client says EHLO with an address
// literal.
func TestAddressLiteralName(t *testing.T) {
	addr := serveScripts(t, "S: 220 mx.test\nC: EHLO [127.0.0.1]\nS: 250 mx.test\nC: NOOP\nS: 250 OK\nC: RSET\nS: 250 OK\nC: QUIT\nS: 221 Bye\n")
	cfg := testConfig()
	cfg.LocalName = ""
	c, err := Dial(context.Background(), "tcp", addr, cfg, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Error(err)
	}
	if err := c.Reset(context.Background()); err != nil {
		t.Error(err)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

func TestParseEHLO(t *testing.T) {
	got := parseEHLO([]string{
		"250-mx.test greets you",
		"250-size 35882577",
		"250-AUTH=LOGIN PLAIN",
		"250-AUTH PLAIN",
		"250-8BITMIME",
		"250--BAD",
		"250-X_BAD",
		"250-",
		"250 ENHANCEDSTATUSCODES",
	})
	want := map[string]string{"SIZE": "35882577", "AUTH": "LOGIN PLAIN", "8BITMIME": "", "ENHANCEDSTATUSCODES": ""}
	if len(got) != len(want) {
		t.Errorf("parseEHLO = %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
