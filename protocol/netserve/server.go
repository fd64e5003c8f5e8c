// Package netserve is the connection-serving mechanism shared by the SMTP,
// POP3 and IMAP servers: the Accept loop, the per-address and total
// connection caps, the per-address connection rate, and the shutdown of
// sessions.
//
// A protocol server owns one Server and calls its Serve for each of its
// listeners; the function it passes starts a session on an admitted
// connection. Each session holds a Guard, through which it tells the
// Server whether it is waiting for the client (idle) or running a command
// (busy), so that shutdown can wake idle sessions at once and give busy
// ones a grace period to finish.
package netserve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server.
type Config struct {
	// Listener names the service in logs ("smtp", "pop3s", ...).
	Listener string
	// PerIPConnections caps concurrent sessions from one address (an IPv6
	// client by its /64, see ClientKey); Connections caps all sessions of
	// the Server. Both must be positive.
	PerIPConnections int
	Connections      int
	// Rate limits how often one address may connect; share one among all
	// Servers. Nil: no limit.
	Rate *RateLimiter
	// ShutdownGrace is how long a session inside a command may take to
	// finish it after shutdown begins.
	ShutdownGrace time.Duration
	// Refusal is written to a connection refused by the caps before it is
	// closed (the protocol's "come back later" greeting), except on a
	// *tls.Conn: on implicit TLS the write would run the handshake in the
	// Accept loop, where a slow client could stall it, so such a
	// connection is only closed.
	Refusal []byte
	// RateRefusal is written instead of Refusal to a connection refused
	// by Rate; nil: Refusal.
	RateRefusal []byte
	Logger      *slog.Logger
}

// refusalWriteTimeout bounds the write of Config.Refusal.
const refusalWriteTimeout = 5 * time.Second

// Server accepts connections on listeners and keeps count of their
// sessions. Its zero value is not usable; call New.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	perIP    map[netip.Prefix]int
	sessions map[*Guard]struct{}
	closing  atomic.Bool
	wg       sync.WaitGroup
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		perIP:    make(map[netip.Prefix]int),
		sessions: make(map[*Guard]struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// StartFunc starts a session on an admitted connection. It is called in the
// Accept loop, so it must not block or do I/O: it builds the session and
// returns the session's Guard (from NewGuard(conn)) and the function that
// runs it, which Serve calls in the session's own goroutine. The
// connection is the session's to close.
type StartFunc func(conn net.Conn, remote netip.AddrPort) (g *Guard, run func())

// Serve accepts connections on ln until ctx is done, then closes ln,
// interrupts every session (see Guard) and returns once every session of
// the Server, on any listener, has ended. Temporary Accept errors (EMFILE)
// are logged and retried after a back-off.
func (s *Server) Serve(ctx context.Context, ln net.Listener, start StartFunc) error {
	stop := context.AfterFunc(ctx, func() {
		s.closing.Store(true)
		ln.Close()
		s.interruptSessions()
	})
	defer stop()

	var tempDelay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				break
			}
			// Accept errors such as EMFILE are temporary: back off, as net/http does.
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "listener", s.cfg.Listener, "err", err, "retry_in", tempDelay)
			time.Sleep(tempDelay)
			continue
		}
		tempDelay = 0
		s.startSession(conn, start)
	}
	s.wg.Wait()
	return nil
}

// startSession applies the connection caps and the rate, and runs the
// session.
func (s *Server) startSession(conn net.Conn, start StartFunc) {
	remote := AddrPort(conn.RemoteAddr())
	ip, _ := ClientKey(remote.Addr()) // the zero Prefix for a non-IP address
	s.mu.Lock()
	// A connection accepted while shutdown begins is refused too: it would
	// otherwise miss the interrupt.
	if s.closing.Load() || len(s.sessions) >= s.cfg.Connections || s.perIP[ip] >= s.cfg.PerIPConnections {
		s.mu.Unlock()
		s.log.Info("connection refused: too many connections", "listener", s.cfg.Listener, "remote", remote.String())
		s.refuse(conn, s.cfg.Refusal)
		return
	}
	// The rate is asked last, so that a connection refused by a cap takes
	// no token.
	if !s.cfg.Rate.Allow(remote.Addr()) {
		s.mu.Unlock()
		s.log.Info("connection refused: connection rate exceeded", "listener", s.cfg.Listener, "remote", remote.String())
		msg := s.cfg.RateRefusal
		if msg == nil {
			msg = s.cfg.Refusal
		}
		s.refuse(conn, msg)
		return
	}
	g, run := start(conn, remote)
	s.perIP[ip]++
	s.sessions[g] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			delete(s.sessions, g)
			s.mu.Unlock()
		}()
		run()
	}()
}

// refuse writes msg (not on implicit TLS, see Config.Refusal) and closes
// conn. Nothing is read.
func (s *Server) refuse(conn net.Conn, msg []byte) {
	if _, isTLS := conn.(*tls.Conn); !isTLS && len(msg) > 0 {
		conn.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
		conn.Write(msg)
	}
	conn.Close()
}

// interruptSessions wakes idle sessions and gives sessions in a command
// ShutdownGrace to finish it.
func (s *Server) interruptSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for g := range s.sessions {
		g.interrupt(s.cfg.ShutdownGrace)
	}
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// AddrPort returns the address and port of a, with an IPv4-mapped IPv6
// address unmapped (so that per-address caps and logs see one form), or
// the zero AddrPort when a is nil or not an IP address.
func AddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
