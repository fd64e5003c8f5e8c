package spool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"posthorn/dnsmx"
	"posthorn/mailbox"
	"posthorn/mailbox/failpoint"
	"posthorn/protocol/smtp"
)

// Defaults of Options.
const (
	DefaultRetryMin      = 5 * time.Minute
	DefaultRetryMax      = time.Hour
	DefaultDelayWarning  = 4 * time.Hour
	DefaultMaxLifetime   = 5 * 24 * time.Hour
	DefaultConcurrency   = 100
	DefaultPerDomain     = 20
	DefaultShutdownGrace = 10 * time.Second
	DefaultOutboundPort  = 25 // RFC 5321 4.5.4.2: "the SMTP port (specified by IANA as port 25)"
)

// Scheduling constants.
const (
	// restartBurst overdue messages are tried at once after a restart;
	// the rest follow restartStep apart, the whole spread at most RetryMin.
	restartBurst = 100
	restartStep  = 50 * time.Millisecond
	// maxCollect bounds how many due recipients one scheduler pass takes
	// into memory; the rest wait for the next pass.
	maxCollect = 5000
	// jobsPerWorker: a domain gets one more connection (up to PerDomain)
	// for each this many messages waiting, so a few messages share one
	// connection and a backlog is worked on in parallel.
	jobsPerWorker = 8
	// jitter is the ±fraction applied to each retry interval, so that
	// messages deferred together do not come back together.
	jitter = 0.10
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("spool: no such message")
	ErrClosed   = errors.New("spool: closed")
	ErrRunning  = errors.New("spool: already running")
	ErrInvalid  = errors.New("spool: invalid message")
)

