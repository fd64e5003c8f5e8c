package spool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx"
	"posthorn/dnsmx/dnstest"
	"posthorn/protocol/smtp"
	"posthorn/spool/dsn"
)

// fakeMX is a scripted SMTP server on loopback.
type fakeMX struct {
	t    *testing.T
	ln   net.Listener
	port int

	mu        sync.Mutex
	conns     int
	active    int // sessions open now
	maxActive int
	txns      []fakeTxn // every transaction that reached the end of DATA
	peers     []string  // the client address of each connection
	b         fakeBehaviour
}

// fakeBehaviour scripts a fakeMX; change it with configure.
type fakeBehaviour struct {
	ext       []string                 // EHLO keywords besides the defaults
	rcptReply func(rcpt string) string // nil: "250 2.1.5 OK"
	dataReply func(n int) string       // n counts from 0; "": drop the connection
	dataDelay time.Duration            // before the reply to the final dot
	badTLS    bool                     // offer STARTTLS, then break the handshake
	greeting  func(conn int) string    // nil: "220 fake.test ESMTP"
}

func (f *fakeMX) configure(fn func(b *fakeBehaviour)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.b)
}

type fakeTxn struct {
	from  string
	rcpts []string
	data  string
}

// newFakeMX listens on addr ("127.0.0.1:0" or an address with a fixed port).
func newFakeMX(t *testing.T, addr string) *fakeMX {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMX{t: t, ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	t.Cleanup(func() { ln.Close() })
	go f.serve()
	return f
}

func (f *fakeMX) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		n := f.conns
		f.conns++
		f.peers = append(f.peers, c.RemoteAddr().(*net.TCPAddr).IP.String())
		f.active++
		f.maxActive = max(f.maxActive, f.active)
		f.mu.Unlock()
		go func() {
			f.session(n, c)
			f.mu.Lock()
			f.active--
			f.mu.Unlock()
		}()
	}
}

func (f *fakeMX) connCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakeMX) transactions() []fakeTxn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeTxn(nil), f.txns...)
}

func (f *fakeMX) session(n int, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	f.mu.Lock()
	b := f.b
	f.mu.Unlock()
	r := bufio.NewReader(c)
	say := func(s string) { fmt.Fprintf(c, "%s\r\n", s) }
	greet := "220 fake.test ESMTP"
	if b.greeting != nil {
		greet = b.greeting(n)
	}
	say(greet)
	if !strings.HasPrefix(greet, "2") {
		return
	}
	var from string
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO":
			ext := append([]string{"fake.test", "8BITMIME", "ENHANCEDSTATUSCODES"}, b.ext...)
			if b.badTLS {
				ext = append(ext, "STARTTLS")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				say("250" + sep + e)
			}
		case "HELO", "NOOP":
			say("250 OK")
		case "STARTTLS":
			say("220 2.0.0 go ahead")
			c.Write([]byte("this is not TLS\r\n"))
			return
		case "RSET":
			from, rcpts = "", nil
			say("250 2.0.0 OK")
		case "MAIL":
			from, rcpts = line, nil
			say("250 2.1.0 OK")
		case "RCPT":
			addr := line[strings.Index(line, "<")+1 : strings.Index(line, ">")]
			reply := "250 2.1.5 OK"
			if b.rcptReply != nil {
				reply = b.rcptReply(addr)
			}
			if strings.HasPrefix(reply, "250") {
				rcpts = append(rcpts, addr)
			}
			say(reply)
		case "DATA":
			if len(rcpts) == 0 {
				say("554 5.5.1 no valid recipients")
				continue
			}
			say("354 go on")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			f.mu.Lock()
			k := len(f.txns)
			f.txns = append(f.txns, fakeTxn{from, rcpts, data.String()})
			f.mu.Unlock()
			time.Sleep(b.dataDelay)
			reply := "250 2.0.0 queued"
			if b.dataReply != nil {
				reply = b.dataReply(k)
			}
			if reply == "" {
				return
			}
			say(reply)
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("500 5.5.2 what?")
		}
	}
}

// harness is a spool with a DNS server, a fake MX and captured DSNs.
type harness struct {
	t      *testing.T
	dns    *dnstest.Server
	mx     *fakeMX
	spool  *Spool
	path   string
	logs   *syncBuffer
	mu     sync.Mutex
	dsns   []bounced
	cancel context.CancelFunc
	done   chan error
}

type bounced struct {
	to  smtp.Path
	msg *dsn.Message
	raw []byte
}

// newHarness starts DNS with "remote.test MX 10 mx.remote.test → 127.0.0.1"
// and a fake MX; adjust sets options before Open.
func newHarness(t *testing.T, adjust func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, dns: dnstest.New(t), logs: &syncBuffer{}}
	h.mx = newFakeMX(t, "127.0.0.1:0")
	h.dns.Set("remote.test", dns.TypeMX, dnstest.MX(10, "mx.remote.test"))
	h.dns.SetAddrs("mx.remote.test", "127.0.0.1")
	h.path = filepath.Join(t.TempDir(), "spool.db")
	opts := Options{
		Hostname:     "mx.posthorn.test",
		Resolver:     dnsmx.NewResolver([]string{h.dns.Addr()}, time.Second),
		OutboundPort: h.mx.port,
		RetryMin:     50 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
		NoSync:       true,
		Rand:         rand.New(rand.NewPCG(1, 2)),
		Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Bounce: func(ctx context.Context, to smtp.Path, msg []byte) error {
			m, err := dsn.Parse(msg)
			if err != nil {
				t.Errorf("Bounce got an unparsable DSN: %v\n%s", err, msg)
				return nil
			}
			h.mu.Lock()
			h.dsns = append(h.dsns, bounced{to, m, msg})
			h.mu.Unlock()
			return nil
		},
	}
	if adjust != nil {
		adjust(&opts)
	}
	s, err := Open(h.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.spool = s
	t.Cleanup(func() {
		h.stop()
		s.Close()
	})
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.spool.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Error("Run did not return")
	}
}

func (h *harness) enqueue(id string, from string, rcpts ...string) {
	h.t.Helper()
	m := Message{ID: id, From: parsePath(h.t, from)}
	for _, r := range rcpts {
		m.Rcpts = append(m.Rcpts, Rcpt{Path: parsePath(h.t, r)})
	}
	if err := h.spool.Enqueue(context.Background(), m, testMessage(id)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) bounces() []bounced {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bounced(nil), h.dsns...)
}

// waitEmpty waits until the queue holds no message.
func (h *harness) waitEmpty() {
	h.t.Helper()
	waitFor(h.t, "queue empty", func() bool {
		l, err := h.spool.List()
		return err == nil && len(l) == 0
	})
}

// waitLogs waits for n "delivery" log records (they follow the commit
// that List sees) and returns them.
func (h *harness) waitLogs(n int) []map[string]any {
	h.t.Helper()
	waitFor(h.t, strconv.Itoa(n)+" log lines", func() bool { return len(h.logLines()) >= n })
	return h.logLines()
}

// logLines returns the "delivery" log records.
func (h *harness) logLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "delivery" {
			out = append(out, m)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func parsePath(t *testing.T, s string) smtp.Path {
	t.Helper()
	if s == "" {
		return smtp.Path{Null: true}
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		t.Fatalf("bad address %q", s)
	}
	return smtp.Path{Local: local, Domain: domain}
}

func testMessage(id string) []byte {
	return []byte("From: alice@posthorn.test\r\nTo: someone\r\nSubject: test " + id +
		"\r\nMessage-ID: <" + id + "@posthorn.test>\r\n\r\nHello.\r\n.dot line\r\n")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
