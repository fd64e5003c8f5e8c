package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"strings"
	"time"

	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

// Timeouts are the waits of a client session. RFC 5321 4.5.3.2: "a timer is
// set for each SMTP command and for each buffer of the data transfer"; the
// values given there are minimums, and they are the defaults for zero fields.
type Timeouts struct {
	Connect   time.Duration // TCP connect: 30s (RFC 5321 names none)
	Greeting  time.Duration // the 220 greeting: 5m (RFC 5321 4.5.3.2.1)
	Command   time.Duration // EHLO, HELO, STARTTLS, RSET, NOOP, QUIT: 5m, as MAIL (4.5.3.2 names none)
	TLS       time.Duration // the STARTTLS handshake: 30s
	Mail      time.Duration // MAIL: 5m (4.5.3.2.2)
	Rcpt      time.Duration // each RCPT: 5m (4.5.3.2.3)
	DataInit  time.Duration // DATA until 354: 2m (4.5.3.2.4)
	DataBlock time.Duration // each write of message data: 3m (4.5.3.2.5)
	DataTerm  time.Duration // the reply after the final dot: 10m (4.5.3.2.6)
}

func (t Timeouts) withDefaults() Timeouts {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&t.Connect, 30*time.Second)
	set(&t.Greeting, 5*time.Minute)
	set(&t.Command, 5*time.Minute)
	set(&t.TLS, 30*time.Second)
	set(&t.Mail, 5*time.Minute)
	set(&t.Rcpt, 5*time.Minute)
	set(&t.DataInit, 2*time.Minute)
	set(&t.DataBlock, 3*time.Minute)
	set(&t.DataTerm, 10*time.Minute)
	return t
}

// Config configures client connections.
type Config struct {
	// LocalName is the EHLO argument, our host name. Empty uses an address
	// literal of the local address (RFC 5321 4.1.4).
	LocalName string
	// TLS enables STARTTLS when the server offers it; nil never starts TLS.
	// For opportunistic TLS on port 25 set InsecureSkipVerify (see the
	// package documentation).
	TLS      *tls.Config
	Timeouts Timeouts
	Logger   *slog.Logger
	// Trace, when set, receives a copy of the commands and replies ("C: "
	// and "S: " lines; message data only as its length).
	Trace io.Writer
	// LocalAddr is the source address of the connection; the zero value
	// lets the system choose. A server bound to one address sends from it,
	// so that the receiver sees the address its SPF record and PTR name.
	LocalAddr netip.Addr
}

// DialOptions change one connection attempt.
type DialOptions struct {
	// NoTLS skips STARTTLS even when offered: the retry after a *TLSError.
	NoTLS bool
}

// writeBufSize is the write buffer: a pipelined group of commands or one
// block of message data goes out in one write.
const writeBufSize = 16 << 10

// Conn is a client SMTP session. It is not safe for concurrent use.
type Conn struct {
	cfg Config
	to  Timeouts
	log *slog.Logger

	raw net.Conn // the TCP connection
	nc  net.Conn // what commands go over: raw, or TLS over raw
	r   *textline.Reader
	w   *bufio.Writer
	// writeTimeout is the deadline set before each write to nc.
	writeTimeout time.Duration

	ext       map[string]string // EHLO keywords, upper case → parameters
	greetName string            // first word of the greeting
	helloName string            // first word of the EHLO/HELO reply
	tlsState  *tls.ConnectionState
	// needReset: a transaction was left open (no final dot), so the next
	// one starts with RSET (RFC 5321 4.1.1.5).
	needReset bool

	opCtx context.Context // the context of the call in progress
	err   error           // why the connection is unusable; nil while it works
}

// Dial connects to addr, reads the greeting, says EHLO (or HELO) and starts
// TLS when offered, cfg.TLS is set and opts.NoTLS is not. ctx bounds the
// whole setup; cancelling it closes the connection.
//
// Errors: a greeting other than 2yz, or EHLO and HELO refused, is a
// *ReplyError; a failed TLS handshake is a *TLSError (dial again with
// NoTLS); a reply that does not parse is a *ProtocolError; anything else is
// a network error.
func Dial(ctx context.Context, network, addr string, cfg Config, opts DialOptions) (*Conn, error) {
	to := cfg.Timeouts.withDefaults()
	d := net.Dialer{Timeout: to.Connect}
	if cfg.LocalAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.LocalAddr.AsSlice()}
	}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{
		cfg: cfg,
		to:  to,
		log: log.With("remote", addr),
		raw: nc,
		nc:  nc,
		r:   textline.NewReader(nc, 0),
	}
	c.w = bufio.NewWriterSize(deadlineWriter{c}, writeBufSize)
	if err := c.open(ctx, opts); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// open runs the session up to the point where mail can be sent.
