package mailbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sync/singleflight"

	"posthorn/mailbox/failpoint"
)

// Options configure a Store.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (internal dates, MODSEQ does not depend on it). nil: time.Now.
	Now func() time.Time
	// RecipientDelimiter separates the plus-address detail ("user+tag@dom"); "" disables.
	// As Postfix's recipient_delimiter it is a set of characters: "+-" makes
	// both "user+tag" and "user-tag" address "user".
	RecipientDelimiter string
	// PBKDF2Iterations for new password hashes; 0 means the default (600000, OWASP 2023 for SHA-256).
	PBKDF2Iterations int
	// NoSync disables fsync (tests and benchmarks of CPU only; never in production).
	NoSync bool
	// Parse, if set, is called once per delivered or appended message with its
	// raw bytes; what it returns is stored beside the message (Account.Meta),
	// for the IMAP server's precomputed BODYSTRUCTURE and ENVELOPE. It must be
	// safe for concurrent use and must not keep raw. A panic in it is logged
	// and the message is stored without meta.
	Parse func(raw []byte) []byte

	// openFile replaces os.OpenFile for the bbolt files (fault injection in tests).
	openFile func(name string, flag int, perm os.FileMode) (*os.File, error)
	// afterCommit runs after every commit of an account file (benchmarks).
	afterCommit func()
}

// File and directory names under the data directory.
const (
	directoryFile = "directory.db"
	accountsDir   = "accounts"
	fileMode      = 0o600
	dirMode       = 0o700
)

// Store is the mail store under one data directory: a directory database
// (accounts, aliases) and one bbolt file per account. Safe for concurrent use.
type Store struct {
	dir         string
	log         *slog.Logger
	now         func() time.Time
	delims      string
	iterations  int
	noSync      bool
	parse       func([]byte) []byte
	openFile    func(string, int, os.FileMode) (*os.File, error)
	afterCommit func()

	db   *bolt.DB   // directory.db
	dirc *Committer // group committer of directory.db

	failed atomic.Pointer[error]

	creds     *credCache
	dummyHash string
	hashSlots chan struct{} // bounds concurrent PBKDF2 runs to the CPUs
	// authFlight joins concurrent logins with the same credentials (keyed
	// by their cache digest) into one PBKDF2 run: fifty sessions logging
	// in at once as one user cost one hash, not fifty.
	authFlight singleflight.Group
	hashRuns   atomic.Int64 // PBKDF2 verifications run (tests)

	// mu guards closed and accounts, and is held across the directory
	// lookup in Account and the directory commit in DeleteUser, so an
	// account file is never opened for a user being deleted.
	mu       sync.Mutex
	closed   bool
	accounts map[string]*accountEntry
}

// accountEntry is an open (or opening) account; ready is closed when acct
// or err is set.
type accountEntry struct {
	ready chan struct{}
	acct  *Account
	err   error
}

// BoltOptions are the bbolt options of every file of the store; the spool
// should use the same. Timeout: a second process gets ErrTimeout (ErrLocked
// here) instead of waiting forever for the flock. The map freelist and no
// freelist sync make commits cheaper; the price is a freelist scan at open.
func BoltOptions(noSync bool) *bolt.Options {
	return &bolt.Options{
		Timeout:        time.Second,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
		NoSync:         noSync,
	}
}

// OpenDB opens (creating it with mode 0600) a bbolt file with BoltOptions,
// as the store opens its own; a file held by another process is ErrLocked.
// For the spool, with NewCommitter.
func OpenDB(path string, noSync bool) (*bolt.DB, error) {
	return openDB(path, BoltOptions(noSync))
}

func (s *Store) openBolt(path string) (*bolt.DB, error) {
	opts := BoltOptions(s.noSync)
	opts.OpenFile = s.openFile
	return openDB(path, opts)
}

func openDB(path string, opts *bolt.Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, fileMode, opts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox: open %s: %w", path, err)
	}
	return db, nil
}

