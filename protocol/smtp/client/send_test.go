package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"posthorn/protocol/smtp"
)

const hello = "Subject: hi\r\n\r\nHello\r\n" // 22 octets

// sendStep is one Send in a transcript test.
type sendStep struct {
	env     Envelope
	msg     string
	want    []string // per recipient, as resultString renders it
	wantErr bool     // Send fails with no results
}

func TestTranscripts(t *testing.T) {
	dsn := envelope("alice@client.test", "bob@mx.test", "carol@mx.test")
	dsn.Mail.Ret, dsn.Mail.EnvID = "HDRS", "QQ+1=2"
	dsn.Rcpts[0].Params = smtp.RcptParams{Notify: []string{"SUCCESS", "FAILURE"}, ORcpt: "rfc822;bob+x@mx.test"}
	dsn.Rcpts[1].Params = smtp.RcptParams{Notify: []string{"NEVER"}}
	declared8bit := envelope("alice@client.test", "bob@mx.test")
	declared8bit.Mail.Body = "8BITMIME"
	utf8Msg := envelope("alice@client.test", "bob@mx.test")
	utf8Msg.Mail.SMTPUTF8 = true

	tests := []struct {
		name   string // testdata/transcripts/<name>.txt
		sends  []sendStep
		quit   bool
		broken bool // Err() is set after the sends
	}{
		{name: "pipelining_mixed", quit: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "bob@mx.test", "nobody@mx.test", "carol@mx.test"),
			msg:  hello,
			want: []string{"delivered 250 2.0.0", "permanent 550 5.1.1", "delivered 250 2.0.0"},
		}}},
		{name: "lockstep_mixed", quit: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "bob@mx.test", "nobody@mx.test", "carol@mx.test"),
			msg:  hello,
			want: []string{"delivered 250 ", "temporary 450 ", "delivered 250 "},
		}}},
		{name: "helo_fallback", quit: true, sends: []sendStep{{
			env:  envelope("", "bob@old.test"),
			msg:  hello,
			want: []string{"delivered 250 "},
		}}},
		{name: "multiline_replies", quit: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "nobody@mx.test", "bob@mx.test"),
			msg:  hello,
			want: []string{"permanent 550 5.1.1", "delivered 250 2.0.0"},
		}}},
		{name: "no_rcpt_pipelined_354", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "nobody@mx.test"), msg: hello, want: []string{"permanent 550 "}},
			{env: envelope("alice@client.test", "bob@mx.test"), msg: hello, want: []string{"delivered 250 "}},
		}},
		{name: "no_rcpt_pipelined_503", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "nobody@mx.test", "busy@mx.test"), msg: hello,
				want: []string{"permanent 550 5.1.1", "temporary 451 4.3.0"}},
			{env: envelope("alice@client.test", "bob@mx.test"), msg: "x", want: []string{"delivered 250 "}},
		}},
		{name: "no_rcpt_lockstep", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "nobody@mx.test"), msg: hello, want: []string{"permanent 550 5.1.1"}},
			{env: envelope("alice@client.test", "bob@mx.test"), msg: "x\r\n", want: []string{"delivered 250 "}},
		}},
		{name: "mail_refused_pipelined", quit: true, sends: []sendStep{{
			env:  envelope("spammer@client.test", "bob@mx.test", "carol@mx.test"),
			msg:  hello,
			want: []string{"permanent 550 5.7.1", "permanent 550 5.7.1"},
		}}},
		{name: "mail_refused_lockstep", quit: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "bob@mx.test", "carol@mx.test"),
			msg:  hello,
			want: []string{"temporary 452 4.3.1", "temporary 452 4.3.1"},
		}}},
		{name: "data_refused", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "bob@mx.test"), msg: "x", want: []string{"permanent 554 5.7.1"}},
			{env: envelope("alice@client.test", "bob@mx.test"), msg: "x", want: []string{"temporary 452 4.3.1"}},
		}},
		{name: "reuse_two_messages", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "bob@mx.test"), msg: "first\r\n", want: []string{"delivered 250 2.0.0"}},
			{env: envelope("alice@client.test", "carol@mx.test"), msg: "second", want: []string{"delivered 250 2.0.0"}},
		}},
		{name: "dot_stuffing", quit: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "bob@mx.test"),
			msg:  ".\r\n..\r\na\rb\n.c\n.",
			want: []string{"delivered 250 "},
		}}},
		{name: "eightbit_missing", quit: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "bob@mx.test", "carol@mx.test"),
			msg:  "Subject: Grüße\r\n\r\nGrüße\r\n",
			want: []string{"permanent 554 5.6.3 local", "permanent 554 5.6.3 local"},
		}}},
		{name: "eightbit_offered", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "bob@mx.test"), msg: "Subject: Grüße\r\n\r\nGrüße\r\n", want: []string{"delivered 250 "}},
			{env: declared8bit, msg: "plain\r\n", want: []string{"delivered 250 "}},
			{env: envelope("alice@client.test", "bob@mx.test"), msg: "plain\r\n", want: []string{"delivered 250 "}},
		}},
		{name: "smtputf8_missing", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "jörg@mx.test"), msg: hello, want: []string{"permanent 553 5.6.7 local"}},
			{env: utf8Msg, msg: "Subject: Grüße\r\n\r\nx\r\n", want: []string{"permanent 554 5.6.9 local"}},
			{env: utf8Msg, msg: "Subject: ascii\r\n\r\nGrüße\r\n", want: []string{"delivered 250 "}},
		}},
		{name: "smtputf8_offered", quit: true, sends: []sendStep{
			{env: envelope("alice@client.test", "jörg@mx.test"), msg: "hi", want: []string{"delivered 250 "}},
		}},
		{name: "dsn_offered", quit: true, sends: []sendStep{
			{env: dsn, msg: "hi", want: []string{"delivered 250 ", "delivered 250 "}},
		}},
		{name: "dsn_not_offered", quit: true, sends: []sendStep{
			{env: dsn, msg: "hi", want: []string{"delivered 250 ", "delivered 250 "}},
		}},
		{name: "disconnect_after_dot", broken: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "bob@mx.test", "nobody@mx.test"),
			msg:  "hi",
			want: []string{"temporary 451 4.4.2 local", "permanent 550 5.1.1"},
		}}},
		{name: "closing_421", broken: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "nobody@mx.test", "bob@mx.test", "carol@mx.test"),
			msg:  "hi",
			want: []string{"permanent 550 5.1.1", "temporary 421 4.7.0", "temporary 421 4.7.0"},
		}}},
		{name: "lost_before_rcpt", broken: true, sends: []sendStep{{
			env:     envelope("alice@client.test", "bob@mx.test"),
			msg:     "hi",
			wantErr: true,
		}}},
		{name: "size_exceeded", quit: true, sends: []sendStep{{
			env:  envelope("alice@client.test", "bob@mx.test"),
			msg:  "01234567890",
			want: []string{"permanent 552 5.3.4 local"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveScripts(t, readScript(t, tt.name+".txt"))
			ctx := context.Background()
			c, err := Dial(ctx, "tcp", addr, testConfig(), DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i, step := range tt.sends {
				res, err := c.Send(ctx, step.env, []byte(step.msg))
				if step.wantErr {
					if err == nil || res != nil {
						t.Errorf("send %d: want an error and no results, got %v, %v", i, res, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				checkResults(t, res, step.want)
				for j, r := range res {
					if r.Rcpt.Path != step.env.Rcpts[j].Path {
						t.Errorf("send %d: result %d is for %v", i, j, r.Rcpt.Path)
					}
				}
			}
			if (c.Err() != nil) != tt.broken {
				t.Errorf("Err() = %v, want broken %v", c.Err(), tt.broken)
			}
			if tt.quit {
				if err := c.Quit(); err != nil {
					t.Errorf("Quit: %v", err)
				}
			}
		})
	}
}

func TestTimeoutAfterDot(t *testing.T) {
	addr := serveScripts(t, readScript(t, "timeout_after_dot.txt"))
	cfg := testConfig()
	cfg.Timeouts.DataTerm = 200 * time.Millisecond
	c, err := Dial(context.Background(), "tcp", addr, cfg, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	res, err := c.Send(context.Background(), envelope("alice@client.test", "bob@mx.test"), []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, []string{"temporary 451 4.4.2 local"})
	if !strings.Contains(res[0].Reply.Text, "Timed out") {
		t.Errorf("reply %q", res[0].Reply.Error())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if !isTimeoutErr(c.Err()) {
		t.Errorf("Err() = %v, want a timeout", c.Err())
	}
	if _, err := c.Send(context.Background(), envelope("a@b.test", "c@d.test"), []byte("x")); err == nil {
		t.Error("Send on a broken connection succeeded")
	}
}

// A cancelled context closes the connection at once; the accepted
// recipient is deferred.
func TestCancelWhileWaitingForReply(t *testing.T) {
	addr := serveScripts(t, readScript(t, "timeout_after_dot.txt"))
	c, err := Dial(context.Background(), "tcp", addr, testConfig(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := c.Send(ctx, envelope("alice@client.test", "bob@mx.test"), []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, []string{"temporary 451 4.4.2 local"})
	if res[0].Reply.Text != "Delivery attempt cancelled" {
		t.Errorf("reply %q", res[0].Reply.Error())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSendNoRecipients(t *testing.T) {
	c := &Conn{}
	if _, err := c.Send(context.Background(), envelope("a@b.test"), nil); err != ErrNoRecipients {
		t.Errorf("err = %v", err)
	}
}

func TestScanMessage(t *testing.T) {
	tests := []struct {
		msg            string
		size           int64
		eightBit, head bool
	}{
		{"", 0, false, false},
		{"a", 3, false, false},
		{"a\r\n", 3, false, false},
		{"a\n", 3, false, false},
		{"a\r", 3, false, false},
		{"a\r\rb", 8, false, false},
		{"\n\n", 4, false, false},
		{hello, 22, false, false},
		{"Subject: é\r\n\r\nx", 18, true, true},
		{"Subject: e\r\n\r\né", 18, true, false},
		{"Subject: e\n\né\n", 18, true, false},
	}
	for _, tt := range tests {
		got := scanMessage([]byte(tt.msg))
		want := messageInfo{size: tt.size, eightBit: tt.eightBit, headerNonASCII: tt.head}
		if got != want {
			t.Errorf("scanMessage(%q) = %+v, want %+v", tt.msg, got, want)
		}
	}
}

// Control characters in an address would split the command line; such a
// recipient is refused locally, the others go out.
func TestUnsafeAddress(t *testing.T) {
	script := `S: 220 mx.test
C: EHLO client.test
S: 250 mx.test
C: MAIL FROM:<alice@client.test>
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
`
	addr := serveScripts(t, script)
	c, err := Dial(context.Background(), "tcp", addr, testConfig(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := envelope("alice@client.test", "bob@mx.test")
	env.Rcpts = append(env.Rcpts, Rcpt{Path: smtp.Path{Local: "x>\r\nRCPT TO:<evil", Domain: "mx.test"}})
	res, err := c.Send(context.Background(), env, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, []string{"delivered 250 ", "permanent 501 5.1.3 local"})
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}