// Options configure a Spool.
type Options struct {
	// Hostname is our FQDN: the EHLO name, the Reporting-MTA of DSNs and
	// the domain of their From and Message-ID.
	Hostname string
	// Resolver answers the MX and address lookups (dnsmx.DNSResolver).
	Resolver dnsmx.Resolver
	// OutboundPort is the port of remote SMTP servers; 0 means 25.
	OutboundPort int
	// RetryMin, RetryMax: the first retry interval and the cap of the
	// exponential backoff (RFC 5321 4.5.4.1: "at least 30 minutes" is the
	// RFC's advice for the interval; it is configurable here).
	RetryMin, RetryMax time.Duration
	// DelayWarning: age after which a "delayed" DSN is sent, once.
	// MaxLifetime: age after which the message fails (RFC 5321 4.5.4.1:
	// "at least 4-5 days").
	DelayWarning, MaxLifetime time.Duration
	// Concurrency bounds the connections open at once; PerDomain those to
	// one destination domain.
	Concurrency int
	PerDomain   int
	// TLS is the client TLS config for opportunistic STARTTLS (it should
	// set InsecureSkipVerify: see protocol/smtp/client); nil never uses TLS.
	TLS *tls.Config
	// SelfHosts and SelfAddrs are our names and the addresses we receive
	// mail on: an MX pointing at them is a loop (RFC 5321 5.1).
	SelfHosts []string
	SelfAddrs []netip.Addr
	// LocalAddr is the source address of outbound connections; zero lets
	// the system choose.
	LocalAddr netip.Addr
	// Bounce hands a DSN we made to the caller, who delivers it to the
	// sender (a local sender's INBOX, or back into this spool from <>). The
	// DSN is only marked done when Bounce returns nil.
	Bounce func(ctx context.Context, to smtp.Path, msg []byte) error
	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time
	// Logger receives one line per delivery attempt per recipient.
	Logger *slog.Logger
	// NoSync skips fsync (tests only).
	NoSync bool
	// Rand is the jitter source (tests make it deterministic); nil seeds
	// one at random.
	Rand *rand.Rand
	// ShutdownGrace bounds how long Run waits for attempts in flight after
	// its context ends before cancelling them; 0 means 10s.
	ShutdownGrace time.Duration
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RetryMin, DefaultRetryMin)
	def(&o.RetryMax, DefaultRetryMax)
	def(&o.DelayWarning, DefaultDelayWarning)
	def(&o.MaxLifetime, DefaultMaxLifetime)
	def(&o.ShutdownGrace, DefaultShutdownGrace)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.OutboundPort <= 0 {
		o.OutboundPort = DefaultOutboundPort
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.PerDomain <= 0 {
		o.PerDomain = DefaultPerDomain
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Resolver == nil {
		// The system's recursive servers; without any, every lookup fails
		// temporarily and mail waits.
		servers, _ := dnsmx.SystemServers()
		o.Resolver = dnsmx.NewResolver(servers, 0)
	}
}

// Message is one message to relay.
type Message struct {
	// ID is the queue ID (the SMTP server's); "" makes the spool choose
	// one. If the ID is taken, a suffix makes it unique.
	ID      string
	From    smtp.Path
	Mail    smtp.MailParams
	Rcpts   []Rcpt
	Arrival time.Time // zero means now
}

// Rcpt is one remote recipient with its DSN parameters.
type Rcpt struct {
	Path   smtp.Path
	Params smtp.RcptParams
}

// Status is where a recipient stands.
type Status string

// Recipient states.
const (
	StatusQueued  Status = "queued"  // waiting for its next attempt
	StatusSent    Status = "sent"    // a next hop took it
	StatusBounced Status = "bounced" // failed for good
)

// Entry describes a queued message for `posthorn queue list/show`.
type Entry struct {
	ID      string
	From    smtp.Path
	Mail    smtp.MailParams
	Arrival time.Time
	Size    int
	Rcpts   []RcptEntry
}

// RcptEntry is one recipient of an Entry.
type RcptEntry struct {
	Path        smtp.Path
	Params      smtp.RcptParams
	Status      Status
	Attempts    int
	NextAttempt time.Time // zero unless queued
	LastAttempt time.Time // zero before the first attempt
	LastReply   string    // "451 4.2.0 try later", or a local reason; "" before the first attempt
	Relay       string    // "host[ip]:port" of the last attempt, if it reached one
}

// Spool is the outbound queue. Its methods are safe for concurrent use.
type Spool struct {
	opts      Options
	db        *bolt.DB
	committer *mailbox.Committer
	log       *slog.Logger
	now       func() time.Time

	randMu sync.Mutex // guards opts.Rand

	wake    chan struct{} // the scheduler has something to look at
	running atomic.Bool
	closed  atomic.Bool
	stalled atomic.Bool // dispatch saw the committer failed (logged once)

	mu       sync.Mutex
	inflight map[rcptKey]struct{}   // taken by the scheduler, not yet recorded
	domains  map[string]*domainWork // destinations with jobs or workers
	order    []string               // domains in the order they got work
	dead     map[string]deadDomain  // domains found unreachable
	active   int                    // workers running
	workers  sync.WaitGroup

	noticeMu    sync.Mutex // one DSN composition at a time
	noticeRetry time.Time  // when pending DSNs are tried again

	idMu   sync.Mutex
	lastID uint64
}

// Open opens or creates the spool file at path (data_dir/spool.db).
func Open(path string, opts Options) (*Spool, error) {
	opts.setDefaults()
	db, err := mailbox.OpenDB(path, opts.NoSync)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := initBuckets(db); err != nil {
		db.Close()
		return nil, err
	}
	s := &Spool{
		opts:      opts,
		db:        db,
		committer: mailbox.NewCommitter(db, mailbox.CommitterOptions{Logger: opts.Logger, Failpoint: failpoint.SpoolCommit}),
		log:       opts.Logger,
		now:       opts.Now,
		wake:      make(chan struct{}, 1),
		inflight:  make(map[rcptKey]struct{}),
		domains:   make(map[string]*domainWork),
		dead:      make(map[string]deadDomain),
	}
	return s, nil
}

// Close waits for pending writes and closes the file. Call it after Run
// has returned.
func (s *Spool) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.committer.Close()
	return s.db.Close()
}

// update runs fn through the group committer: durable when it returns nil.
// A context that is already done does not stop an update the spool needs
// to record (results of attempts made), so callers pass what they mean.
func (s *Spool) update(ctx context.Context, size int, fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.committer.UpdateSized(ctx, size, fn)
}

// signal wakes the scheduler without blocking.
func (s *Spool) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// randFloat returns a uniform number in [0, 1).
func (s *Spool) randFloat() float64 {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.opts.Rand.Float64()
}
