package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadSpec is one load: messages spread over concurrent sessions, each
// session sending message after message on one connection.
type loadSpec struct {
	sessions, messages int
	perIP              int // sessions per source address (127.0.0.x)
	body               *message
	from, rcpt         string   // envelope and header; "": benchFrom, benchRcpt
	rcpts              []string // every envelope recipient, if set (rcpt goes in the header)
	authUser, authPass string   // AUTH PLAIN after EHLO when authUser is set
}

// envelope returns the sender and recipient of every message of the load.
func (l loadSpec) envelope() (from, rcpt string) {
	from, rcpt = l.from, l.rcpt
	if from == "" {
		from = benchFrom
	}
	if rcpt == "" {
		rcpt = benchRcpt
	}
	return from, rcpt
}

// message is the shared body of every message.
type message struct {
	raw       []byte // the body as written (len = -size), CRLF lines
	stuffed   []byte // raw, dot-stuffed (RFC 5321 4.5.2), ending in CRLF
	headerLen int    // length of one message's header block
}

// makeBody returns a body of exactly size bytes (size >= 16) of CRLF lines of
// at most 80 octets; the first line starts with "." to exercise dot-stuffing.
func makeBody(size int) *message {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 0, size)
	for i := 0; len(b) < size; i++ {
		rem := size - len(b)
		n := 78
		switch {
		case rem < 80:
			n = rem - 2
		case rem == 81:
			n = 77 // leave an empty last line, not a lone byte
		}
		for j := range n {
			c := alphabet[(i+j)%len(alphabet)]
			if i == 0 && j == 0 {
				c = '.'
			}
			b = append(b, c)
		}
		b = append(b, '\r', '\n')
	}
	m := &message{raw: b, stuffed: dotStuff(b)}
	m.headerLen = len(header(1, benchFrom, benchRcpt))
	return m
}

// dotStuff doubles a leading "." on every line.
func dotStuff(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/64)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		if line[0] == '.' {
			out = append(out, '.')
		}
		out = append(out, line...)
		b = b[len(line):]
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

var headerDate = time.Now().Format(time.RFC1123Z)

// subjectPrefix starts the Subject of every message; the number after it is
// the message's index in the load (1..N), which the relay sink counts.
const subjectPrefix = "Subject: posthorn-bench message "

// header is message k's header block, up to and including the empty line.
func header(k int64, from, rcpt string) []byte {
	return fmt.Appendf(nil, "From: <%s>\r\nTo: <%s>\r\n"+subjectPrefix+"%d\r\nDate: %s\r\nMessage-ID: <%d.%d@%s>\r\n\r\n",
		from, rcpt, k, headerDate, time.Now().UnixNano(), k, benchHelo)
}

// sourceIP is the loopback source address of session i when the sessions
// are spread over n addresses: 127.0.0.1, 127.0.0.2, ...
func sourceIP(i, n int) net.IP {
	x := i % n
	return net.IPv4(127, 0, byte(x/250), byte(1+x%250))
}

func sourceIPs(spec loadSpec) int { return (spec.sessions + spec.perIP - 1) / spec.perIP }

// runLoad sends spec.messages messages to addr over spec.sessions concurrent
// sessions and returns the count of final 250s and the time until the last.
// Any unexpected reply ends the load with an error.
func runLoad(parent context.Context, addr string, spec loadSpec) (clientRun, error) {
	// The first failing session cancels the others with its error as the
	// cause; their own errors (deadlines, closed connections) follow from it.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var next, ok, last atomic.Int64
	var failed atomic.Int32
	lats := make([][]time.Duration, spec.sessions)
	auths := make([][]time.Duration, spec.sessions)
	nIPs := sourceIPs(spec)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range spec.sessions {
		wg.Go(func() {
			s := &session{spec: spec, next: &next, ok: &ok, last: &last, t0: t0}
			err := s.run(ctx, addr, sourceIP(i, nIPs))
			lats[i] = s.lat
			if s.auth > 0 {
				auths[i] = []time.Duration{s.auth}
			}
			if err != nil {
				failed.Add(1)
				cancel(fmt.Errorf("session %d: %w", i+1, err))
			}
		})
	}
	wg.Wait()
	c := clientRun{n: int(ok.Load()), d: time.Duration(last.Load()), lat: slices.Concat(lats...), auth: slices.Concat(auths...)}
	if err := parent.Err(); err != nil {
		return c, context.Cause(parent)
	}
	if ctx.Err() != nil {
		return c, fmt.Errorf("%w (%d of %d sessions ended early)", context.Cause(ctx), failed.Load(), spec.sessions)
	}
	if c.n != spec.messages {
		return c, fmt.Errorf("%d of %d messages accepted", c.n, spec.messages)
	}
	return c, nil
}

// session is one SMTP client connection.
type session struct {
	spec           loadSpec
	next, ok, last *atomic.Int64
	t0             time.Time
	r              *bufio.Reader
	w              *bufio.Writer
	pipelining     bool
	lat            []time.Duration
	auth           time.Duration // AUTH command to its 235
}

const replyTimeout = time.Minute

