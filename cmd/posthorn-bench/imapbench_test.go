package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLiteralSuffix(t *testing.T) {
	for _, c := range []struct {
		line string
		n    int64
		ok   bool
	}{
		{"* 1 FETCH (BODY[] {42}", 42, true},
		{"* 1 FETCH (BODY[] {0}", 0, true},
		{"a1 APPEND INBOX {12+}", 12, true},
		{"* OK [ALERT] {x}", 0, false},
		{"* OK done", 0, false},
		{"{}", 0, false},
		{"* 1 FETCH (BODY[] {-1}", 0, false},
		{"* 1 FETCH (BODY[] {99999999999999}", 0, false},
	} {
		n, ok := literalSuffix([]byte(c.line))
		if n != c.n || ok != c.ok {
			t.Errorf("literalSuffix(%q) = %d, %v; want %d, %v", c.line, n, ok, c.n, c.ok)
		}
	}
}

func TestUntaggedParsers(t *testing.T) {
	if n, kind, ok := untaggedNum([]byte("* 17 EXISTS")); !ok || n != 17 || kind != "EXISTS" {
		t.Errorf("EXISTS: %d %q %v", n, kind, ok)
	}
	if n, kind, ok := untaggedNum([]byte("* 3 fetch (FLAGS (\\Seen))")); !ok || n != 3 || kind != "FETCH" {
		t.Errorf("FETCH: %d %q %v", n, kind, ok)
	}
	if _, _, ok := untaggedNum([]byte("* OK [UIDNEXT 5] next")); ok {
		t.Error("OK parsed as a numbered response")
	}
	if nums, ok := parseSearch([]byte("* SEARCH 2 84 882")); !ok || !slices.Equal(nums, []int{2, 84, 882}) {
		t.Errorf("SEARCH: %v %v", nums, ok)
	}
	if nums, ok := parseSearch([]byte("* SEARCH")); !ok || len(nums) != 0 {
		t.Errorf("empty SEARCH: %v %v", nums, ok)
	}
	if nums, ok := parseSearch([]byte("* SEARCH 1 2 (MODSEQ 917162500)")); !ok || !slices.Equal(nums, []int{1, 2}) {
		t.Errorf("SEARCH with MODSEQ: %v %v", nums, ok)
	}
	if _, ok := parseSearch([]byte("* SEARCHRES")); ok {
		t.Error("SEARCHRES parsed as SEARCH")
	}
	if f, ok := fetchFlags([]byte(`* 1 FETCH (UID 4 FLAGS (\Seen \Deleted))`)); !ok || !slices.Equal(f, []string{`\Seen`, `\Deleted`}) {
		t.Errorf("FLAGS: %v %v", f, ok)
	}
	if f, ok := fetchFlags([]byte(`* 1 FETCH (FLAGS ())`)); !ok || len(f) != 0 {
		t.Errorf("empty FLAGS: %v %v", f, ok)
	}
}

