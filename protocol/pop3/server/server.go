package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"posthorn/protocol/netserve"
	"posthorn/protocol/pop3"
	"posthorn/protocol/sasl"
)

// Limits bounds every length, count and wait of a session. The zero value of
// a field means its default (see DefaultLimits).
type Limits struct {
	// CommandLine is the longest command line, without CRLF.
	// RFC 2449 4: 255 octets including the CRLF.
	CommandLine int
	// AuthLine is the longest AUTH response line, without CRLF. RFC 5034 4:
	// responses "may be of arbitrary length"; the mechanisms accept at most
	// sasl.MaxResponse octets, which is sasl.MaxResponseLine in base64.
	AuthLine int
	// IdleTimeout is the wait for the next command.
	// RFC 1939 3: an autologout timer "MUST be of at least 10 minutes".
	IdleTimeout time.Duration
	// WriteTimeout is the longest a single write to the client may block;
	// a client that reads a long RETR slowly keeps going, one that stops
	// reading is dropped.
	WriteTimeout time.Duration
	// StoreTimeout bounds each Backend call and credential check.
	StoreTimeout time.Duration
	// TLSHandshakeTimeout bounds the implicit TLS and STLS handshakes.
	TLSHandshakeTimeout time.Duration
	// SoftErrors is the count of -ERR replies after which each one is
	// delayed by ErrorDelay; HardErrors closes the session (as SMTP's
	// limits; RFC 1939 sets none).
	SoftErrors int
	HardErrors int
	ErrorDelay time.Duration
	// AuthFailures closes the session after this many failed logins
	// (RFC 1939 4: "After returning a negative status indicator, the
	// server may close the connection").
	AuthFailures int
	// PerIPConnections caps concurrent sessions from one address;
	// Connections caps all sessions of the listener.
	PerIPConnections int
	Connections      int
	// ShutdownGrace is how long a command in flight (a RETR, the UPDATE
	// after QUIT) may take to finish after shutdown begins.
	ShutdownGrace time.Duration
}

// DefaultLimits are the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		CommandLine:         pop3.MaxCommandLine,
		AuthLine:            sasl.MaxResponseLine,
		IdleTimeout:         10 * time.Minute,
		WriteTimeout:        5 * time.Minute,
		StoreTimeout:        time.Minute,
		TLSHandshakeTimeout: 30 * time.Second,
		SoftErrors:          10,
		HardErrors:          20,
		ErrorDelay:          time.Second,
		AuthFailures:        3,
		PerIPConnections:    50,
		Connections:         1000,
		ShutdownGrace:       30 * time.Second,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	setDefault(&l.CommandLine, d.CommandLine)
	setDefault(&l.AuthLine, d.AuthLine)
	setDefault(&l.IdleTimeout, d.IdleTimeout)
	setDefault(&l.WriteTimeout, d.WriteTimeout)
	setDefault(&l.StoreTimeout, d.StoreTimeout)
	setDefault(&l.TLSHandshakeTimeout, d.TLSHandshakeTimeout)
	setDefault(&l.SoftErrors, d.SoftErrors)
	setDefault(&l.HardErrors, d.HardErrors)
	setDefault(&l.ErrorDelay, d.ErrorDelay)
	setDefault(&l.AuthFailures, d.AuthFailures)
	setDefault(&l.PerIPConnections, d.PerIPConnections)
	setDefault(&l.Connections, d.Connections)
	setDefault(&l.ShutdownGrace, d.ShutdownGrace)
	return l
}

func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Config configures a Server.
type Config struct {
	Hostname string // for the greeting and the sign-off
	Listener string // the name of this listener for logs: "pop3", "pop3s"
	Backend  Backend
	// Auth checks USER/PASS and AUTH credentials; nil means nobody can log in.
	Auth sasl.Credentials
	// Limiter slows repeated authentication failures and locks out
	// addresses that keep failing; may be nil. Share one with every service.
	Limiter *sasl.Limiter
	// ConnectionRate limits how often one address may connect; may be nil.
	// Share one with every service.
	ConnectionRate *netserve.RateLimiter
	// Locks is the maildrop lock table; share one between the POP3
	// listeners. Nil gives this server a table of its own.
	Locks *Locks
	// TLS enables STLS when set (RFC 2595 4). Implicit TLS (port 995) is a
	// listener wrapped by tls.NewListener; the handshake then runs in the
	// session's goroutine.
	TLS *tls.Config
	// AllowPlaintextAuth permits USER/PASS and AUTH PLAIN/LOGIN without TLS
	// from non-loopback clients (allow_plaintext_auth).
	AllowPlaintextAuth bool
	Limits             Limits
	Logger             *slog.Logger
	// Trace, when set, receives a copy of all traffic ("C: " and "S: "
	// lines) for recording transcripts. Never in production: it records
	// passwords and mail.
	Trace io.Writer
}

// Server accepts POP3 sessions on listeners.
type Server struct {
	cfg    Config
	limits Limits
	log    *slog.Logger
	locks  *Locks

	conns *netserve.Server

	// loopbackIsRemote lets tests, which can only connect from loopback,
	// see the rules for remote clients.
	loopbackIsRemote bool
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		cfg:    cfg,
		limits: cfg.Limits.withDefaults(),
		log:    cfg.Logger,
		locks:  cfg.Locks,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.locks == nil {
		s.locks = NewLocks()
	}
	if s.cfg.Listener == "" {
		s.cfg.Listener = "pop3"
	}
	if s.cfg.Hostname == "" {
		s.cfg.Hostname = "localhost"
	}
	s.conns = netserve.New(netserve.Config{
		Listener:         s.cfg.Listener,
		PerIPConnections: s.limits.PerIPConnections,
		Connections:      s.limits.Connections,
		ShutdownGrace:    s.limits.ShutdownGrace,
		Rate:             s.cfg.ConnectionRate,
		// RFC 1939 4 only defines a positive greeting; a negative one
		// with SYS/TEMP (RFC 3206 4: a temporary problem, the client
		// should try again later, not ask for a new password) tells
		// clients to come back later. IN-USE (RFC 2449 8.1.2) is for a
		// locked maildrop, LOGIN-DELAY for a user's login frequency.
		Refusal:     pop3.Err(pop3.CodeSysTemp, "Too many connections, try again later").AppendTo(nil),
		RateRefusal: pop3.Err(pop3.CodeSysTemp, "Too many connection attempts, try again later").AppendTo(nil),
		Logger:      s.log,
	})
	return s
}

// Serve accepts connections on ln until ctx is done, then stops accepting,
// lets commands in flight finish within Limits.ShutdownGrace, closes idle
// sessions (which removes nothing: RFC 1939 6), and returns when every
// session has ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.conns.Serve(ctx, ln, func(conn net.Conn, remote netip.AddrPort) (*netserve.Guard, func()) {
		sess := newSession(s, conn, remote)
		return sess.guard, sess.run
	})
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int { return s.conns.Sessions() }
