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
	"posthorn/protocol/sasl"
	"posthorn/protocol/smtp"
)

// Limits bounds every length, count and wait of a session. The zero value of
// a field means its default (see DefaultLimits).
type Limits struct {
	// CommandLine is the longest command line, without CRLF.
	// RFC 5321 4.5.3.1.4: 512 octets including the CRLF.
	CommandLine int
	// TextLine is the longest line of message content including CRLF.
	// RFC 5321 4.5.3.1.6: 1000 octets including the CRLF.
	TextLine int
	// MessageSize is the largest message accepted (RFC 1870), trace headers excluded.
	MessageSize int64
	// Recipients per transaction. RFC 5321 4.5.3.1.8: at least 100 must be accepted.
	Recipients int
	// SoftErrors is the count of errors after which each error reply is delayed
	// by ErrorDelay; HardErrors closes the session with 421 (as Postfix's
	// smtpd_soft_error_limit and smtpd_hard_error_limit).
	SoftErrors int
	HardErrors int
	ErrorDelay time.Duration
	// CommandTimeout is the wait for the next command.
	// RFC 5321 4.5.3.2.7: the server timeout should be at least 5 minutes.
	CommandTimeout time.Duration
	// DataBlockTimeout is the wait for each read of DATA or BDAT content.
	// RFC 5321 4.5.3.2.5 gives the client 3 minutes per block; we allow as long.
	DataBlockTimeout time.Duration
	// DataTimeout bounds one whole DATA or BDAT transfer.
	// RFC 5321 4.5.3.2.6: the client waits 10 minutes for the final reply.
	DataTimeout time.Duration
	// TLSHandshakeTimeout bounds the STARTTLS handshake.
	TLSHandshakeTimeout time.Duration
	// PerIPConnections caps concurrent sessions from one address; Connections
	// caps all sessions of the listener.
	PerIPConnections int
	Connections      int
	// ShutdownGrace is how long a transaction in flight may take to finish after
	// shutdown begins.
	ShutdownGrace time.Duration
}

// DefaultLimits are the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		CommandLine:         510,
		TextLine:            1000,
		MessageSize:         25 << 20,
		Recipients:          1000,
		SoftErrors:          10,
		HardErrors:          20,
		ErrorDelay:          time.Second,
		CommandTimeout:      5 * time.Minute,
		DataBlockTimeout:    3 * time.Minute,
		DataTimeout:         10 * time.Minute,
		TLSHandshakeTimeout: 30 * time.Second,
		PerIPConnections:    50,
		Connections:         1000,
		ShutdownGrace:       30 * time.Second,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.CommandLine == 0 {
		l.CommandLine = d.CommandLine
	}
	if l.TextLine == 0 {
		l.TextLine = d.TextLine
	}
	if l.MessageSize == 0 {
		l.MessageSize = d.MessageSize
	}
	if l.Recipients == 0 {
		l.Recipients = d.Recipients
	}
	if l.SoftErrors == 0 {
		l.SoftErrors = d.SoftErrors
	}
	if l.HardErrors == 0 {
		l.HardErrors = d.HardErrors
	}
	if l.ErrorDelay == 0 {
		l.ErrorDelay = d.ErrorDelay
	}
	if l.CommandTimeout == 0 {
		l.CommandTimeout = d.CommandTimeout
	}
	if l.DataBlockTimeout == 0 {
		l.DataBlockTimeout = d.DataBlockTimeout
	}
	if l.DataTimeout == 0 {
		l.DataTimeout = d.DataTimeout
	}
	if l.TLSHandshakeTimeout == 0 {
		l.TLSHandshakeTimeout = d.TLSHandshakeTimeout
	}
	if l.PerIPConnections == 0 {
		l.PerIPConnections = d.PerIPConnections
	}
	if l.Connections == 0 {
		l.Connections = d.Connections
	}
	if l.ShutdownGrace == 0 {
		l.ShutdownGrace = d.ShutdownGrace
	}
	return l
}

// SessionInfo describes the client of a session, for the Backend.
type SessionInfo struct {
	Listener   string         // "smtp", "submission", "submissions"
	RemoteAddr netip.AddrPort // the client's address
	Helo       string         // the EHLO/HELO argument
	ESMTP      bool           // EHLO rather than HELO
	TLS        *tls.ConnectionState
	Account    string // the authenticated account (RFC 4954), "" before AUTH
}