func (s *session) run(ctx context.Context, addr string, src net.IP) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Cancellation unblocks any read or write in progress.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(replyTimeout))
	s.r = bufio.NewReaderSize(conn, 4096)
	s.w = bufio.NewWriterSize(conn, 64<<10)

	if _, err := s.expect("greeting", 220); err != nil {
		return err
	}
	s.w.WriteString("EHLO " + benchHelo + "\r\n")
	lines, err := s.flushExpect("EHLO", 250)
	if err != nil {
		return err
	}
	for _, l := range lines[1:] {
		if kw, _, _ := strings.Cut(l, " "); strings.EqualFold(kw, "PIPELINING") {
			s.pipelining = true
		}
	}
	if s.spec.authUser != "" {
		// RFC 4616 PLAIN with the initial response (RFC 4954 4).
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + s.spec.authUser + "\x00" + s.spec.authPass))
		s.w.WriteString("AUTH PLAIN " + ir + "\r\n")
		t := time.Now()
		if _, err := s.flushExpect("AUTH", 235); err != nil {
			return err
		}
		s.auth = time.Since(t)
	}
	from, rcpt := s.spec.envelope()
	rcpts := s.spec.rcpts
	if len(rcpts) == 0 {
		rcpts = []string{rcpt}
	}
	type command struct {
		name, line string
		code       int
	}
	cmds := []command{{"MAIL", "MAIL FROM:<" + from + ">\r\n", 250}}
	for _, r := range rcpts {
		cmds = append(cmds, command{"RCPT", "RCPT TO:<" + r + ">\r\n", 250})
	}
	cmds = append(cmds, command{"DATA", "DATA\r\n", 354})
	for {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		k := s.next.Add(1)
		if k > int64(s.spec.messages) {
			break
		}
		conn.SetDeadline(time.Now().Add(replyTimeout))
		if s.pipelining {
			// RFC 2920: MAIL, the RCPTs and DATA in one write, then the replies in order.
			for _, c := range cmds {
				s.w.WriteString(c.line)
			}
			if err := s.w.Flush(); err != nil {
				return err
			}
			var first error
			for _, c := range cmds {
				if _, err := s.expect(c.name, c.code); err != nil && first == nil {
					first = err
				}
			}
			if first != nil {
				return first
			}
		} else {
			for _, c := range cmds {
				s.w.WriteString(c.line)
				if _, err := s.flushExpect(c.name, c.code); err != nil {
					return err
				}
			}
		}
		s.w.Write(header(k, from, rcpt))
		s.w.Write(s.spec.body.stuffed)
		s.w.WriteString(".\r\n")
		t := time.Now()
		if _, err := s.flushExpect("end of DATA", 250); err != nil {
			return err
		}
		s.lat = append(s.lat, time.Since(t))
		s.ok.Add(1)
		for t := int64(time.Since(s.t0)); ; {
			old := s.last.Load()
			if t <= old || s.last.CompareAndSwap(old, t) {
				break
			}
		}
	}
	s.w.WriteString("QUIT\r\n")
	_, err = s.flushExpect("QUIT", 221)
	return err
}

func (s *session) flushExpect(what string, code int) ([]string, error) {
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	return s.expect(what, code)
}

// expect reads one reply and checks its code.
func (s *session) expect(what string, code int) ([]string, error) {
	got, lines, err := readReply(s.r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if got != code {
		return nil, fmt.Errorf("%s: want %d, got %d %s", what, code, got, strings.Join(lines, " / "))
	}
	return lines, nil
}

// readReply reads one SMTP reply (RFC 5321 4.2): lines "CCC-text" then
// "CCC text" (or "CCC"), all with the same code. It returns the code and the
// text of each line.
func readReply(r *bufio.Reader) (int, []string, error) {
	var lines []string
	code := 0
	for i := 0; ; i++ {
		if i == 100 {
			return 0, nil, errors.New("reply longer than 100 lines")
		}
		b, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		l := strings.TrimRight(string(b), "\r\n")
		c, err := strconv.Atoi(l[:min(3, len(l))])
		if len(l) < 3 || err != nil || c < 200 || c > 599 || (len(l) > 3 && l[3] != ' ' && l[3] != '-') {
			return 0, nil, fmt.Errorf("malformed reply line %q", l)
		}
		if i > 0 && c != code {
			return 0, nil, fmt.Errorf("reply code changed from %d to %d", code, c)
		}
		code = c
		if len(l) > 4 {
			lines = append(lines, l[4:])
		} else {
			lines = append(lines, "")
		}
		if len(l) == 3 || l[3] == ' ' {
			return code, lines, nil
		}
	}
}

// relay forwards loopback connections to target, the i-th one from source
// address sourceIP(i, n): smtp-source connects from 127.0.0.1 only.
type relay struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startRelay(target string, perIP, sessions int) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := (sessions + perIP - 1) / perIP
	rl := &relay{addr: ln.Addr().String(), ln: ln}
	rl.wg.Go(func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceIP(i, n)}, Timeout: 10 * time.Second}
			u, err := d.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			rl.mu.Lock()
			rl.conns = append(rl.conns, c, u)
			rl.mu.Unlock()
			rl.wg.Go(func() { pipe(u, c) })
			rl.wg.Go(func() { pipe(c, u) })
		}
	})
	return rl, nil
}

// pipe copies src to dst (splice(2) between TCP sockets) and half-closes dst.
func pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

func (rl *relay) close() {
	rl.ln.Close()
	rl.mu.Lock()
	for _, c := range rl.conns {
		c.Close()
	}
	rl.mu.Unlock()
	rl.wg.Wait()
}
