package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// sinkIP is the loopback address of the relay sink: not 127.0.0.1, where
// the relays listen, so that neither mistakes the sink for itself.
const sinkIP = "127.0.0.9"

// sinkHost is the name the sink gives in its greeting and EHLO reply.
const sinkHost = "mx.sink.test"

// sink is the next hop of the relay benchmark: an SMTP server that accepts
// every transaction (EHLO with PIPELINING, 8BITMIME, SIZE), reads DATA to
// CRLF.CRLF and answers 250. It counts the messages of the load by the
// number in their Subject (subjectPrefix), so that it knows when all N of
// them have arrived, however many connections the relay uses, and can tell
// duplicates from new ones.
type sink struct {
	ln   net.Listener
	addr string
	want int
	t0   time.Time
	done chan struct{} // closed when all want messages have arrived

	mu       sync.Mutex
	seen     []bool // by message number, 1..want
	distinct int
	dups     int       // a number seen before: the relay sent a message twice
	other    int       // messages without a bench Subject (a DSN, say)
	allAt    time.Time // when the last of the want messages arrived
	conns    map[net.Conn]struct{}
	total    int // connections accepted
	open     int // connections open now
	maxOpen  int
	closed   bool
	wg       sync.WaitGroup
	protoErr error // the first client that broke the protocol
}

// sinkStats is what the sink saw of one load.
type sinkStats struct {
	distinct, dups, other int
	conns, maxOpen        int
	allAt                 time.Duration // since t0, when all want had arrived; 0: not yet
}

// startSink listens on sinkIP with a free port and waits for want messages.
func startSink(want int) (*sink, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(sinkIP, "0"))
	if err != nil {
		return nil, fmt.Errorf("sink: %w (is %s on the loopback interface?)", err, sinkIP)
	}
	s := &sink{
		ln: ln, addr: ln.Addr().String(), want: want, t0: time.Now(),
		done: make(chan struct{}), seen: make([]bool, want+1), conns: make(map[net.Conn]struct{}),
	}
	s.wg.Go(s.accept)
	return s, nil
}

// port is the sink's TCP port.
func (s *sink) port() string {
	_, p, _ := net.SplitHostPort(s.addr)
	return p
}

// start sets the time from which allAt counts.
func (s *sink) start(t time.Time) {
	s.mu.Lock()
	s.t0 = t
	s.mu.Unlock()
}

func (s *sink) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.total++
		s.open++
		s.maxOpen = max(s.maxOpen, s.open)
		s.mu.Unlock()
		s.wg.Go(func() {
			err := s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.open--
			if err != nil && s.protoErr == nil && !s.closed {
				s.protoErr = err
			}
			s.mu.Unlock()
			c.Close()
		})
	}
}

// sinkLine bounds a command line (RFC 5321 4.5.3.1.4: 512 octets; a little
// slack for extension parameters).
const sinkLine = 4096

var errSinkLine = errors.New("command line too long")

// serve runs one SMTP session. Replies are flushed when the client has
// nothing more buffered, so a pipelined group gets its replies in one write
// (RFC 2920 3.2).
func (s *sink) serve(c net.Conn) error {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 4096)
	reply := func(l string) { w.WriteString(l + "\r\n") }
	reply("220 " + sinkHost + " ESMTP posthorn-bench sink")
	if err := w.Flush(); err != nil {
		return nil
	}
	rcpts := 0
	for {
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > sinkLine {
			reply("500 5.5.6 " + errSinkLine.Error())
			w.Flush()
			return errSinkLine
		}
		if err != nil {
			return nil // the client went away
		}
		verb := line
		if i := bytes.IndexAny(line, " \r\n"); i >= 0 {
			verb = line[:i]
		}
		switch string(bytes.ToUpper(verb)) {
		case "EHLO":
			reply("250-" + sinkHost)
			reply("250-PIPELINING")
			reply("250-8BITMIME")
			reply("250 SIZE 104857600")
		case "HELO":
			reply("250 " + sinkHost)
		case "MAIL":
			rcpts = 0
			reply("250 2.1.0 Ok")
		case "RCPT":
			rcpts++
			reply("250 2.1.5 Ok")
		case "DATA":
			if rcpts == 0 {
				reply("503 5.5.1 No valid recipients")
				break
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			if err := w.Flush(); err != nil {
				return nil
			}
			n, err := readData(r)
			if err != nil {
				return nil
			}
			s.arrived(n)
			rcpts = 0
			reply("250 2.0.0 Ok: queued")
		case "RSET":
			rcpts = 0
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			w.Flush()
			return nil
		default:
			reply("502 5.5.2 Command not implemented")
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return nil
			}
		}
	}
}

// readData reads message data up to the line ".": the message's number from
// its bench Subject header, or 0.
func readData(r *bufio.Reader) (int, error) {
	atStart, inHeader, num := true, true, 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			atStart = false // the rest of a long line follows
			continue
		}
		if err != nil {
			return 0, err
		}
		if atStart {
			switch {
			case string(line) == ".\r\n":
				return num, nil
			case inHeader && string(line) == "\r\n":
				inHeader = false
			case inHeader && num == 0 && bytes.HasPrefix(line, []byte(subjectPrefix)):
				n, err := strconv.Atoi(string(bytes.TrimRight(line[len(subjectPrefix):], "\r\n")))
				if err == nil && n > 0 {
					num = n
				}
			}
		}
		atStart = true
	}
}

// arrived counts message number n (0: not one of the load's).
func (s *sink) arrived(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case n <= 0 || n > s.want:
		s.other++
	case s.seen[n]:
		s.dups++
	default:
		s.seen[n] = true
		s.distinct++
		if s.distinct == s.want {
			s.allAt = time.Now()
			close(s.done)
		}
	}
}

// stats returns what the sink has seen so far.
func (s *sink) stats() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sinkStats{distinct: s.distinct, dups: s.dups, other: s.other, conns: s.total, maxOpen: s.maxOpen}
	if !s.allAt.IsZero() {
		st.allAt = s.allAt.Sub(s.t0)
	}
	return st
}

// close stops the sink and every session still open.
func (s *sink) close() error {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	err := s.protoErr
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
