package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"posthorn/mailbox"
	"posthorn/protocol/netserve"
	"posthorn/protocol/sasl"
)

// Account is what a session needs of a mail account. *mailbox.Account
// satisfies it; see mailbox for the semantics of each method.
type Account interface {
	Folders() ([]mailbox.FolderInfo, error)
	Folder(name string) (mailbox.FolderInfo, error)
	CreateFolder(name, role string) error
	DeleteFolder(name string) error
	RenameFolder(from, to string) error
	SetSubscribed(name string, on bool) error
	Append(ctx context.Context, folder string, raw []byte, flags []string, internalDate time.Time) (mailbox.MessageInfo, error)
	ForEachMessage(folder string, fromUID uint32, fn func(mailbox.MessageInfo) error) error
	Scan(folder string, fromUID uint32, fn func(mailbox.MessageInfo) error) (mailbox.FolderInfo, error)
	Message(folder string, uid uint32) (mailbox.MessageInfo, error)
	Raw(folder string, uid uint32) ([]byte, error)
	Meta(folder string, uid uint32) ([]byte, error)
	StoreFlags(ctx context.Context, folder string, uids []uint32, op byte, flags []string) ([]mailbox.MessageInfo, error)
	Expunge(ctx context.Context, folder string, uids []uint32) ([]uint32, error)
	Copy(ctx context.Context, from string, uids []uint32, to string, move bool) (src, dst []uint32, err error)
	Subscribe() *mailbox.Subscription
}

// Limits bounds every length, count and wait of a session. A zero field
// takes its default (DefaultLimits).
type Limits struct {
	// Line is the longest command line without literals. RFC 7162 4:
	// clients may send lines of about 8192 octets; imap.MinLine is the floor.
	Line int
	// Literal is the largest literal outside APPEND (a LOGIN password, a
	// SEARCH string) once authenticated.
	Literal int64
	// PreAuthLiteral is the largest literal before authentication (LOGIN
	// arguments): nothing large may be sent by an unknown client
	// (ROBUSTNESS.md: "a LOGIN {4000000000}" allocates nothing).
	PreAuthLiteral int64
	// MessageSize is the largest APPEND message, advertised as APPENDLIMIT
	// (RFC 7889); larger ones get NO [TOOBIG] without being buffered.
	MessageSize int64
	// BadCommands: after this many BAD responses the session ends with BYE.
	BadCommands int
	// AuthFailures: after this many failed LOGIN/AUTHENTICATE, BYE.
	AuthFailures int
	// PreAuthTimeout is the wait for a command before authentication.
	// Shorter than AutoLogout: an unauthenticated connection costs
	// resources and proves nothing.
	PreAuthTimeout time.Duration
	// AutoLogout is the inactivity timer once authenticated, IDLE included.
	// RFC 9051 5.4: "at least 30 minutes"; RFC 2177 3: clients re-issue IDLE
	// at least every 29 minutes.
	AutoLogout time.Duration
	// WriteTimeout bounds each flush to the client.
	WriteTimeout time.Duration
	// TLSHandshakeTimeout bounds STARTTLS and implicit TLS handshakes.
	TLSHandshakeTimeout time.Duration
	// PerIPConnections, PerAccountConnections and Connections cap
	// concurrent sessions from one address, of one account, and in all.
	PerIPConnections      int
	PerAccountConnections int
	Connections           int
	// ShutdownGrace is how long a command in flight may take after
	// shutdown begins.
	ShutdownGrace time.Duration
}

