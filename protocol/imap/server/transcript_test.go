package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"posthorn/protocol/transcript"
)

// Transcript files (testdata/transcripts/*.txt) hold one behaviour each:
//
//	# comment, usually the RFC section that decides the behaviour
//	@limit Name=value          set a Limits field before the server starts
//	@loopback-is-remote        treat loopback clients as remote (no plaintext LOGIN)
//	@limiter                   slow repeated authentication failures
//	@seed FOLDER file [flags]  append testdata/messages/file to FOLDER first
//	C: text                    send text + CRLF on connection 1
//	C2: text                   the same on connection 2 (C3: ... likewise)
//	C| text                    send text exactly, Go escapes allowed, no CRLF added
//	S: pattern                 read one line; it must match (* matches any run)
//	S...: pattern              read lines until one matches
//	S2: pattern                the same on connection 2
//	DATA file                  send testdata/messages/file (CRLF line ends); DATA2 on connection 2
//	DELIVER file               deliver testdata/messages/file to the INBOX (as the MTA)
//	TLS                        run the client TLS handshake on connection 1
//	CLOSED                     connection 1 must be closed by the server
//	SLEEP duration
//
// In C lines, {%file} becomes {n} with n the size of testdata/messages/file.
// Every step has a deadline, so a server that hangs fails the test.

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts found")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			runTranscript(t, file)
		})
	}
}

// tconn is one client connection of a transcript.
type tconn struct {
	raw net.Conn
	c   net.Conn
	br  *bufio.Reader
}

var (
	connPrefix  = regexp.MustCompile(`^([CS])([0-9]?)(\.\.\.)?([:|]) ?`)
	dataPrefix  = regexp.MustCompile(`^DATA([0-9]?) `)
	sizeMacroRE = regexp.MustCompile(`\{%([A-Za-z0-9_.-]+)(\+?)\}`)
)

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	opts := testOptions{limits: Limits{}}
	type seed struct {
		folder, file string
		flags        []string
	}
	var seeds []seed
	for _, line := range lines {
		switch line = strings.TrimRight(line, "\r"); {
		case strings.HasPrefix(line, "@limit "):
			setLimit(t, &opts.limits, strings.TrimPrefix(line, "@limit "))
		case line == "@loopback-is-remote":
			opts.loopbackIsRemote = true
		case line == "@limiter":
			opts.limiter = true
		case strings.HasPrefix(line, "@seed "):
			f := strings.Fields(line)
			if len(f) < 3 {
				t.Fatalf("bad %q", line)
			}
			seeds = append(seeds, seed{f[1], f[2], f[3:]})
		case strings.HasPrefix(line, "@"):
			t.Fatalf("unknown option %q", line)
		}
	}
	ts := startTestServer(t, opts)
	for _, s := range seeds {
		if _, err := ts.acct.Append(context.Background(), s.folder, readMessage(t, s.file), s.flags, testDate); err != nil {
			t.Fatalf("seed %s: %v", s.file, err)
		}
	}
	conns := map[string]*tconn{}
	conn := func(id string) *tconn {
		if id == "" {
			id = "1"
		}
		if c := conns[id]; c != nil {
			return c
		}
		raw, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		c := &tconn{raw: raw, c: raw, br: bufio.NewReader(raw)}
		conns[id] = c
		return c
	}
	for i, line := range lines {
		where := fmt.Sprintf("%s:%d", file, i+1)
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "@") {
			continue
		}
		if m := connPrefix.FindStringSubmatch(line); m != nil {
			c := conn(m[2])
			c.c.SetDeadline(time.Now().Add(5 * time.Second))
			rest := line[len(m[0]):]
			switch {
			case m[1] == "C" && m[4] == ":":
				rest = sizeMacroRE.ReplaceAllStringFunc(rest, func(s string) string {
					sm := sizeMacroRE.FindStringSubmatch(s)
					return "{" + strconv.Itoa(len(readMessage(t, sm[1]))) + sm[2] + "}"
				})
				if _, err := io.WriteString(c.c, rest+"\r\n"); err != nil {
					t.Fatalf("%s: write: %v", where, err)
				}
			case m[1] == "C":
				raw, err := strconv.Unquote(`"` + rest + `"`)
				if err != nil {
					t.Fatalf("%s: bad escape: %v", where, err)
				}
				if _, err := io.WriteString(c.c, raw); err != nil {
					t.Fatalf("%s: write: %v", where, err)
				}
			case m[3] != "":
				for {
					got, err := c.br.ReadString('\n')
					if err != nil {
						t.Fatalf("%s: want %q, read error %v", where, rest, err)
					}
					if transcript.Match(rest, strings.TrimRight(got, "\r\n")) {
						break
					}
				}
			default:
				got, err := c.br.ReadString('\n')
				if err != nil {
					t.Fatalf("%s: want %q, read error %v (got %q)", where, rest, err, got)
				}
				got = strings.TrimRight(got, "\r\n")
				if !transcript.Match(rest, got) {
					t.Fatalf("%s: want %q\n                got  %q", where, rest, got)
				}
			}
			continue
		}
		c := conn("1")
		if m := dataPrefix.FindStringSubmatch(line); m != nil {
			c = conn(m[1])
			line = "DATA " + line[len(m[0]):]
		}
		c.c.SetDeadline(time.Now().Add(5 * time.Second))
		switch {
		case strings.HasPrefix(line, "DATA "):
			if _, err := c.c.Write(readMessage(t, line[5:])); err != nil {
				t.Fatalf("%s: write: %v", where, err)
			}
		case strings.HasPrefix(line, "DELIVER "):
			if err := ts.store.Deliver(context.Background(), []string{testUser}, readMessage(t, line[8:]), testDate); err != nil {
				t.Fatalf("%s: deliver: %v", where, err)
			}
		case line == "TLS":
			if c.br.Buffered() > 0 {
				t.Fatalf("%s: unread server data before TLS", where)
			}
			tc := tls.Client(c.raw, &tls.Config{InsecureSkipVerify: true, ServerName: "imap.example.org"})
			if err := tc.Handshake(); err != nil {
				t.Fatalf("%s: TLS handshake: %v", where, err)
			}
			c.c, c.br = tc, bufio.NewReader(tc)
		case line == "CLOSED":
			got, err := c.br.ReadString('\n')
			var ne *net.OpError
			if err == nil || (!errors.Is(err, io.EOF) && !errors.As(err, &ne)) {
				t.Fatalf("%s: want connection closed, got %q, %v", where, got, err)
			}
		case strings.HasPrefix(line, "SLEEP "):
			d, err := time.ParseDuration(line[6:])
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			time.Sleep(d)
		default:
			t.Fatalf("%s: unknown transcript line %q", where, line)
		}
	}
}

func setLimit(t *testing.T, l *Limits, kv string) {
	name, value, _ := strings.Cut(kv, "=")
	n, err := strconv.ParseInt(value, 10, 64)
	d, derr := time.ParseDuration(value)
	switch name {
	case "MessageSize":
		l.MessageSize = n
	case "BadCommands":
		l.BadCommands = int(n)
	case "AuthFailures":
		l.AuthFailures = int(n)
	case "PerAccountConnections":
		l.PerAccountConnections = int(n)
	case "PerIPConnections":
		l.PerIPConnections = int(n)
	case "PreAuthTimeout":
		l.PreAuthTimeout, err = d, derr
	case "AutoLogout":
		l.AutoLogout, err = d, derr
	default:
		t.Fatalf("unknown limit %q", name)
	}
	if err != nil {
		t.Fatalf("limit %s: %v", kv, err)
	}
}
