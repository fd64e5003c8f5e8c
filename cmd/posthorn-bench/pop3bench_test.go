package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadBody(t *testing.T) {
	long := strings.Repeat("x", 100) + "\r\n"
	for _, tc := range []struct {
		wire, body string
		bufSize    int
		bad        bool
	}{
		{wire: ".\r\n", body: ""},
		{wire: "a\r\n..b\r\n..\r\n.\r\nnext", body: "a\r\n.b\r\n.\r\n"},
		{wire: "...\r\n.\r\n", body: "..\r\n"},
		// lines longer than the reader's buffer, a CRLF split between reads
		{wire: "." + long + long + ".\r\n", body: long + long, bufSize: 16},
		{wire: strings.Repeat("y", 15) + "\r\n.\r\n", body: strings.Repeat("y", 15) + "\r\n", bufSize: 16},
		{wire: "a\nb\r\n.\r\n", bad: true},
		{wire: "a\r\n.\n", bad: true},
		{wire: "a\r\n", bad: true}, // no termination line
	} {
		r := bufio.NewReaderSize(strings.NewReader(tc.wire), max(16, tc.bufSize))
		if tc.bufSize == 0 {
			r = bufio.NewReader(strings.NewReader(tc.wire))
		}
		m, err := readBody(r)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.wire)
			}
			continue
		}
		if err != nil || m != sumOf([]byte(tc.body)) {
			t.Errorf("%q: got %+v %v, want %+v", tc.wire, m, err, sumOf([]byte(tc.body)))
		}
	}
}

func TestParseStat(t *testing.T) {
	if n, s, err := parseStat("2 320"); n != 2 || s != 320 || err != nil {
		t.Errorf("got %d %d %v", n, s, err)
	}
	for _, bad := range []string{"", "2", "x 3", "2 -1"} {
		if _, _, err := parseStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestRunPOP3Load runs the POP3 client against a minimal server holding
// messages with lines that need byte-stuffing and a line longer than the
// client's buffer; a server that alters one octet must fail the load.
func TestRunPOP3Load(t *testing.T) {
	msgs := [][]byte{
		[]byte("Subject: one\r\n\r\n.starts with a dot\r\n.\r\nend\r\n"),
		[]byte("Subject: two\r\n\r\n" + strings.Repeat("z", 70<<10) + "\r\n"),
		[]byte("Subject: three\r\n\r\nbody\r\n"),
	}
	var want []msgSum
	for _, m := range msgs {
		want = append(want, sumOf(m))
	}
	sortSums(want)
	for _, corrupt := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go fakePOP3(ln, msgs, corrupt)
		accts := []pop3Account{{user: "a", pass: "pw", want: want}, {user: "b", pass: "pw", want: want}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := runPOP3Load(ctx, ln.Addr().String(), accts, 2)
		cancel()
		ln.Close()
		if !corrupt && (err != nil || r.msgs != 6 || r.bytes != 2*(want[0].size+want[1].size+want[2].size) || len(r.login) != 2) {
			t.Errorf("got %+v, %v", r, err)
		}
		if corrupt && (err == nil || !strings.Contains(err.Error(), "differ")) {
			t.Errorf("corrupting server: got %v", err)
		}
	}
}

// fakePOP3 serves msgs to any USER with password "pw".
func fakePOP3(ln net.Listener, msgs [][]byte, corrupt bool) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			w := bufio.NewWriter(c)
			w.WriteString("+OK ready\r\n")
			w.Flush()
			total := 0
			for _, m := range msgs {
				total += len(m)
			}
			for {
				l, err := readLine(r)
				if err != nil {
					return
				}
				verb, arg, _ := strings.Cut(l, " ")
				switch verb {
				case "USER":
					w.WriteString("+OK\r\n")
				case "PASS":
					if arg != "pw" {
						w.WriteString("-ERR [AUTH] no\r\n")
					} else {
						w.WriteString("+OK logged in\r\n")
					}
				case "STAT":
					fmt.Fprintf(w, "+OK %d %d\r\n", len(msgs), total)
				case "LIST":
					w.WriteString("+OK scan listing follows\r\n")
					for i, m := range msgs {
						fmt.Fprintf(w, "%d %d\r\n", i+1, len(m))
					}
					w.WriteString(".\r\n")
				case "RETR":
					n, err := strconv.Atoi(arg)
					if err != nil || n < 1 || n > len(msgs) {
						w.WriteString("-ERR no such message\r\n")
						break
					}
					m := bytes.Clone(msgs[n-1])
					if corrupt && n == 3 {
						m[len(m)-3]++
					}
					fmt.Fprintf(w, "+OK %d octets\r\n", len(m))
					w.Write(dotStuff(m))
					w.WriteString(".\r\n")
				case "QUIT":
					w.WriteString("+OK bye\r\n")
					w.Flush()
					return
				default:
					w.WriteString("-ERR unknown\r\n")
				}
				if r.Buffered() == 0 {
					w.Flush()
				}
			}
		}()
	}
}

func TestDovecotConf(t *testing.T) {
	l := newDovecotLayout("/d")
	cf := dovecotConf(l, "1110", 2)
	for _, want := range []string{"\nprotocols = pop3\n", "\nlisten = 127.0.0.1\n", "\nssl = no\n",
		"\ndisable_plaintext_auth = no\n", "\nbase_dir = /d/run\n", "\nmail_location = maildir:/d/mail/%n/Maildir\n",
		"    address = 127.0.0.1\n    port = 1110\n", "\n  service_count = 0\n", "args = scheme=PLAIN /d/users\n"} {
		if !strings.Contains(cf, want) {
			t.Errorf("dovecot.conf lacks %q", strings.TrimSpace(want))
		}
	}
	if got, want := l.passwdLine("pop1@bench.example", "pw"), "pop1@bench.example:{PLAIN}pw:5000:5000::/d/mail/pop1\n"; got != want {
		t.Errorf("passwd line %q, want %q", got, want)
	}
}