func (c *Conn) open(ctx context.Context, opts DialOptions) error {
	defer c.watch(ctx)()
	_, rep, err := c.readReply(c.to.Greeting)
	if err != nil {
		return err
	}
	if rep.Code/100 != 2 {
		// RFC 5321 3.1: a server that greets with 554 "MUST still wait for
		// the client to send a QUIT".
		c.Quit()
		return &ReplyError{Command: "greeting", Reply: rep}
	}
	c.greetName = firstWord(rep.Text)
	if err := c.hello(); err != nil {
		return err
	}
	if opts.NoTLS || c.cfg.TLS == nil || !c.has("STARTTLS") {
		return nil
	}
	return c.startTLS()
}

// hello sends EHLO and records the extensions; on a 5yz it falls back to
// HELO (RFC 5321 3.2: after "command not recognized" the client "SHOULD be
// able to fall back and send HELO"), without extensions.
func (c *Conn) hello() error {
	name := c.localName()
	lines, rep, err := c.cmd("EHLO "+name, c.to.Command)
	if err != nil {
		return err
	}
	switch rep.Code / 100 {
	case 2:
		c.ext = parseEHLO(lines)
		c.helloName = firstWord(printable(lines[0][min(4, len(lines[0])):]))
		return nil
	case 5:
		_, rep, err = c.cmd("HELO "+name, c.to.Command)
		if err != nil {
			return err
		}
		if rep.Code/100 != 2 {
			return &ReplyError{Command: "HELO", Reply: rep}
		}
		c.ext = map[string]string{}
		c.helloName = firstWord(rep.Text)
		return nil
	}
	return &ReplyError{Command: "EHLO", Reply: rep}
}

// startTLS upgrades the session (RFC 3207 4) and says EHLO again.
func (c *Conn) startTLS() error {
	_, rep, err := c.cmd("STARTTLS", c.to.Command)
	if err != nil {
		return err
	}
	if c.err != nil { // 421
		return &ReplyError{Command: "STARTTLS", Reply: rep}
	}
	if rep.Code != smtp.CodeReady {
		// RFC 3207 4: after a refusal (454 TLS not available) "the client
		// must decide whether or not to continue"; opportunistic TLS does.
		c.log.Info("STARTTLS refused, continuing without TLS", "reply", rep.Error())
		return nil
	}
	if c.r.Buffered() > 0 {
		// Data after the 220 was sent before the handshake and would be
		// read as if it came over TLS (RFC 3207 4.2; the client side of
		// CVE-2011-0411). Treat it as a failed handshake.
		return c.fail(&TLSError{Err: errors.New("server sent data after its 220 reply")})
	}
	conf := c.cfg.TLS.Clone()
	tc := tls.Client(c.raw, conf)
	if err := c.raw.SetDeadline(time.Now().Add(c.to.TLS)); err != nil {
		return c.fail(fmt.Errorf("smtp client: %w", err))
	}
	if err := tc.Handshake(); err != nil {
		if c.opCtx != nil && c.opCtx.Err() != nil {
			return c.fail(err) // cancelled: not a reason to retry in plaintext
		}
		return c.fail(&TLSError{Err: err})
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	c.nc = tc
	c.r.Reset(tc)
	c.w.Reset(deadlineWriter{c})
	// RFC 3207 4.2: "the client MUST discard any knowledge obtained from
	// the server", and "SHOULD send an EHLO command as the first command".
	c.ext, c.helloName = nil, ""
	return c.hello()
}

// localName is the EHLO argument.
func (c *Conn) localName() string {
	if c.cfg.LocalName != "" {
		return c.cfg.LocalName
	}
	// RFC 5321 4.1.4: a client without a meaningful name "SHOULD" send
	// an address literal.
	if ap, err := netip.ParseAddrPort(c.raw.LocalAddr().String()); err == nil {
		if a := ap.Addr().Unmap(); a.Is4() {
			return "[" + a.String() + "]"
		}
		return "[IPv6:" + ap.Addr().WithZone("").String() + "]"
	}
	return "localhost"
}

// parseEHLO returns the keywords of an EHLO reply, one per line after the
// first (RFC 5321 4.1.1.1):
//
//	ehlo-line    = ehlo-keyword *( SP ehlo-param )
//	ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//
// Keywords are upper-cased (RFC 5321 2.4: case-insensitive). The old form
// "AUTH=PLAIN" is read as keyword and parameters too. The first line wins
// when a keyword repeats; lines that are not ehlo-lines are skipped.
func parseEHLO(lines []string) map[string]string {
	ext := make(map[string]string, len(lines))
	for _, line := range lines[1:] {
		if len(line) <= 4 {
			continue
		}
		s := line[4:]
		n := 0
		for n < len(s) && (isAlnum(s[n]) || n > 0 && s[n] == '-') {
			n++
		}
		if n == 0 || n < len(s) && s[n] != ' ' && s[n] != '=' {
			continue
		}
		kw := strings.ToUpper(s[:n])
		if _, dup := ext[kw]; !dup {
			ext[kw] = strings.TrimSpace(printable(s[min(n+1, len(s)):]))
		}
	}
	return ext
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c)
}

