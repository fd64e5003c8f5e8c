package server

import (
	"context"
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

var (
	dataPrefix  = regexp.MustCompile(`^DATA([0-9]?) `)
	sizeMacroRE = regexp.MustCompile(`\{%([A-Za-z0-9_.-]+)(\+?)\}`)
)

func runTranscript(t *testing.T, file string) {
	opts := testOptions{limits: Limits{}}
	type seed struct {
		folder, file string
		flags        []string
	}
	var seeds []seed
	var ts *testServer
	r := &transcript.Runner{
		ServerName: "imap.example.org",
		Option: func(line string) bool {
			switch {
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
			default:
				return false
			}
			return true
		},
		Start: func() string {
			ts = startTestServer(t, opts)
			for _, s := range seeds {
				if _, err := ts.acct.Append(context.Background(), s.folder, readMessage(t, s.file), s.flags, testDate); err != nil {
					t.Fatalf("seed %s: %v", s.file, err)
				}
			}
			return ts.addr
		},
		Expand: func(s *transcript.Step, text string) string {
			return sizeMacroRE.ReplaceAllStringFunc(text, func(m string) string {
				sm := sizeMacroRE.FindStringSubmatch(m)
				return "{" + strconv.Itoa(len(readMessage(t, sm[1]))) + sm[2] + "}"
			})
		},
		Directive: func(s *transcript.Step) bool {
			switch m := dataPrefix.FindStringSubmatch(s.Line); {
			case m != nil:
				if _, err := s.Conn(m[1]).C.Write(readMessage(t, s.Line[len(m[0]):])); err != nil {
					s.Fatalf("write: %v", err)
				}
			case strings.HasPrefix(s.Line, "DELIVER "):
				if err := ts.store.Deliver(context.Background(), []string{testUser}, readMessage(t, s.Line[8:]), testDate); err != nil {
					s.Fatalf("deliver: %v", err)
				}
			default:
				return false
			}
			return true
		},
	}
	r.Run(t, file)
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
