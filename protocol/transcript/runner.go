package transcript

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A Runner replays a transcript file against a server on a loopback
// listener. The directives every protocol shares are:
//
//	# comment
//	@option                  handed to Option before the server starts
//	C: text                  send text + CRLF
//	C| text                  send text exactly, Go escapes allowed (\r \n \x00), no CRLF added
//	S: pattern               read one CRLF-terminated line; it must Match pattern
//	S| text                  read one CRLF-terminated line; it must equal text, Go escapes allowed
//	S...: pattern            read lines until one matches
//	TLS                      run the client TLS handshake on the current connection
//	CLOSED                   the server must have closed the current connection
//	SLEEP duration
//
// C and S may carry a connection number (C2:, S2...:), which addresses that
// connection, dialling it the first time; without one they address the
// current connection, "1" unless a Directive switched it with Use. Every
// step has a deadline, so a server that hangs fails the test.
type Runner struct {
	// ServerName is the TLS server name the client sends.
	ServerName string
	// ImplicitTLS makes every connection TLS from the first byte.
	ImplicitTLS bool
	// Timeout is the deadline of each step; 5 s if zero.
	Timeout time.Duration

	// Option handles one "@" line; it reports false for an unknown option.
	Option func(line string) bool
	// Start starts the server once the options are read and returns its address.
	Start func() string
	// Expand, if set, rewrites the text of C: lines before they are sent.
	Expand func(s *Step, text string) string
	// Directive, if set, handles a line the runner does not know; it reports
	// false for an unknown line. It runs before the shared directives.
	Directive func(s *Step) bool
}

// Conn is one client connection of a transcript.
type Conn struct {
	Raw net.Conn // the TCP connection
	C   net.Conn // Raw, or TLS over it
	R   *bufio.Reader
}

// Step is the transcript line being replayed.
type Step struct {
	T     *testing.T
	Where string // file:line
	Line  string

	r     *Runner
	addr  string
	conns map[string]*Conn
	cur   string
}

var connPrefix = regexp.MustCompile(`^([CS])([0-9]?)(\.\.\.)?([:|]) ?`)

func (r *Runner) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return 5 * time.Second
}

// Run replays file.
func (r *Runner) Run(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		lines[i] = strings.TrimRight(line, "\r")
		if strings.HasPrefix(lines[i], "@") && (r.Option == nil || !r.Option(lines[i])) {
			t.Fatalf("unknown option %q", lines[i])
		}
	}
	s := &Step{T: t, Where: file, r: r, addr: r.Start(), conns: map[string]*Conn{}, cur: "1"}
	s.dial("1")
	for i, line := range lines {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "@") {
			continue
		}
		s.Where, s.Line = fmt.Sprintf("%s:%d", file, i+1), line
		s.step()
	}
}

// Conn returns connection id ("" for the current one), dialling it the
// first time, and gives it the step's deadline.
func (s *Step) Conn(id string) *Conn {
	if id == "" {
		id = s.cur
	}
	c := s.conns[id]
	if c == nil {
		c = s.dial(id)
	}
	c.C.SetDeadline(time.Now().Add(s.r.timeout()))
	return c
}

// Use makes connection id the current one, dialling it the first time.
func (s *Step) Use(id string) {
	s.Conn(id)
	s.cur = id
}

// Fatalf fails the test at this step.
func (s *Step) Fatalf(format string, args ...any) {
	s.T.Helper()
	s.T.Fatalf("%s: %s", s.Where, fmt.Sprintf(format, args...))
}

// Unquote decodes Go escapes in text, failing the step if they are bad.
func (s *Step) Unquote(text string) string {
	s.T.Helper()
	u, err := strconv.Unquote(`"` + text + `"`)
	if err != nil {
		s.Fatalf("bad escape: %v", err)
	}
	return u
}

func (s *Step) dial(id string) *Conn {
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		s.Fatalf("dial: %v", err)
	}
	s.T.Cleanup(func() { raw.Close() })
	c := &Conn{Raw: raw, C: raw}
	if s.r.ImplicitTLS {
		c.C = tls.Client(raw, s.tlsConfig())
	}
	c.R = bufio.NewReader(c.C)
	s.conns[id] = c
	return c
}

func (s *Step) tlsConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: s.r.ServerName}
}

func (s *Step) step() {
	s.T.Helper()
	line := s.Line
	s.Conn("")
	if s.r.Directive != nil && s.r.Directive(s) {
		return
	}
	if m := connPrefix.FindStringSubmatch(line); m != nil {
		c := s.Conn(m[2])
		rest := line[len(m[0]):]
		switch {
		case m[1] == "C" && m[3] != "":
			s.Fatalf("unknown transcript line %q", line)
		case m[1] == "C" && m[4] == ":":
			if s.r.Expand != nil {
				rest = s.r.Expand(s, rest)
			}
			s.write(c, rest+"\r\n")
		case m[1] == "C":
			s.write(c, s.Unquote(rest))
		case m[3] != "":
			for {
				got, err := c.R.ReadString('\n')
				if err != nil {
					s.Fatalf("want %q, read error %v", rest, err)
				}
				if Match(rest, strings.TrimRight(got, "\r\n")) {
					break
				}
			}
		default:
			got, err := c.R.ReadString('\n')
			if err != nil {
				s.Fatalf("want %q, read error %v (got %q)", rest, err, got)
			}
			if !strings.HasSuffix(got, "\r\n") {
				s.Fatalf("line %q does not end in CRLF", got)
			}
			got = strings.TrimSuffix(got, "\r\n")
			if m[4] == "|" {
				if want := s.Unquote(rest); got != want {
					s.Fatalf("want %q, got %q", want, got)
				}
			} else if !Match(rest, got) {
				s.Fatalf("want %q\n                got  %q", rest, got)
			}
		}
		return
	}
	c := s.Conn("")
	switch {
	case line == "TLS":
		if c.R.Buffered() > 0 {
			s.Fatalf("unread server data before TLS")
		}
		tc := tls.Client(c.Raw, s.tlsConfig())
		tc.SetDeadline(time.Now().Add(s.r.timeout()))
		if err := tc.Handshake(); err != nil {
			s.Fatalf("TLS handshake: %v", err)
		}
		c.C, c.R = tc, bufio.NewReader(tc)
	case line == "CLOSED":
		got, err := c.R.ReadString('\n')
		var ne *net.OpError
		if err == nil || (!errors.Is(err, io.EOF) && !errors.As(err, &ne)) {
			s.Fatalf("want connection closed, got %q, %v", got, err)
		}
	case strings.HasPrefix(line, "SLEEP "):
		d, err := time.ParseDuration(line[6:])
		if err != nil {
			s.Fatalf("%v", err)
		}
		time.Sleep(d)
	default:
		s.Fatalf("unknown transcript line %q", line)
	}
}

func (s *Step) write(c *Conn, text string) {
	s.T.Helper()
	if _, err := io.WriteString(c.C, text); err != nil {
		s.Fatalf("write: %v", err)
	}
}
