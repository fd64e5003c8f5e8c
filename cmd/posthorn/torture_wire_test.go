package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The torture test's wire clients (IMAP, POP3, SMTP): small, one command
// at a time, every read bounded in size and time.

const (
	tortureIOTimeout = 30 * time.Second
	tortureMaxLine   = 64 << 10
	tortureMaxData   = 1 << 20
)

// tortureRefused is a reply the server did send but that is not the one
// expected: unlike a broken connection, never the work of a kill.
type tortureRefused struct{ cmd, reply string }

func (e *tortureRefused) Error() string { return fmt.Sprintf("%s: %s", e.cmd, e.reply) }

// isTortureRefused reports whether err is a reply rather than a lost
// connection; net/smtp returns replies as *textproto.Error.
func isTortureRefused(err error) bool {
	var r *tortureRefused
	var tp *textproto.Error
	return errors.As(err, &r) || errors.As(err, &tp)
}

// tortureReadLine reads one CRLF-terminated line of at most tortureMaxLine
// octets and returns it without the line end.
func tortureReadLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > tortureMaxLine {
			return "", errors.New("line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(line), "\r\n"), nil
	}
}

// tortureIMAP is an IMAP client for the torture test.
type tortureIMAP struct {
	conn net.Conn
	br   *bufio.Reader
	tag  int
}

// tortureIMAPReply is what one command got: its untagged responses (each
// with its literals inline) and the text of its tagged OK.
type tortureIMAPReply struct {
	untagged []string
	ok       string
}

