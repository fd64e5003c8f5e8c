package main

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// tortureSink is the remote domain's SMTP server: it records the token of
// every message it answers 250, per recipient; now and then it answers 451
// or drops the connection instead, so that the spool retries.
type tortureSink struct {
	ln   net.Listener
	port string
	mu   sync.Mutex
	rng  *rand.Rand
	got  map[tortureCopy]int // (recipient, token) → times accepted
	bad  []string            // messages without a token
	wg   sync.WaitGroup
}

func newTortureSink(t *testing.T, ip string, seed uint64) *tortureSink {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := &tortureSink{ln: ln, port: port, rng: rand.New(rand.NewPCG(seed, 5)), got: map[tortureCopy]int{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *tortureSink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.session(c)
		}()
	}
}

// fate decides how the sink answers the final dot: 250, 451 or nothing.
func (s *tortureSink) fate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := s.rng.IntN(100); {
	case n < 5:
		return 451
	case n < 8:
		return 0
	}
	return 250
}

func (s *tortureSink) session(c net.Conn) {
	br := bufio.NewReader(c)
	say := func(line string) bool {
		c.SetDeadline(time.Now().Add(tortureIOTimeout))
		_, err := c.Write([]byte(line + "\r\n"))
		return err == nil
	}
	if !say("220 mx.sink.test torture sink") {
		return
	}
	var rcpts []string
	for {
		line, err := tortureReadLine(br)
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			say("250 mx.sink.test")
		case "MAIL", "RSET", "NOOP":
			rcpts = nil
			say("250 2.0.0 OK")
		case "RCPT":
			_, addr, _ := strings.Cut(arg, "<")
			addr, _, _ = strings.Cut(addr, ">")
			rcpts = append(rcpts, strings.ToLower(addr))
			say("250 2.1.5 OK")
		case "DATA":
			say("354 go ahead")
			data, err := tortureReadData(br)
			if err != nil {
				return
			}
			switch s.fate() {
			case 0:
				return
			case 451:
				say("451 4.3.0 torture sink says later")
				continue
			}
			s.record(rcpts, data)
			rcpts = nil
			say("250 2.0.0 accepted")
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.1 not here")
		}
	}
}

func (s *tortureSink) record(rcpts []string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := tortureTokenRE.FindSubmatch(data)
	if m == nil {
		s.bad = append(s.bad, string(data[:min(len(data), 300)]))
		return
	}
	for _, r := range rcpts {
		s.got[tortureCopy{r, string(m[1])}]++
	}
}

// received returns a copy of what the sink accepted.
func (s *tortureSink) received() (map[tortureCopy]int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := make(map[tortureCopy]int, len(s.got))
	for k, v := range s.got {
		got[k] = v
	}
	return got, append([]string(nil), s.bad...)
}

// tortureReadData reads a DATA body up to CRLF.CRLF (bounded).
func tortureReadData(br *bufio.Reader) ([]byte, error) {
	var b bytes.Buffer
	for {
		line, err := tortureReadLine(br)
		if err != nil {
			return nil, err
		}
		if line == "." {
			return b.Bytes(), nil
		}
		if b.Len() > tortureMaxData {
			return nil, errors.New("DATA too long")
		}
		b.WriteString(strings.TrimPrefix(line, "."))
		b.WriteString("\r\n")
	}
}