func firstWord(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s, _, _ = strings.Cut(s, " ")
	return s
}

// Extensions returns the EHLO keywords, upper case, with their parameters
// ("SIZE" → "10240000"); empty after HELO.
func (c *Conn) Extensions() map[string]string { return maps.Clone(c.ext) }

func (c *Conn) has(kw string) bool {
	_, ok := c.ext[kw]
	return ok
}

// TLS returns the TLS state, or nil for a plaintext session.
func (c *Conn) TLS() *tls.ConnectionState { return c.tlsState }

// RemoteHello returns the server's name from its EHLO or HELO reply, or
// from the greeting when the reply named none.
func (c *Conn) RemoteHello() string {
	if c.helloName != "" {
		return c.helloName
	}
	return c.greetName
}

// Err returns why the connection can no longer be used, or nil. After Send,
// the caller dials again for the next message when Err is not nil.
func (c *Conn) Err() error { return c.err }

// Reset sends RSET (RFC 5321 4.1.1.5). Send does this by itself when needed.
func (c *Conn) Reset(ctx context.Context) error {
	return c.simple(ctx, "RSET")
}

// Noop sends NOOP (RFC 5321 4.1.1.9): a check that a kept connection still
// works.
func (c *Conn) Noop(ctx context.Context) error {
	return c.simple(ctx, "NOOP")
}

func (c *Conn) simple(ctx context.Context, verb string) error {
	if c.err != nil {
		return c.unusable()
	}
	defer c.watch(ctx)()
	_, rep, err := c.cmd(verb, c.to.Command)
	if err != nil {
		return err
	}
	if rep.Code/100 != 2 {
		return &ReplyError{Command: verb, Reply: rep}
	}
	if verb == "RSET" {
		c.needReset = false
	}
	return nil
}

// Quit sends QUIT (RFC 5321 4.1.1.10), waits for the reply and closes the
// connection. On a connection that is already unusable it only closes.
func (c *Conn) Quit() error {
	defer c.Close()
	if c.err != nil {
		return nil
	}
	_, rep, err := c.cmd("QUIT", c.to.Command)
	if err != nil {
		return err
	}
	if rep.Code/100 != 2 {
		return &ReplyError{Command: "QUIT", Reply: rep}
	}
	return nil
}