// RcptTo is one accepted recipient with its DSN parameters.
type RcptTo struct {
	Path   smtp.Path
	Params smtp.RcptParams
}

// Envelope is one transaction handed to Backend.Deliver.
type Envelope struct {
	ID       string // queue ID, also in the Received line and the log
	Session  SessionInfo
	From     smtp.Path
	Mail     smtp.MailParams
	Rcpts    []RcptTo
	Received time.Time
}

// Backend is what the server asks about policy and storage.
type Backend interface {
	// Mail is called for MAIL FROM after the syntax checks. A returned
	// smtp.Reply is sent as is; other errors become 451 4.3.0.
	Mail(ctx context.Context, s *SessionInfo, from smtp.Path, p smtp.MailParams) error
	// Rcpt decides on one recipient; nil accepts it.
	Rcpt(ctx context.Context, s *SessionInfo, from smtp.Path, to smtp.Path) error
	// Deliver makes msg (trace header included) durable for every recipient
	// before it returns nil: the 250 that follows is a promise (RFC 5321 6.1).
	Deliver(ctx context.Context, env *Envelope, msg []byte) error
}

// Config configures a Server.
type Config struct {
	Hostname string // for the greeting, EHLO and Received lines
	Listener string // the name of this listener for logs and SessionInfo
	Backend  Backend
	// TLS enables STARTTLS when set.
	TLS *tls.Config
	// Submission makes this a message submission service (RFC 6409): AUTH is
	// required before MAIL (RFC 4954 6: 530 5.7.0), and Date and Message-ID
	// are added when missing (RFC 6409 8.2, 8.3).
	Submission bool
	// Auth enables AUTH (RFC 4954) with these credentials; nil disables it.
	Auth sasl.Credentials
	// Limiter slows repeated authentication failures and locks out
	// addresses that keep failing; may be nil. Share one with every service.
	Limiter *sasl.Limiter
	// ConnectionRate limits how often one address may connect; may be nil.
	// Share one with every service.
	ConnectionRate *netserve.RateLimiter
	// AllowPlaintextAuth permits PLAIN and LOGIN without TLS from
	// non-loopback clients (allow_plaintext_auth).
	AllowPlaintextAuth bool
	Limits             Limits
	Logger             *slog.Logger
	Now                func() time.Time
	// NewID returns a fresh queue ID; nil uses the built-in generator.
	NewID func() string
	// Trace, when set, receives a copy of all traffic ("C: " and "S: " lines);
	// this is how transcripts are recorded (never enable in production: it
	// records message content).
	Trace io.Writer
}

// Server accepts SMTP sessions on listeners.
type Server struct {
	cfg    Config
	limits Limits
	log    *slog.Logger
	now    func() time.Time
	newID  func() string

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
		now:    cfg.Now,
		newID:  cfg.NewID,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = NewQueueIDGenerator(s.now)
	}
	if s.cfg.Listener == "" {
		s.cfg.Listener = "smtp"
	}
	s.conns = netserve.New(netserve.Config{
		Listener:         s.cfg.Listener,
		PerIPConnections: s.limits.PerIPConnections,
		Connections:      s.limits.Connections,
		ShutdownGrace:    s.limits.ShutdownGrace,
		Rate:             s.cfg.ConnectionRate,
		// RFC 5321 3.1: a server may refuse with 421 at connection time.
		// We answer without reading anything, then close.
		Refusal:     smtp.R(smtp.CodeUnavailable, smtp.EnhSecurityOther, s.cfg.Hostname+" Too many connections, try again later").Bytes(),
		RateRefusal: smtp.R(smtp.CodeUnavailable, smtp.EnhSecurityOther, s.cfg.Hostname+" Too many connection attempts, try again later").Bytes(),
		Logger:      s.log,
	})
	return s
}

// Serve accepts connections on ln until ctx is done, then stops accepting,
// lets transactions in flight finish within Limits.ShutdownGrace, tells idle
// sessions 421 4.3.2, and returns when every session has ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.conns.Serve(ctx, ln, func(conn net.Conn, remote netip.AddrPort) (*netserve.Guard, func()) {
		sess := newSession(s, conn, remote)
		return sess.guard, func() { sess.run(ctx) }
	})
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int { return s.conns.Sessions() }