func tortureDialIMAP(addr, user, pass string) (*tortureIMAP, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &tortureIMAP{conn: conn, br: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(tortureIOTimeout))
	greeting, err := c.readResponse()
	if err == nil && !strings.HasPrefix(greeting, "* OK") {
		err = &tortureRefused{"greeting", greeting}
	}
	if err == nil {
		_, err = c.run(fmt.Sprintf("LOGIN %q %q", user, pass), nil)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *tortureIMAP) close() { c.conn.Close() }

// readResponse reads one response line and the literals it announces.
func (c *tortureIMAP) readResponse() (string, error) {
	var b strings.Builder
	for {
		line, err := tortureReadLine(c.br)
		if err != nil {
			return "", err
		}
		b.WriteString(line)
		n, ok := tortureLiteralSize(line)
		if !ok {
			return b.String(), nil
		}
		if n > tortureMaxData {
			return "", fmt.Errorf("literal of %d octets", n)
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.br, lit); err != nil {
			return "", err
		}
		b.WriteString("\r\n")
		b.Write(lit)
	}
}

var tortureLiteralRE = regexp.MustCompile(`~?\{(\d+)\}$`)

func tortureLiteralSize(line string) (int, bool) {
	m := tortureLiteralRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// run sends one command (and literal, as a synchronizing literal at the end
// of the command line, when not nil) and reads until its tagged reply; any
// tagged reply but OK is a *tortureRefused.
func (c *tortureIMAP) run(cmd string, literal []byte) (*tortureIMAPReply, error) {
	c.tag++
	tag := "t" + strconv.Itoa(c.tag)
	c.conn.SetDeadline(time.Now().Add(tortureIOTimeout))
	line := tag + " " + cmd
	if literal != nil {
		line += "{" + strconv.Itoa(len(literal)) + "}"
	}
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		return nil, err
	}
	if literal != nil {
		cont, err := c.readResponse()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(cont, "+") {
			return nil, &tortureRefused{cmd, cont}
		}
		if _, err := c.conn.Write(append(literal, '\r', '\n')); err != nil {
			return nil, err
		}
	}
	r := &tortureIMAPReply{}
	for {
		resp, err := c.readResponse()
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(resp, tag+" "); ok {
			if ok, isOK := strings.CutPrefix(rest, "OK"); isOK {
				r.ok = strings.TrimSpace(ok)
				return r, nil
			}
			return nil, &tortureRefused{cmd, rest}
		}
		if strings.HasPrefix(resp, "* BYE") {
			return nil, &tortureRefused{cmd, resp}
		}
		r.untagged = append(r.untagged, resp)
	}
}

// count returns how many untagged responses end with " "+kind ("EXPUNGE").
func (r *tortureIMAPReply) count(kind string) int {
	n := 0
	for _, u := range r.untagged {
		if strings.HasPrefix(u, "* ") && strings.HasSuffix(u, " "+kind) {
			n++
		}
	}
	return n
}

// code returns the arguments of a response code ("APPENDUID") found in the
// tagged OK or an untagged OK.
func (r *tortureIMAPReply) code(name string) (string, bool) {
	for _, text := range append([]string{r.ok}, r.untagged...) {
		text = strings.TrimPrefix(text, "* OK ")
		if rest, ok := strings.CutPrefix(text, "["+name+" "); ok {
			args, _, found := strings.Cut(rest, "]")
			return args, found
		}
	}
	return "", false
}

var (
	tortureFetchUIDRE   = regexp.MustCompile(`[( ]UID (\d+)`)
	tortureFetchFlagsRE = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	tortureTokenRE      = regexp.MustCompile(`(?i)X-Torture: *(tt-[a-z]+-\d+)`)
	tortureStatusRE     = regexp.MustCompile(`(UIDNEXT|UIDVALIDITY|MESSAGES) (\d+)`)
)

// tortureFolderRead is one folder as STATUS, SELECT, one UID FETCH and
// STATUS again saw it. Mail may arrive between them: every UID read is
// below uidNextAfter, and a message not read has a UID of at least uidNext.
type tortureFolderRead struct {
	validity, uidNext, uidNextAfter uint32
	msgs                            map[uint32]tortureFlags // with token
}

// tortureFlags is a message's token and the flags the test sets.
type tortureFlags struct {
	token            string
	flagged, deleted bool
}

// status returns a folder's UIDVALIDITY and UIDNEXT (RFC 9051 6.3.11).
func (c *tortureIMAP) status(folder string) (validity, uidNext uint32, err error) {
	r, err := c.run("STATUS "+folder+" (UIDNEXT UIDVALIDITY)", nil)
	if err != nil {
		return 0, 0, err
	}
	for _, u := range r.untagged {
		if !strings.HasPrefix(u, "* STATUS ") {
			continue
		}
		for _, m := range tortureStatusRE.FindAllStringSubmatch(u, -1) {
			n, _ := strconv.ParseUint(m[2], 10, 32)
			if m[1] == "UIDNEXT" {
				uidNext = uint32(n)
			} else if m[1] == "UIDVALIDITY" {
				validity = uint32(n)
			}
		}
	}
	if validity == 0 || uidNext == 0 {
		return 0, 0, &tortureRefused{"STATUS " + folder, strings.Join(r.untagged, "; ")}
	}
	return validity, uidNext, nil
}

// selectFolder selects folder and returns its UIDVALIDITY.
func (c *tortureIMAP) selectFolder(folder string) (uint32, error) {
	r, err := c.run("SELECT "+folder, nil)
	if err != nil {
		return 0, err
	}
	args, ok := r.code("UIDVALIDITY")
	v, perr := strconv.ParseUint(args, 10, 32)
	if !ok || perr != nil {
		return 0, &tortureRefused{"SELECT " + folder, "no UIDVALIDITY"}
	}
	return uint32(v), nil
}

// readFolder reads every message's UID, flags and token.
func (c *tortureIMAP) readFolder(folder string) (*tortureFolderRead, error) {
	validity, uidNext, err := c.status(folder)
	if err != nil {
		return nil, err
	}
	selValidity, err := c.selectFolder(folder)
	if err != nil {
		return nil, err
	}
	if selValidity != validity {
		return nil, &tortureRefused{"SELECT " + folder, fmt.Sprintf("UIDVALIDITY %d, STATUS said %d", selValidity, validity)}
	}
	r, err := c.run("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Torture)])", nil)
	if err != nil {
		return nil, err
	}
	fr := &tortureFolderRead{validity: validity, uidNext: uidNext, msgs: map[uint32]tortureFlags{}}
	if _, fr.uidNextAfter, err = c.status(folder); err != nil {
		return nil, err
	}
	for _, u := range r.untagged {
		if !strings.Contains(u, " FETCH (") {
			continue
		}
		um := tortureFetchUIDRE.FindStringSubmatch(u)
		fm := tortureFetchFlagsRE.FindStringSubmatch(u)
		if um == nil || fm == nil {
			return nil, &tortureRefused{"UID FETCH in " + folder, u}
		}
		uid, _ := strconv.ParseUint(um[1], 10, 32)
		m := tortureFlags{flagged: strings.Contains(fm[1], `\Flagged`), deleted: strings.Contains(fm[1], `\Deleted`)}
		if tm := tortureTokenRE.FindStringSubmatch(u); tm != nil {
			m.token = tm[1]
		}
		fr.msgs[uint32(uid)] = m
	}
	return fr, nil
}

// tortureReadAccount reads every folder of an account; with folders nil,
// every folder LIST shows.
func tortureReadAccount(addr, account string, folders []string) (map[string]*tortureFolderRead, error) {
	c, err := tortureDialIMAP(addr, account, torturePassword(account))
	if err != nil {
		return nil, err
	}
	defer c.close()
	if folders == nil {
		r, err := c.run(`LIST "" "*"`, nil)
		if err != nil {
			return nil, err
		}
		for _, u := range r.untagged {
			if !strings.HasPrefix(u, "* LIST ") {
				continue
			}
			name := u[strings.LastIndexByte(u, ' ')+1:]
			folders = append(folders, strings.Trim(name, `"`))
		}
	}
	out := map[string]*tortureFolderRead{}
	for _, f := range folders {
		if out[f], err = c.readFolder(f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// torturePOP3 is a POP3 client for the torture test.
type torturePOP3 struct {
	conn net.Conn
	br   *bufio.Reader
}

func tortureDialPOP3(addr, user, pass string) (*torturePOP3, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &torturePOP3{conn: conn, br: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(tortureIOTimeout))
	_, err = c.reply("greeting")
	if err == nil {
		_, err = c.cmd("USER " + user)
	}
	if err == nil {
		_, err = c.cmd("PASS " + pass)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *torturePOP3) close() { c.conn.Close() }

func (c *torturePOP3) reply(cmd string) (string, error) {
	line, err := tortureReadLine(c.br)
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(line, "+OK")
	if !ok {
		return "", &tortureRefused{cmd, line}
	}
	return strings.TrimSpace(rest), nil
}

func (c *torturePOP3) cmd(cmd string) (string, error) {
	c.conn.SetDeadline(time.Now().Add(tortureIOTimeout))
	if _, err := c.conn.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	return c.reply(cmd)
}

// multi sends a command with a multi-line answer (RFC 1939 3) and returns
// its lines, dot-unstuffed.
func (c *torturePOP3) multi(cmd string) ([]string, error) {
	if _, err := c.cmd(cmd); err != nil {
		return nil, err
	}
	var lines []string
	size := 0
	for {
		line, err := tortureReadLine(c.br)
		if err != nil {
			return nil, err
		}
		if line == "." {
			return lines, nil
		}
		if size += len(line); size > tortureMaxData {
			return nil, errors.New(cmd + ": answer too long")
		}
		lines = append(lines, strings.TrimPrefix(line, "."))
	}
}

// tortureSend delivers one message over SMTP, with AUTH PLAIN when user is
// set (submission). nil means the server answered 250 to the final dot.
func tortureSend(addr, user, from string, rcpts []string, body []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(tortureIOTimeout))
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		return err
	}
	if err := c.Hello("load.torture.test"); err != nil {
		return err
	}
	if user != "" {
		// net/smtp sends PLAIN without TLS only to 127.0.0.1; DESIGN allows
		// plaintext AUTH from loopback.
		if err := c.Auth(smtp.PlainAuth("", user, torturePassword(user), "127.0.0.1")); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil { // reads the reply to the final dot
		return err
	}
	c.Quit()
	return nil
}