// Open opens or creates the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{
		dir:         dir,
		log:         opts.Logger,
		now:         opts.Now,
		delims:      opts.RecipientDelimiter,
		iterations:  opts.PBKDF2Iterations,
		noSync:      opts.NoSync,
		parse:       opts.Parse,
		openFile:    opts.openFile,
		afterCommit: opts.afterCommit,
		creds:       newCredCache(CredentialCacheSize),
		hashSlots:   make(chan struct{}, runtime.GOMAXPROCS(0)),
		accounts:    make(map[string]*accountEntry),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.iterations == 0 {
		s.iterations = DefaultPBKDF2Iterations
	}
	if s.iterations < 0 || s.iterations > MaxPBKDF2Iterations {
		return nil, fmt.Errorf("mailbox: PBKDF2 iterations %d out of range", s.iterations)
	}
	s.dummyHash = dummyPasswordHash(s.iterations)
	if err := os.MkdirAll(filepath.Join(dir, accountsDir), dirMode); err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	db, err := s.openBolt(filepath.Join(dir, directoryFile))
	if err != nil {
		return nil, err
	}
	s.db = db
	s.dirc = NewCommitter(db, CommitterOptions{Logger: s.log, OnFail: s.fail, Failpoint: failpoint.DirectoryCommit})
	if err := s.initDirectory(); err != nil {
		s.dirc.Close()
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close waits for pending commits and closes every file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	entries := s.accounts
	s.accounts = nil
	s.mu.Unlock()

	var errs []error
	for _, e := range entries {
		<-e.ready
		if e.acct != nil {
			errs = append(errs, e.acct.close())
		}
	}
	errs = append(errs, s.dirc.Close(), s.db.Close())
	return errors.Join(errs...)
}

// Err returns nil, or an error wrapping ErrStoreFailed once a commit has
// failed; the SMTP server uses it to stop accepting mail.
func (s *Store) Err() error {
	if p := s.failed.Load(); p != nil {
		return failedError(*p)
	}
	return nil
}

// fail puts the store into the failed state (any file's commit error).
func (s *Store) fail(err error) {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("mail store failed; every write is refused until restart", slog.Any("err", err))
		s.dirc.Fail(err)
	}
}

// updateDir commits fn to directory.db.
func (s *Store) updateDir(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.dirc.Update(ctx, fn)
}

// viewDir reads directory.db.
func (s *Store) viewDir(fn func(*bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func (s *Store) accountPath(id uint64) string {
	return filepath.Join(s.dir, accountsDir, strconv.FormatUint(id, 10)+".db")
}

// Account returns the open account (opening its file on first use).
// Errors: ErrNoSuchUser (wrapping ErrBadAddress for a malformed name), ErrClosed.
func (s *Store) Account(name string) (*Account, error) {
	name, err := NormalizeAddress(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoSuchUser, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if e, ok := s.accounts[name]; ok {
		s.mu.Unlock()
		<-e.ready
		return e.acct, e.err
	}
	rec, err := s.lookupAccount(name)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	e := &accountEntry{ready: make(chan struct{})}
	s.accounts[name] = e
	s.mu.Unlock()

	e.acct, e.err = s.openAccount(name, rec.id)
	if e.err != nil {
		s.mu.Lock()
		if s.accounts[name] == e {
			delete(s.accounts, name) // let a later call try again
		}
		s.mu.Unlock()
	}
	close(e.ready)
	return e.acct, e.err
}

// Deliver appends raw to the INBOX of every account, all in parallel, and returns
// once every copy is durable (fsync'd; concurrent deliveries share fsyncs through
// each account file's group committer). On error some accounts may have the message.
//
// Options.Parse runs once for all accounts. Duplicate account names get one
// copy. The error joins the per-account errors, each naming its account.
func (s *Store) Deliver(ctx context.Context, accounts []string, raw []byte, internalDate time.Time) error {
	if err := s.Err(); err != nil {
		return err
	}
	if internalDate.IsZero() {
		internalDate = s.now()
	}
	names := make([]string, 0, len(accounts))
	for _, a := range accounts {
		n, err := NormalizeAddress(a)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNoSuchUser, err)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	meta := s.parseMessage(raw)

	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			a, err := s.Account(name)
			if err == nil {
				_, err = a.appendMessage(ctx, InboxName, raw, meta, nil, internalDate)
			}
			if err != nil {
				errs[i] = fmt.Errorf("deliver to %s: %w", name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parseMessage runs Options.Parse, containing a panic: a parser bug must
// not lose the message or crash the server.
func (s *Store) parseMessage(raw []byte) (meta []byte) {
	if s.parse == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("message parser panicked; storing without meta", slog.Any("panic", p))
			meta = nil
		}
	}()
	return s.parse(raw)
}
