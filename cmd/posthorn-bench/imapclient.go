package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// go-imap, the IMAP load client: tagged commands, one at a time; responses
// with literals ({N} and {N+}, RFC 9051 4.3); LOGIN, SELECT, FETCH,
// STORE, SEARCH, APPEND (a synchronising literal, or a non-synchronising
// one when the server advertises LITERAL+, RFC 7888), EXPUNGE, LOGOUT.
// Every tagged response must be OK; anything else is an error naming the
// command.

const (
	imapMaxLine    = 4 << 20  // longest response line (literals excluded)
	imapMaxLiteral = 64 << 20 // largest literal in a response
)

// imapResp is one server response: its text with each literal replaced by
// its "{N}" announcement, and the literals in order.
type imapResp struct {
	line []byte
	lits [][]byte
}

// imapConn is one client connection.
type imapConn struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	tag     int
	caps    map[string]bool
	timeout time.Duration // per command
	ok      int           // tagged OKs received
	litBuf  []byte        // storage of the current response's literals
}

// errRefused is a BYE greeting (the server's connection caps).
var errRefused = errors.New("connection refused with a BYE greeting")

// dialIMAP connects from local (nil: any) to addr and reads the greeting.
func dialIMAP(ctx context.Context, addr string, local net.Addr, timeout time.Duration) (*imapConn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: local}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := newIMAPConn(nc, timeout)
	nc.SetDeadline(time.Now().Add(timeout))
	resp, err := c.read()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	switch {
	case bytes.HasPrefix(resp.line, []byte("* OK")), bytes.HasPrefix(resp.line, []byte("* PREAUTH")):
		c.noteCaps(resp.line)
		return c, nil
	case bytes.HasPrefix(resp.line, []byte("* BYE")):
		nc.Close()
		return nil, fmt.Errorf("%w: %q", errRefused, resp.line)
	}
	nc.Close()
	return nil, fmt.Errorf("bad greeting %q", resp.line)
}

func newIMAPConn(nc net.Conn, timeout time.Duration) *imapConn {
	return &imapConn{conn: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 16<<10),
		caps: make(map[string]bool), timeout: timeout}
}

func (c *imapConn) Close() error { return c.conn.Close() }

// read reads one response, literals included.
func (c *imapConn) read() (*imapResp, error) {
	resp := &imapResp{}
	c.litBuf = c.litBuf[:0]
	var spans [][2]int
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		resp.line = append(resp.line, line...)
		n, ok := literalSuffix(line)
		if !ok {
			break
		}
		if n > imapMaxLiteral {
			return nil, fmt.Errorf("literal of %d octets", n)
		}
		start := len(c.litBuf)
		c.litBuf = append(c.litBuf, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, c.litBuf[start:]); err != nil {
			return nil, unexpectedEOF(err)
		}
		spans = append(spans, [2]int{start, start + int(n)})
	}
	for _, s := range spans {
		resp.lits = append(resp.lits, c.litBuf[s[0]:s[1]:s[1]])
	}
	return resp, nil
}

// readLine reads one line without its CRLF.
func (c *imapConn) readLine() ([]byte, error) {
	var long []byte
	for {
		b, err := c.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(b) > imapMaxLine {
				return nil, fmt.Errorf("response line longer than %d octets", imapMaxLine)
			}
			long = append(long, b...)
			continue
		}
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		if long != nil {
			b = append(long, b...)
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			return nil, fmt.Errorf("line without CRLF: %.100q", b)
		}
		return b[:len(b)-2], nil
	}
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// literalSuffix reports whether line ends with a literal's announcement,
// "{N}" or "{N+}", and returns N.
func literalSuffix(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	num := line[i+1 : len(line)-1]
	num = bytes.TrimSuffix(num, []byte("+"))
	if len(num) == 0 || len(num) > 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// noteCaps records the capabilities of a "* CAPABILITY ..." response or of
// a "[CAPABILITY ...]" response code.
func (c *imapConn) noteCaps(line []byte) {
	s := string(line)
	var list string
	if rest, ok := strings.CutPrefix(s, "* CAPABILITY "); ok {
		list = rest
	} else if i := strings.Index(s, "[CAPABILITY "); i >= 0 {
		list = s[i+len("[CAPABILITY "):]
		if j := strings.IndexByte(list, ']'); j >= 0 {
			list = list[:j]
		}
	} else {
		return
	}
	for _, f := range strings.Fields(list) {
		c.caps[strings.ToUpper(f)] = true
	}
}

// nextTag returns a new tag.
func (c *imapConn) nextTag() string {
	c.tag++
	return "a" + strconv.Itoa(c.tag)
}

// cmd sends one command line and reads responses until its tagged one,
// passing every untagged one to each (if set). The tagged response must be
// OK.
func (c *imapConn) cmd(each func(*imapResp) error, command string) error {
	tag := c.nextTag()
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	c.w.WriteString(tag)
	c.w.WriteByte(' ')
	c.w.WriteString(command)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", cmdName(command), err)
	}
	return c.responses(tag, command, each)
}

// responses reads until the tagged response of tag.
func (c *imapConn) responses(tag, command string, each func(*imapResp) error) error {
	for {
		resp, err := c.read()
		if err != nil {
			return fmt.Errorf("%s: %w", cmdName(command), err)
		}
		if t, rest, ok := bytes.Cut(resp.line, []byte(" ")); ok && string(t) == tag {
			c.noteCaps(resp.line)
			if !bytes.HasPrefix(rest, []byte("OK")) {
				return fmt.Errorf("%s: %.200q", cmdName(command), resp.line)
			}
			c.ok++
			return nil
		}
		if bytes.HasPrefix(resp.line, []byte("* CAPABILITY ")) {
			c.noteCaps(resp.line)
		}
		if each != nil {
			if err := each(resp); err != nil {
				return fmt.Errorf("%s: %w", cmdName(command), err)
			}
		}
	}
}

