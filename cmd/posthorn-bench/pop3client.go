package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The POP3 load client: one connection per account, each doing
//
//	USER u / PASS p            (each waits for its reply)
//	STAT + LIST                (one write)
//	RETR 1 .. RETR n           (pipelined, at most window outstanding)
//	QUIT                       (nothing was marked deleted: nothing is removed)
//
// and checking everything it gets back: every reply is +OK, STAT agrees
// with LIST, each message arrives with exactly the octets LIST announced
// (RFC 1939 11: CRLF line ends, stuffed dots not counted), and the
// retrieved messages, as (size, CRC-32C) pairs, are exactly those of the
// account (pop3Account.want), in any order.

// pop3Account is one maildrop of the load.
type pop3Account struct {
	user, pass string
	want       []msgSum // the messages it holds, sorted (sortSums)
}

// msgSum identifies a message's content: its size and CRC-32C.
type msgSum struct {
	size int64
	crc  uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func sumOf(raw []byte) msgSum {
	return msgSum{size: int64(len(raw)), crc: crc32.Update(0, castagnoli, raw)}
}

func sortSums(s []msgSum) {
	slices.SortFunc(s, func(a, b msgSum) int {
		if a.size != b.size {
			return int(a.size - b.size)
		}
		return int(int64(a.crc) - int64(b.crc))
	})
}

// pop3Run is what one POP3 load measured.
type pop3Run struct {
	msgs  int           // messages retrieved and verified, all sessions
	bytes int64         // their octets (RFC 1939 sizes)
	d     time.Duration // from the first dial to the last QUIT's +OK
	login []time.Duration
}

// loginLatency summarises USER-to-PASS's +OK times, one per session.
func (p pop3Run) loginLatency() string {
	if len(p.login) == 0 {
		return ""
	}
	l := slices.Clone(p.login)
	slices.Sort(l)
	return fmt.Sprintf("login p50 %s max %s", l[len(l)/2].Round(10*time.Microsecond), l[len(l)-1].Round(10*time.Microsecond))
}

// runPOP3Load runs one session per account against addr, all at once, from
// 127.0.0.1. The first failing session cancels the others.
func runPOP3Load(parent context.Context, addr string, accounts []pop3Account, window int) (pop3Run, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var msgs, octets atomic.Int64
	var failed atomic.Int32
	login := make([]time.Duration, len(accounts))
	t0 := time.Now()
	var wg sync.WaitGroup
	for i, acct := range accounts {
		wg.Go(func() {
			s := pop3Session{acct: acct, window: window}
			err := s.run(ctx, addr)
			msgs.Add(int64(s.msgs))
			octets.Add(s.bytes)
			login[i] = s.login
			if err != nil {
				failed.Add(1)
				cancel(fmt.Errorf("session %d (%s): %w", i+1, acct.user, err))
			}
		})
	}
	wg.Wait()
	r := pop3Run{msgs: int(msgs.Load()), bytes: octets.Load(), d: time.Since(t0), login: login}
	if err := parent.Err(); err != nil {
		return r, context.Cause(parent)
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("%w (%d of %d sessions failed)", context.Cause(ctx), failed.Load(), len(accounts))
	}
	return r, nil
}

// pop3Session is one client connection.
type pop3Session struct {
	acct   pop3Account
	window int
	r      *bufio.Reader
	w      *bufio.Writer
	msgs   int
	bytes  int64
	login  time.Duration
}

func (s *pop3Session) run(ctx context.Context, addr string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(replyTimeout))
	s.r = bufio.NewReaderSize(conn, 64<<10)
	s.w = bufio.NewWriterSize(conn, 4096)

	if _, err := s.status("greeting"); err != nil {
		return err
	}
	t := time.Now()
	if _, err := s.command("USER", "USER "+s.acct.user); err != nil {
		return err
	}
	if _, err := s.command("PASS", "PASS "+s.acct.pass); err != nil {
		return err
	}
	s.login = time.Since(t)

	// STAT and LIST in one write (RFC 2449 6.6, PIPELINING; a server
	// without it still answers them in order).
	s.w.WriteString("STAT\r\nLIST\r\n")
	if err := s.w.Flush(); err != nil {
		return err
	}
	stat, err := s.status("STAT")
	if err != nil {
		return err
	}
	count, total, err := parseStat(stat)
	if err != nil {
		return err
	}
	if _, err := s.status("LIST"); err != nil {
		return err
	}
	sizes, err := s.scanListing(count)
	if err != nil {
		return err
	}
	var sum int64
	for _, v := range sizes {
		sum += v
	}
	if sum != total {
		return fmt.Errorf("STAT says %d octets, LIST adds up to %d", total, sum)
	}
	if count != len(s.acct.want) {
		return fmt.Errorf("maildrop holds %d messages, want %d", count, len(s.acct.want))
	}

	got := make([]msgSum, 0, count)
	sent := 0
	half := s.window / 2
	for len(got) < count {
		if sent < count && sent-len(got) <= half {
			for sent < count && sent-len(got) < s.window {
				sent++
				s.w.WriteString("RETR " + strconv.Itoa(sent) + "\r\n")
			}
			if err := s.w.Flush(); err != nil {
				return err
			}
			conn.SetDeadline(time.Now().Add(replyTimeout))
		}
		k := len(got) + 1
		if _, err := s.status("RETR " + strconv.Itoa(k)); err != nil {
			return err
		}
		m, err := readBody(s.r)
		if err != nil {
			return fmt.Errorf("RETR %d: %w", k, err)
		}
		if m.size != sizes[k-1] {
			return fmt.Errorf("RETR %d: %d octets, LIST said %d", k, m.size, sizes[k-1])
		}
		got = append(got, m)
		s.msgs++
		s.bytes += m.size
	}
	sortSums(got)
	if !slices.Equal(got, s.acct.want) {
		return errors.New("the retrieved messages differ from the ones stored (size or CRC-32C)")
	}
	if _, err := s.command("QUIT", "QUIT"); err != nil {
		return err
	}
	return nil
}