// Close closes the connection without QUIT.
func (c *Conn) Close() error {
	if c.err == nil {
		c.err = net.ErrClosed
	}
	if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// watch makes cancelling ctx close the connection while a call runs; the
// returned function ends the watch.
func (c *Conn) watch(ctx context.Context) (stop func()) {
	c.opCtx = ctx
	raw := c.raw
	stopClose := context.AfterFunc(ctx, func() { raw.Close() })
	return func() {
		stopClose()
		c.opCtx = nil
	}
}

// fail records err as the reason the connection is unusable, closes it and
// returns err, or the context's error when the call was cancelled.
func (c *Conn) fail(err error) error {
	if c.opCtx != nil && c.opCtx.Err() != nil {
		err = fmt.Errorf("smtp client: %w: %w", c.opCtx.Err(), err)
	}
	if c.err == nil {
		c.err = err
		c.raw.Close()
	}
	return err
}

func (c *Conn) unusable() error {
	return fmt.Errorf("smtp client: connection unusable: %w", c.err)
}

// command is one command line and the wait for its reply.
type command struct {
	line    string
	timeout time.Duration
}

// cmd sends one command and reads its reply.
func (c *Conn) cmd(line string, timeout time.Duration) ([]string, smtp.Reply, error) {
	if c.err != nil {
		return nil, smtp.Reply{}, c.unusable()
	}
	c.writeLine(line, timeout)
	if err := c.flush(); err != nil {
		return nil, smtp.Reply{}, err
	}
	return c.readReply(timeout)
}

// pipelineGroup is the most octets of commands sent before their replies
// are read. RFC 2920 3.1: a client that does not read while it writes "MUST
// ... make sure that each group of commands fits entirely within the
// [TCP] window", "usually, but not always, 4K octets".
const pipelineGroup = 4000

// pipeline sends cmds in RFC 2920 groups and returns their replies in
// order, matched by counting (RFC 2920 3.1). On an error it returns the
// replies read so far. After a 421 the server closes (RFC 5321 3.8), so the
// commands still unanswered get that same reply.
func (c *Conn) pipeline(cmds []command) ([]smtp.Reply, error) {
	replies := make([]smtp.Reply, 0, len(cmds))
	for i, cmd := range cmds {
		if c.err != nil {
			return replies, c.unusable()
		}
		c.writeLine(cmd.line, cmd.timeout)
		if i < len(cmds)-1 && c.w.Buffered() < pipelineGroup {
			continue
		}
		if err := c.flush(); err != nil {
			return replies, err
		}
		for len(replies) <= i {
			_, rep, err := c.readReply(cmds[len(replies)].timeout)
			if err != nil {
				return replies, err
			}
			replies = append(replies, rep)
			if rep.Code == smtp.CodeUnavailable {
				for len(replies) < len(cmds) {
					replies = append(replies, rep)
				}
				return replies, nil
			}
		}
	}
	return replies, nil
}

// writeLine buffers one command line; flush sends it.
func (c *Conn) writeLine(line string, timeout time.Duration) {
	c.trace("C: ", line)
	c.writeTimeout = timeout
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
}

func (c *Conn) flush() error {
	if c.err != nil {
		return c.unusable()
	}
	if err := c.w.Flush(); err != nil {
		return c.fail(fmt.Errorf("smtp client: writing: %w", err))
	}
	return nil
}

// readReply reads one reply within timeout. A 421 marks the connection
// unusable (RFC 5321 3.8: the server is closing it) but is returned as a
// reply, for the caller to apply.
func (c *Conn) readReply(timeout time.Duration) ([]string, smtp.Reply, error) {
	if c.err != nil {
		return nil, smtp.Reply{}, c.unusable()
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, smtp.Reply{}, c.fail(fmt.Errorf("smtp client: %w", err))
	}
	lines, err := readReplyLines(c.r)
	if err != nil {
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			err = fmt.Errorf("smtp client: reading reply: %w", err)
		}
		return nil, smtp.Reply{}, c.fail(err)
	}
	c.trace("S: ", lines...)
	rep, err := ParseReply(lines)
	if err != nil {
		return nil, smtp.Reply{}, c.fail(err)
	}
	if rep.Code == smtp.CodeUnavailable {
		c.fail(&ReplyError{Command: "server closing", Reply: rep})
	}
	return lines, rep, nil
}

func (c *Conn) trace(prefix string, lines ...string) {
	if c.cfg.Trace == nil {
		return
	}
	for _, l := range lines {
		io.WriteString(c.cfg.Trace, prefix+l+"\n")
	}
}

// deadlineWriter sets the write deadline before each write to the
// connection: RFC 5321 4.5.3.2 times "each buffer of the data transfer".
type deadlineWriter struct{ c *Conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	if err := d.c.nc.SetWriteDeadline(time.Now().Add(d.c.writeTimeout)); err != nil {
		return 0, err
	}
	return d.c.nc.Write(p)
}
