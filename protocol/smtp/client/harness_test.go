package client

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"posthorn/protocol/smtp"
	"posthorn/protocol/tlsutil"
	"posthorn/protocol/transcript"
)

// Scripts play the server's side of a session, one behaviour each; most
// live in testdata/transcripts/*.txt:
//
//	# comment, usually the RFC section that decides the behaviour
//	S: text      the server sends text + CRLF; consecutive S lines go out in one write
//	S| text      the same with Go escapes (\r \n \xff) and no CRLF added
//	C: pattern   the next line from the client must match (* matches any run);
//	             it must end in CRLF and hold no other CR or LF
//	TLS          the server side of the TLS handshake
//	TLS-FAILS    the server side of a handshake that the client must abort
//	TLS-BREAK    answer the handshake with bytes that are not TLS, and close
//	CLOSE        close the connection
//	HANG         answer nothing more; wait until the client closes
//	EOF          the client must close the connection now
//
// Because S lines are sent only after the C lines before them have arrived,
// a script with several C lines before the replies proves the client did
// not wait for those replies (RFC 2920 pipelining).
//
// Every step has a deadline, so a client that hangs fails the test.

const stepTimeout = 5 * time.Second

// serveScripts accepts one connection per script on a loopback listener and
// plays the scripts in order. It returns the listener's address; the test
// waits for the scripts to finish in its cleanup.
func serveScripts(t *testing.T, scripts ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, script := range scripts {
			conn, err := ln.Accept()
			if err != nil {
				t.Errorf("script %d: accept: %v", i, err)
				return
			}
			playScript(t, conn, script)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(3 * stepTimeout):
			t.Error("scripts did not finish")
		}
		ln.Close()
	})
	return ln.Addr().String()
}

func readScript(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "transcripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func playScript(t *testing.T, conn net.Conn, script string) {
	defer func() { conn.Close() }()
	br := bufio.NewReader(conn)
	var out []byte
	send := func() bool {
		if len(out) == 0 {
			return true
		}
		_, err := conn.Write(out)
		out = nil
		if err != nil {
			t.Errorf("script: write: %v", err)
		}
		return err == nil
	}
	for n, step := range strings.Split(script, "\n") {
		step = strings.TrimRight(step, "\r")
		if step == "" || step[0] == '#' {
			continue
		}
		conn.SetDeadline(time.Now().Add(stepTimeout))
		fail := func(format string, args ...any) {
			t.Errorf("script line %d %q: %s", n+1, step, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.HasPrefix(step, "S: "):
			out = append(out, step[3:]+"\r\n"...)
		case strings.HasPrefix(step, "S| "):
			s, err := strconv.Unquote(`"` + step[3:] + `"`)
			if err != nil {
				fail("%v", err)
				return
			}
			out = append(out, s...)
		case strings.HasPrefix(step, "C: "):
			if !send() {
				return
			}
			line, err := readStrictLine(br)
			if err != nil {
				fail("%v", err)
				return
			}
			if !transcript.Match(step[3:], line) {
				fail("client sent %q", line)
				return
			}
		case step == "TLS":
			if !send() {
				return
			}
			if br.Buffered() > 0 {
				fail("client sent data before the handshake")
				return
			}
			tc := tls.Server(conn, serverTLSConfig(t))
			if err := tc.Handshake(); err != nil {
				fail("%v", err)
				return
			}
			conn, br = tc, bufio.NewReader(tc)
		case step == "TLS-FAILS":
			send()
			if err := tls.Server(conn, serverTLSConfig(t)).Handshake(); err == nil {
				fail("handshake succeeded")
			}
			return
		case step == "TLS-BREAK":
			send()
			conn.Write([]byte("this is not TLS\r\n"))
			return
		case step == "CLOSE":
			send()
			return
		case step == "HANG":
			send()
			conn.SetDeadline(time.Now().Add(2 * stepTimeout))
			if _, err := io.Copy(io.Discard, br); isTimeoutErr(err) {
				fail("client did not close: %v", err)
			}
			return
		case step == "EOF":
			if !send() {
				return
			}
			// A reset counts as closing too.
			if b, err := br.ReadByte(); err == nil || isTimeoutErr(err) {
				fail("client did not close: %q %v", b, err)
			}
			return
		default:
			fail("unknown step")
			return
		}
	}
	send()
}

// readStrictLine reads one line that must end in CRLF and hold no other CR
// or LF (RFC 5321 2.3.8).
func readStrictLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading %q: %w", line, err)
	}
	body, ok := strings.CutSuffix(line, "\r\n")
	if !ok || strings.ContainsAny(body, "\r\n") {
		return "", fmt.Errorf("bare CR or LF in %q", line)
	}
	return body, nil
}

var testCert = sync.OnceValues(func() (*tls.Config, error) {
	return tlsutil.ServerConfig("mx.test")
})

func serverTLSConfig(t *testing.T) *tls.Config {
	cfg, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS12
	return cfg
}

// testConfig is the client config of the tests: short timeouts, and the
// opportunistic TLS config the spool uses (no certificate check).
func testConfig() Config {
	return Config{
		LocalName: "client.test",
		TLS:       &tls.Config{InsecureSkipVerify: true},
		Timeouts: Timeouts{
			Greeting: stepTimeout, Command: stepTimeout, TLS: stepTimeout,
			Mail: stepTimeout, Rcpt: stepTimeout, DataInit: stepTimeout,
			DataBlock: stepTimeout, DataTerm: stepTimeout,
		},
	}
}

// path builds a Path from "local@domain"; "" is the null path.
func path(s string) smtp.Path {
	if s == "" {
		return smtp.Path{Null: true}
	}
	local, domain, _ := strings.Cut(s, "@")
	return smtp.Path{Local: local, Domain: domain}
}

func envelope(from string, rcpts ...string) Envelope {
	env := Envelope{From: path(from)}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, Rcpt{Path: path(r)})
	}
	return env
}

// resultString renders a result as "delivered 250 2.0.0", "permanent 550
// 5.1.1", "temporary 451 4.4.2 local".
func resultString(r RcptResult) string {
	state := "temporary"
	switch {
	case r.Delivered:
		state = "delivered"
	case r.Permanent:
		state = "permanent"
	}
	s := fmt.Sprintf("%s %d %s", state, r.Reply.Code, r.Reply.Enhanced)
	if r.Local {
		s += " local"
	}
	return s
}

func checkResults(t *testing.T, got []RcptResult, want []string) {
	t.Helper()
	var gs []string
	for _, r := range got {
		gs = append(gs, resultString(r))
	}
	if strings.Join(gs, "; ") != strings.Join(want, "; ") {
		t.Errorf("results:\n got  %q\n want %q", gs, want)
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