// command sends one command line and reads its status line.
func (s *pop3Session) command(what, line string) (string, error) {
	s.w.WriteString(line + "\r\n")
	if err := s.w.Flush(); err != nil {
		return "", err
	}
	return s.status(what)
}

// status reads a status line: "+OK[ text]" is returned as the text, "-ERR"
// is an error.
func (s *pop3Session) status(what string) (string, error) {
	l, err := readLine(s.r)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if rest, ok := strings.CutPrefix(l, "+OK"); ok && (rest == "" || rest[0] == ' ') {
		return strings.TrimPrefix(rest, " "), nil
	}
	if len(l) > 200 {
		l = l[:200] + "..."
	}
	return "", fmt.Errorf("%s: %q", what, l)
}

// scanListing reads LIST's multi-line scan listing: "n size" for
// n = 1..count in order (no message is marked deleted), then ".".
func (s *pop3Session) scanListing(count int) ([]int64, error) {
	sizes := make([]int64, 0, count)
	for {
		l, err := readLine(s.r)
		if err != nil {
			return nil, fmt.Errorf("LIST: %w", err)
		}
		if l == "." {
			break
		}
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != strconv.Itoa(len(sizes)+1) {
			return nil, fmt.Errorf("LIST: unexpected line %q", l)
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("LIST: bad size in %q", l)
		}
		sizes = append(sizes, v)
	}
	if len(sizes) != count {
		return nil, fmt.Errorf("LIST lists %d messages, STAT said %d", len(sizes), count)
	}
	return sizes, nil
}

// parseStat parses STAT's "count size" (RFC 1939 5: more may follow).
func parseStat(text string) (count int, size int64, err error) {
	f := strings.Fields(text)
	if len(f) >= 2 {
		count, err = strconv.Atoi(f[0])
		if err == nil {
			size, err = strconv.ParseInt(f[1], 10, 64)
		}
		if err == nil && count >= 0 && size >= 0 {
			return count, size, nil
		}
	}
	return 0, 0, fmt.Errorf("STAT: bad drop listing %q", text)
}

// readLine reads one CRLF-terminated line of at most 64 KiB and returns it
// without the CRLF.
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		return "", fmt.Errorf("line without CRLF: %q", b)
	}
	return string(b[:len(b)-2]), nil
}

// readBody reads a multi-line response's body up to its termination line
// (RFC 1939 3): a line starting with "." loses that "."; ".CRLF" ends it.
// Every line must end in CRLF. It returns the size and CRC-32C of the body
// as the client keeps it (line ends included, stuffed dots not).
func readBody(r *bufio.Reader) (msgSum, error) {
	var m msgSum
	atStart := true // the next byte starts a line
	prevCR := false // the last byte of the line so far is CR
	for {
		b, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return m, err
		}
		full := err == nil // b ends with LF
		if atStart && len(b) > 0 && b[0] == '.' {
			if full && len(b) == 3 && b[1] == '\r' {
				return m, nil
			}
			b = b[1:]
		}
		if full {
			cr := (len(b) >= 2 && b[len(b)-2] == '\r') || (len(b) == 1 && prevCR)
			if !cr {
				return m, errors.New("line ending in a bare LF")
			}
		}
		m.crc = crc32.Update(m.crc, castagnoli, b)
		m.size += int64(len(b))
		atStart = full
		prevCR = len(b) > 0 && b[len(b)-1] == '\r'
	}
}
