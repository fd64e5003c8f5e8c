package client

import (
	"bytes"
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"posthorn/protocol/smtp"
	"posthorn/protocol/smtp/server"
)

// recordingBackend accepts every recipient but "nobody" and keeps what it
// is given.
type recordingBackend struct {
	mu   sync.Mutex
	envs []*server.Envelope
	msgs [][]byte
}

func (b *recordingBackend) Mail(ctx context.Context, s *server.SessionInfo, from smtp.Path, p smtp.MailParams) error {
	return nil
}

func (b *recordingBackend) Rcpt(ctx context.Context, s *server.SessionInfo, from, to smtp.Path) error {
	if to.Local == "nobody" {
		return smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadDestMailbox, "No such user here")
	}
	return nil
}

func (b *recordingBackend) Deliver(ctx context.Context, env *server.Envelope, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.envs = append(b.envs, env)
	b.msgs = append(b.msgs, slices.Clone(msg))
	return nil
}

// TestInteropServer sends through Posthorn's own receiving server, whose
// DATA reader refuses bare CR and LF (RFC 5321 2.3.8) and whose parsers
// check every parameter: STARTTLS, pipelining, SMTPUTF8, 8BITMIME, DSN
// parameters and dot-stuffing must all come through intact.
func TestInteropServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &recordingBackend{}
	srv := server.New(server.Config{Hostname: "mx.test", Backend: be, TLS: serverTLSConfig(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	}()

	c, err := Dial(ctx, "tcp", ln.Addr().String(), testConfig(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.TLS() == nil {
		t.Fatal("no TLS")
	}
	for _, kw := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "SIZE"} {
		if _, ok := c.Extensions()[kw]; !ok {
			t.Errorf("server does not offer %s: %v", kw, c.Extensions())
		}
	}

	env := envelope("alice@client.test", "jörg@mx.test", "nobody@mx.test", "bob@mx.test")
	env.Mail = smtp.MailParams{SMTPUTF8: true, Ret: "HDRS", EnvID: "id+1=2"}
	env.Rcpts[2].Params = smtp.RcptParams{Notify: []string{"FAILURE", "DELAY"}, ORcpt: "rfc822;bob+x@mx.test"}
	msg := "Subject: Grüße\r\n\r\n.\r\n..x\nbare\rcr\r\n.\r\nend"
	wantMsg := "Subject: Grüße\r\n\r\n.\r\n..x\r\nbare\r\ncr\r\n.\r\nend\r\n"
	res, err := c.Send(ctx, env, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, []string{"delivered 250 2.0.0", "permanent 550 5.1.1", "delivered 250 2.0.0"})

	// The connection carries a second message.
	res, err = c.Send(ctx, envelope("", "bob@mx.test"), []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, []string{"delivered 250 2.0.0"})
	if err := c.Quit(); err != nil {
		t.Error(err)
	}

	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.msgs) != 2 {
		t.Fatalf("%d messages stored", len(be.msgs))
	}
	if !bytes.HasSuffix(be.msgs[0], []byte(wantMsg)) {
		t.Errorf("stored %q, want it to end in %q", be.msgs[0], wantMsg)
	}
	got := be.envs[0]
	wantMail := smtp.MailParams{Size: int64(len(wantMsg)), Body: "8BITMIME", SMTPUTF8: true, Ret: "HDRS", EnvID: "id+1=2"}
	if got.Mail != wantMail {
		t.Errorf("MAIL parameters %+v, want %+v", got.Mail, wantMail)
	}
	if len(got.Rcpts) != 2 || got.Rcpts[0].Path.Local != "jörg" || got.Rcpts[1].Path.Local != "bob" {
		t.Fatalf("recipients %+v", got.Rcpts)
	}
	p := got.Rcpts[1].Params
	if !slices.Equal(p.Notify, []string{"FAILURE", "DELAY"}) || p.ORcpt != "rfc822;bob+x@mx.test" {
		t.Errorf("RCPT parameters %+v", p)
	}
	if !be.envs[1].From.Null || !bytes.HasSuffix(be.msgs[1], []byte("\r\nsecond\r\n")) {
		t.Errorf("second message %+v %q", be.envs[1].From, be.msgs[1])
	}
}