// DefaultLimits are the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		Line:                  64 << 10,
		Literal:               64 << 10,
		PreAuthLiteral:        4096,
		MessageSize:           25 << 20,
		BadCommands:           20,
		AuthFailures:          3,
		PreAuthTimeout:        time.Minute,
		AutoLogout:            30 * time.Minute,
		WriteTimeout:          5 * time.Minute,
		TLSHandshakeTimeout:   30 * time.Second,
		PerIPConnections:      50,
		PerAccountConnections: 20,
		Connections:           2000,
		ShutdownGrace:         10 * time.Second,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	setDefault(&l.Line, d.Line)
	setDefault(&l.Literal, d.Literal)
	setDefault(&l.PreAuthLiteral, d.PreAuthLiteral)
	setDefault(&l.MessageSize, d.MessageSize)
	setDefault(&l.BadCommands, d.BadCommands)
	setDefault(&l.AuthFailures, d.AuthFailures)
	setDefault(&l.PreAuthTimeout, d.PreAuthTimeout)
	setDefault(&l.AutoLogout, d.AutoLogout)
	setDefault(&l.WriteTimeout, d.WriteTimeout)
	setDefault(&l.TLSHandshakeTimeout, d.TLSHandshakeTimeout)
	setDefault(&l.PerIPConnections, d.PerIPConnections)
	setDefault(&l.PerAccountConnections, d.PerAccountConnections)
	setDefault(&l.Connections, d.Connections)
	setDefault(&l.ShutdownGrace, d.ShutdownGrace)
	return l
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Config configures a Server.
type Config struct {
	Hostname string // for the greeting and logs
	Listener string // "imap" or "imaps", for logs
	// OpenAccount returns the account an authenticated name (as returned by
	// Auth) refers to.
	OpenAccount func(name string) (Account, error)
	// Auth checks passwords (LOGIN, AUTHENTICATE PLAIN/LOGIN) and SCRAM.
	Auth sasl.Credentials
	// Limiter slows repeated authentication failures and locks out
	// addresses that keep failing; may be nil. Share one with every service.
	Limiter *sasl.Limiter
	// ConnectionRate limits how often one address may connect; may be nil.
	// Share one with every service.
	ConnectionRate *netserve.RateLimiter
	// TLS enables STARTTLS when set. For implicit TLS (RFC 8314 3.3, port
	// 993) wrap the listener with tls.NewListener as well.
	TLS *tls.Config
	// AllowPlaintextAuth permits LOGIN and AUTHENTICATE PLAIN/LOGIN without
	// TLS from non-loopback clients (allow_plaintext_auth).
	AllowPlaintextAuth bool
	Limits             Limits
	Logger             *slog.Logger
	Now                func() time.Time
	// Trace, when set, receives a copy of all traffic; this is how
	// transcripts are recorded (never in production: it records passwords
	// and mail).
	Trace io.Writer
}

// Server accepts IMAP sessions on listeners.
type Server struct {
	cfg    Config
	limits Limits
	log    *slog.Logger
	now    func() time.Time
	recent recentTracker

	conns     *netserve.Server
	sessionID atomic.Uint64

	mu      sync.Mutex // guards perAcct
	perAcct map[string]int

	// loopbackIsRemote lets tests, which can only connect from loopback,
	// see the rules for remote clients (LOGINDISABLED).
	loopbackIsRemote bool
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		cfg:     cfg,
		limits:  cfg.Limits.withDefaults(),
		log:     cfg.Logger,
		now:     cfg.Now,
		perAcct: make(map[string]int),
		recent:  recentTracker{marks: make(map[recentKey]uint32)},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.Listener == "" {
		s.cfg.Listener = "imap"
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
		// RFC 9051 7.1.5: BYE as the greeting refuses the connection.
		Refusal:     []byte("* BYE Too many connections, try again later\r\n"),
		RateRefusal: []byte("* BYE Too many connection attempts, try again later\r\n"),
		Logger:      s.log,
	})
	return s
}

// Serve accepts connections on ln until ctx is done, then stops accepting,
// lets commands in flight finish within Limits.ShutdownGrace, says BYE to
// idle sessions (RFC 9051 7.1.5), and returns when every session has ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.conns.Serve(ctx, ln, func(conn net.Conn, remote netip.AddrPort) (*netserve.Guard, func()) {
		sess := newSession(s, conn, remote)
		return sess.guard, func() { sess.run(ctx) }
	})
}

// claimAccount counts a session against its account's connection cap and
// reports whether it is within the cap; releaseAccount undoes it.
func (s *Server) claimAccount(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAcct[name] >= s.limits.PerAccountConnections {
		return false
	}
	s.perAcct[name]++
	return true
}

func (s *Server) releaseAccount(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAcct[name]--; s.perAcct[name] <= 0 {
		delete(s.perAcct, name)
	}
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int { return s.conns.Sessions() }

// recentTracker remembers, per account and folder, the highest UID that
// some session has already seen as \Recent (RFC 3501 2.3.2: "the first
// session to be notified about a message" gets \Recent). It lives in
// memory: after a restart every message is old, which RFC 3501 permits
// ("the server MAY..." discard it) since \Recent is advisory.
type recentTracker struct {
	mu    sync.Mutex
	marks map[recentKey]uint32
}

type recentKey struct {
	account, folder string
	uidValidity     uint32
}

// mark returns the highest UID already claimed.
func (r *recentTracker) mark(k recentKey) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.marks[k]
}

// claim raises the mark to uid and returns the previous mark: UIDs above
// the previous mark and up to uid are recent for the caller.
func (r *recentTracker) claim(k recentKey, uid uint32) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.marks[k]
	if uid > prev {
		r.marks[k] = uid
	}
	return prev
}

func (s *Server) sessionName() string {
	return strconv.FormatUint(s.sessionID.Add(1), 10)
}