// cmdName is the command's name for errors (never the LOGIN password).
func cmdName(command string) string {
	f := strings.Fields(command)
	if len(f) == 0 {
		return "(empty command)"
	}
	if strings.EqualFold(f[0], "UID") && len(f) > 1 {
		return "UID " + f[1]
	}
	return f[0]
}

// quote returns s as an IMAP quoted string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func (c *imapConn) login(user, pass string) error {
	return c.cmd(nil, "LOGIN "+quote(user)+" "+quote(pass))
}

// selectBox selects a mailbox and returns its EXISTS count.
func (c *imapConn) selectBox(name string) (int, error) {
	exists := -1
	err := c.cmd(func(r *imapResp) error {
		if n, kind, ok := untaggedNum(r.line); ok && kind == "EXISTS" {
			exists = n
		}
		return nil
	}, "SELECT "+quote(name))
	if err == nil && exists < 0 {
		err = errors.New("SELECT: no EXISTS")
	}
	return exists, err
}

// fetch runs a FETCH (or UID FETCH) and passes each FETCH response to each.
func (c *imapConn) fetch(command string, each func(seq int, r *imapResp) error) error {
	return c.cmd(func(r *imapResp) error {
		n, kind, ok := untaggedNum(r.line)
		if !ok || kind != "FETCH" {
			return nil
		}
		if each != nil {
			return each(n, r)
		}
		return nil
	}, command)
}

// search runs a SEARCH (or UID SEARCH) and returns the numbers found.
func (c *imapConn) search(criteria string) ([]int, error) {
	var found []int
	err := c.cmd(func(r *imapResp) error {
		nums, ok := parseSearch(r.line)
		if ok {
			found = append(found, nums...)
		}
		return nil
	}, "SEARCH "+criteria)
	return found, err
}

// store runs a STORE and returns the number of FETCH responses.
func (c *imapConn) store(set, item string) (int, error) {
	n := 0
	err := c.fetch("STORE "+set+" "+item, func(int, *imapResp) error { n++; return nil })
	return n, err
}

// expunge runs EXPUNGE and returns the number of EXPUNGE responses.
func (c *imapConn) expunge() (int, error) {
	n := 0
	err := c.cmd(func(r *imapResp) error {
		if _, kind, ok := untaggedNum(r.line); ok && kind == "EXPUNGE" {
			n++
		}
		return nil
	}, "EXPUNGE")
	return n, err
}

// appendMsg appends msg to mailbox with flags ("" for none): with LITERAL+
// in one write, else waiting for the continuation request.
func (c *imapConn) appendMsg(mailbox, flags string, msg []byte) error {
	tag := c.nextTag()
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if flags != "" {
		flags = " (" + flags + ")"
	}
	plus := ""
	if c.caps["LITERAL+"] {
		plus = "+"
	}
	fmt.Fprintf(c.w, "%s APPEND %s%s {%d%s}\r\n", tag, quote(mailbox), flags, len(msg), plus)
	if plus == "" {
		if err := c.w.Flush(); err != nil {
			return fmt.Errorf("APPEND: %w", err)
		}
		resp, err := c.read()
		if err != nil {
			return fmt.Errorf("APPEND: %w", err)
		}
		if !bytes.HasPrefix(resp.line, []byte("+")) {
			return fmt.Errorf("APPEND: %.200q instead of a continuation request", resp.line)
		}
	}
	c.w.Write(msg)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	return c.responses(tag, "APPEND", nil)
}

// logout sends LOGOUT, expects BYE and OK, and closes the connection.
func (c *imapConn) logout() error {
	bye := false
	err := c.cmd(func(r *imapResp) error {
		if bytes.HasPrefix(r.line, []byte("* BYE")) {
			bye = true
		}
		return nil
	}, "LOGOUT")
	c.conn.Close()
	if err == nil && !bye {
		err = errors.New("LOGOUT: no BYE")
	}
	return err
}

// untaggedNum parses "* N KIND ...".
func untaggedNum(line []byte) (int, string, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("* "))
	if !ok {
		return 0, "", false
	}
	num, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(string(num))
	if err != nil {
		return 0, "", false
	}
	kind, _, _ := bytes.Cut(rest, []byte(" "))
	return n, strings.ToUpper(string(kind)), true
}

// parseSearch parses "* SEARCH n n n".
func parseSearch(line []byte) ([]int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("* SEARCH"))
	if !ok || (len(rest) > 0 && rest[0] != ' ') {
		return nil, false
	}
	var nums []int
	for _, f := range bytes.Fields(rest) {
		n, err := strconv.Atoi(string(f))
		if err != nil {
			break // "(MODSEQ n)" of RFC 7162
		}
		nums = append(nums, n)
	}
	return nums, true
}

// fetchFlags returns the FLAGS list of a FETCH response, ok false if none.
func fetchFlags(line []byte) ([]string, bool) {
	i := bytes.Index(line, []byte("FLAGS ("))
	if i < 0 {
		return nil, false
	}
	rest := line[i+len("FLAGS ("):]
	j := bytes.IndexByte(rest, ')')
	if j < 0 {
		return nil, false
	}
	return strings.Fields(string(rest[:j])), true
}