// fakeIMAPServer runs script on the server end of a pipe: it writes the
// greeting, then for each expected client line (prefix match, the tag
// being "aN") writes the reply.
func fakeIMAPServer(t *testing.T, greeting string, script []string) (*imapConn, <-chan error) {
	t.Helper()
	cs, ss := net.Pipe()
	done := make(chan error, 1)
	go func() {
		defer ss.Close()
		r := bufio.NewReader(ss)
		if _, err := io.WriteString(ss, greeting); err != nil {
			done <- err
			return
		}
		for i := 0; i+1 < len(script); i += 2 {
			line, err := r.ReadString('\n')
			if err != nil {
				done <- err
				return
			}
			if !strings.HasPrefix(line, script[i]) {
				done <- errors.New("got " + line + ", want " + script[i])
				return
			}
			if _, err := io.WriteString(ss, script[i+1]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	c := newIMAPConn(cs, 5*time.Second)
	resp, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	c.noteCaps(resp.line)
	return c, done
}

func TestIMAPConnLiteralsAndCommands(t *testing.T) {
	body := "Subject: x\r\n\r\nhello\r\n"
	c, done := fakeIMAPServer(t, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n", []string{
		"a1 LOGIN \"u\\\"q\" \"pw\"", "a1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+] done\r\n",
		"a2 SELECT \"INBOX\"", "* 3 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\na2 OK [READ-WRITE] done\r\n",
		"a3 FETCH 1:2 (BODY.PEEK[] FLAGS)", "* 1 FETCH (BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + " FLAGS (\\Seen))\r\n" +
			"* 2 FETCH (FLAGS () BODY[] {0}\r\n)\r\na3 OK done\r\n",
		"a4 SEARCH UNSEEN", "* SEARCH 2 3\r\na4 OK done\r\n",
		"a5 STORE 1 +FLAGS.SILENT (\\Deleted)", "a5 NO [CANNOT] read-only\r\n",
		"a6 EXPUNGE", "* 3 EXPUNGE\r\na6 OK done\r\n",
		"a7 LOGOUT", "* BYE bye\r\na7 OK done\r\n",
	})
	if err := c.login(`u"q`, "pw"); err != nil {
		t.Fatal(err)
	}
	if !c.caps["IMAP4REV2"] || !c.caps["LITERAL+"] {
		t.Errorf("caps %v", c.caps)
	}
	if n, err := c.selectBox("INBOX"); err != nil || n != 3 {
		t.Fatalf("SELECT: %d, %v", n, err)
	}
	var got []string
	err := c.fetch("FETCH 1:2 (BODY.PEEK[] FLAGS)", func(seq int, r *imapResp) error {
		if len(r.lits) != 1 {
			t.Errorf("message %d: %d literals", seq, len(r.lits))
		}
		got = append(got, string(r.lits[0]))
		if f, ok := fetchFlags(r.line); !ok || (seq == 1 && !slices.Equal(f, []string{`\Seen`})) {
			t.Errorf("message %d: flags %v %v in %q", seq, f, ok, r.line)
		}
		return nil
	})
	if err != nil || !slices.Equal(got, []string{body, ""}) {
		t.Fatalf("FETCH: %q, %v", got, err)
	}
	if nums, err := c.search("UNSEEN"); err != nil || !slices.Equal(nums, []int{2, 3}) {
		t.Fatalf("SEARCH: %v, %v", nums, err)
	}
	if _, err := c.store("1", `+FLAGS.SILENT (\Deleted)`); err == nil || !strings.Contains(err.Error(), "STORE") {
		t.Fatalf("NO not reported as an error of STORE: %v", err)
	}
	if n, err := c.expunge(); err != nil || n != 1 {
		t.Fatalf("EXPUNGE: %d, %v", n, err)
	}
	if err := c.logout(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.ok != 6 {
		t.Errorf("%d OKs counted, want 6", c.ok)
	}
}

func TestIMAPAppendLiterals(t *testing.T) {
	msg := []byte("Subject: a\r\n\r\nbody\r\n")
	// LITERAL+: the command line and the message in one go.
	c, done := fakeIMAPServer(t, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n", []string{
		"a1 APPEND \"INBOX\" {20+}", "",
		"Subject: a", "",
		"", "",
		"body", "a1 OK [APPENDUID 1 7] done\r\n",
	})
	if err := c.appendMsg("INBOX", "", msg); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Without LITERAL+: wait for the continuation request.
	c, done = fakeIMAPServer(t, "* OK hi\r\n", []string{
		"a1 APPEND \"INBOX\" (\\Seen) {20}\r\n", "+ go ahead\r\n",
		"Subject: a", "",
		"", "",
		"body", "a1 OK done\r\n",
	})
	if err := c.appendMsg("INBOX", `\Seen`, msg); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A NO instead of the continuation request.
	c, done = fakeIMAPServer(t, "* OK hi\r\n", []string{
		"a1 APPEND", "a1 NO [TOOBIG] too big\r\n",
	})
	if err := c.appendMsg("INBOX", "", msg); err == nil {
		t.Fatal("APPEND refused, no error")
	}
	<-done
}

func TestIMAPGreetings(t *testing.T) {
	for _, c := range []struct {
		greeting string
		refused  bool
	}{
		{"* OK [CAPABILITY IMAP4rev1] ready\r\n", false},
		{"* BYE Too many connections, try again later\r\n", true},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			s, err := ln.Accept()
			if err == nil {
				io.WriteString(s, c.greeting)
				time.Sleep(100 * time.Millisecond)
				s.Close()
			}
		}()
		conn, err := dialIMAP(context.Background(), ln.Addr().String(), nil, 5*time.Second)
		ln.Close()
		if c.refused {
			if !errors.Is(err, errRefused) {
				t.Errorf("%q: %v, want errRefused", c.greeting, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.greeting, err)
		}
		if !conn.caps["IMAP4REV1"] {
			t.Errorf("caps %v", conn.caps)
		}
		conn.Close()
	}
}

func TestIMAPMessageNeedle(t *testing.T) {
	body := makeBody(200).raw
	plain, needle := imapMessage(3, body, false), imapMessage(3, body, true)
	if strings.Contains(strings.ToLower(string(plain)), "needle") || !strings.Contains(string(needle), "needle") {
		t.Error("needle placement")
	}
	if !strings.Contains(string(plain), "Subject: bench x3 message 3\r\n") {
		t.Errorf("subject: %q", plain[:120])
	}
}
