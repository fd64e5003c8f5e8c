package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMakeBody(t *testing.T) {
	for _, size := range []int{16, 79, 80, 81, 82, 159, 160, 161, 4096, 10000} {
		m := makeBody(size)
		if len(m.raw) != size {
			t.Errorf("size %d: body is %d bytes", size, len(m.raw))
		}
		if !bytes.HasSuffix(m.raw, []byte("\r\n")) {
			t.Errorf("size %d: body does not end in CRLF", size)
		}
		for l := range strings.SplitSeq(strings.TrimSuffix(string(m.raw), "\r\n"), "\r\n") {
			if len(l) > 78 || strings.ContainsAny(l, "\r\n") {
				t.Errorf("size %d: bad line %q", size, l)
			}
		}
		if !bytes.HasPrefix(m.stuffed, []byte("..")) || len(m.stuffed) != size+1 {
			t.Errorf("size %d: stuffed body %d bytes, starts %q", size, len(m.stuffed), m.stuffed[:4])
		}
	}
}

func TestDotStuff(t *testing.T) {
	got := string(dotStuff([]byte(".a\r\nb\r\n.\r\n..c\r\nd")))
	if want := "..a\r\nb\r\n..\r\n...c\r\nd\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReadReply(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("250-a.example Hello\r\n250-PIPELINING\r\n250 HELP\r\n354\r\n"))
	code, lines, err := readReply(r)
	if err != nil || code != 250 || len(lines) != 3 || lines[1] != "PIPELINING" {
		t.Fatalf("got %d %q %v", code, lines, err)
	}
	if code, _, err := readReply(r); err != nil || code != 354 {
		t.Fatalf("bare code: got %d %v", code, err)
	}
	for _, bad := range []string{"250-a\r\n251 b\r\n", "25\r\n", "250x\r\n", "abc ok\r\n", "250-a\r\n"} {
		if _, _, err := readReply(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestRunLoad runs the load generator against a minimal pipelining server
// that checks the dot-stuffed data and fails the 3rd message of a session.
func TestRunLoad(t *testing.T) {
	for _, failAt := range []int{0, 3} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go fakeServer(t, ln, failAt)
		spec := loadSpec{sessions: 3, messages: 20, perIP: 2, body: makeBody(300)}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := runLoad(ctx, ln.Addr().String(), spec)
		cancel()
		ln.Close()
		if failAt == 0 && (err != nil || c.n != 20 || len(c.lat) != 20) {
			t.Errorf("got %d messages, %d latencies, %v", c.n, len(c.lat), err)
		}
		if failAt != 0 && (err == nil || !strings.Contains(err.Error(), "451")) {
			t.Errorf("failing server: got %d messages, err %v", c.n, err)
		}
	}
}

func fakeServer(t *testing.T, ln net.Listener, failAt int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r, w := bufio.NewReader(c), bufio.NewWriter(c)
			w.WriteString("220 fake ESMTP\r\n")
			w.Flush()
			n := 0
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
				case "EHLO":
					w.WriteString("250-fake\r\n250 PIPELINING\r\n")
				case "MAIL", "RCPT":
					w.WriteString("250 ok\r\n")
				case "DATA":
					w.WriteString("354 go\r\n")
					w.Flush()
					var data strings.Builder
					for {
						l, err := r.ReadString('\n')
						if err != nil {
							return
						}
						if l == ".\r\n" {
							break
						}
						data.WriteString(l)
					}
					n++
					if !strings.Contains(data.String(), "\r\n\r\n..") {
						t.Errorf("data not dot-stuffed: %q", data.String()[:200])
					}
					if n == failAt {
						w.WriteString("451 4.3.0 try later\r\n")
					} else {
						w.WriteString("250 2.0.0 queued\r\n")
					}
				case "QUIT":
					w.WriteString("221 bye\r\n")
					w.Flush()
					return
				default:
					w.WriteString("500 what\r\n")
				}
				// Pipelining: answer a group at once, as a real server may.
				if r.Buffered() == 0 {
					w.Flush()
				}
			}
		}()
	}
}
